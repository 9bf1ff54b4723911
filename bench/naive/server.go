package naive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/walletd/walletd/actors"
	wallethttp "github.com/walletd/walletd/http"
	"github.com/walletd/walletd/wallet"
)

// Handler returns a server of the baseline behind the subset of wallet-api.md the
// benchmark uses (POST /v1/wallets, GET /v1/wallets/:id, deposit, withdraw,
// bet, win, rollback, transactions) on walletd's own HTTP stack: the same
// router, middleware, request decoding and JSON replies. Only what sits
// behind actors.Wallets differs, so a comparison measures the wallet design
// and nothing else.
func Handler(w *Wallet, apiKeys []string, logger *slog.Logger) *wallethttp.Server {
	return wallethttp.NewServer(wallethttp.Config{APIKeys: apiKeys, Logger: logger, Version: "naive"}, NewWallets(w))
}

// Wallets adapts the baseline to actors.Wallets.
type Wallets struct {
	w *Wallet
	// currencies caches each wallet's currency, which never changes once the
	// wallet exists: request amounts are parsed against it before the money
	// transaction starts, as walletd's actor does from memory.
	currencies sync.Map // player id → wallet.Currency
}

var _ actors.Wallets = (*Wallets)(nil)

// NewWallets returns the adapter.
func NewWallets(w *Wallet) *Wallets { return &Wallets{w: w} }

func (a *Wallets) currency(ctx context.Context, playerID string) (wallet.Currency, error) {
	if c, ok := a.currencies.Load(playerID); ok {
		return c.(wallet.Currency), nil
	}
	row, err := a.w.Get(ctx, playerID)
	if err != nil {
		return wallet.Currency{}, domain(err)
	}
	return a.remember(playerID, row.Currency)
}

func (a *Wallets) remember(playerID, code string) (wallet.Currency, error) {
	c, ok := wallet.LookupCurrency(code)
	if !ok {
		return wallet.Currency{}, fmt.Errorf("naive: wallet %s has unknown currency %q", playerID, code)
	}
	a.currencies.Store(playerID, c)
	return c, nil
}

// Open implements actors.Wallets.
func (a *Wallets) Open(ctx context.Context, playerID string, c wallet.Currency) (actors.View, bool, error) {
	created, have, err := a.w.CreateWallet(ctx, playerID, c.Code)
	if err != nil {
		return actors.View{}, false, err
	}
	if have != c.Code {
		return actors.View{}, false, wallet.Errorf(wallet.CodeCurrencyMismatch, "wallet %s is in %s", playerID, have)
	}
	if created {
		a.currencies.Store(playerID, c)
		return actors.View{PlayerID: playerID, Currency: c, Balance: wallet.Zero(c)}, true, nil
	}
	v, err := a.Get(ctx, playerID)
	return v, false, err
}

// Get implements actors.Wallets.
func (a *Wallets) Get(ctx context.Context, playerID string) (actors.View, error) {
	row, err := a.w.Get(ctx, playerID)
	if err != nil {
		return actors.View{}, domain(err)
	}
	c, err := a.remember(playerID, row.Currency)
	if err != nil {
		return actors.View{}, err
	}
	bal, err := wallet.ParseStored(row.Balance, c)
	if err != nil {
		return actors.View{}, err
	}
	return actors.View{PlayerID: playerID, Currency: c, Balance: bal, Version: uint64(row.Version)}, nil
}

// Apply implements actors.Wallets: one Postgres transaction per command.
func (a *Wallets) Apply(ctx context.Context, playerID string, cmd wallet.Command) (wallet.Result, error) {
	c, err := a.currency(ctx, playerID)
	if err != nil {
		return wallet.Result{}, err
	}
	if cmd.Currency != "" && cmd.Currency != c.Code {
		return wallet.Result{}, wallet.Errorf(wallet.CodeCurrencyMismatch, "wallet %s is in %s", playerID, c.Code)
	}
	var amount wallet.Amount
	if cmd.Kind != wallet.KindRollback {
		if amount, err = wallet.ParseAmount(cmd.Amount, c); err != nil {
			return wallet.Result{}, err
		}
	}
	var res Result
	switch cmd.Kind {
	case wallet.KindBet, wallet.KindWithdraw:
		res, err = a.w.Debit(ctx, playerID, cmd.TxID, string(cmd.Kind), amount.String())
	case wallet.KindDeposit:
		res, err = a.w.Credit(ctx, playerID, cmd.TxID, string(cmd.Kind), amount.String())
	case wallet.KindWin:
		res, err = a.w.CreditRef(ctx, playerID, cmd.TxID, string(cmd.Kind), amount.String(), cmd.Ref)
	case wallet.KindRollback:
		res, err = a.w.Rollback(ctx, playerID, cmd.TxID, cmd.Ref)
	default:
		return wallet.Result{}, wallet.Errorf(wallet.CodeBadRequest, "unknown kind %q", cmd.Kind)
	}
	if err != nil {
		return wallet.Result{}, domain(err)
	}
	out := wallet.Result{TxID: cmd.TxID, Kind: cmd.Kind, Version: uint64(res.Version), Duplicate: res.Duplicate, Outcome: wallet.OutcomeApplied}
	if res.Duplicate {
		out.Outcome = wallet.OutcomeDuplicate
	}
	if out.Amount, err = wallet.ParseStored(res.Amount, c); err != nil {
		return wallet.Result{}, err
	}
	if out.Balance, err = wallet.ParseStored(res.Balance, c); err != nil {
		return wallet.Result{}, err
	}
	return out, nil
}

// History implements actors.Wallets.
func (a *Wallets) History(ctx context.Context, playerID string, before uint64, limit int) ([]wallet.Event, error) {
	c, err := a.currency(ctx, playerID)
	if err != nil {
		return nil, err
	}
	rows, err := a.w.History(ctx, playerID, int64(before), limit)
	if err != nil {
		return nil, err
	}
	out := make([]wallet.Event, 0, len(rows))
	for _, r := range rows {
		ev := wallet.Event{Seq: uint64(r.Seq), TxID: r.TxID, Kind: wallet.Kind(r.Kind), Ref: r.RefTxID, At: r.CreatedAt}
		if ev.Amount, err = wallet.ParseStored(r.Amount, c); err != nil {
			return nil, err
		}
		if ev.BalanceAfter, err = wallet.ParseStored(r.BalanceAfter, c); err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// domain turns the baseline's errors into the contract's.
func domain(err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return wallet.Errorf(wallet.CodeWalletNotFound, "no such wallet")
	case errors.Is(err, ErrInsufficientFunds):
		return wallet.Errorf(wallet.CodeInsufficientFunds, "insufficient funds")
	case errors.Is(err, ErrBetNotFound):
		return wallet.Errorf(wallet.CodeBetNotFound, "no such bet")
	case errors.Is(err, ErrRolledBack):
		return wallet.Errorf(wallet.CodeBetRolledBack, "the bet was already rolled back")
	}
	return err
}
