// Package evolution is the adapter for Evolution's One Wallet API
// (providers.md): JSON POSTs to /providers/{instance}/{method},
// authenticated by ?authToken=, answered with HTTP 200 and a `status`.
//
// Keys (wallet tx_ids, namespaced per instance as "evo.<instance>:…"):
//   - a debit is the bet "bet:<refId>": refId ties a debit to its credit or
//     cancel, and one round (game.id) may hold many debits;
//   - a credit is the win "credit:<transaction.id>" naming that bet;
//   - a cancel repeats the debit's transaction.id and refId: it is the
//     rollback "cancel:<refId>" of that bet, so a repeated cancel is a
//     wallet duplicate;
//   - promo_payout is the win "promo:<promoTransaction.id>".
//
// The wallet decides every outcome; this package only names it in
// Evolution's statuses.
package evolution

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	wallethttp "github.com/walletd/walletd/http"
	"github.com/walletd/walletd/providers/provider"
	"github.com/walletd/walletd/providers/sessions"
	"github.com/walletd/walletd/wallet"
)

// Statuses of the One Wallet API that walletd answers.
const (
	StatusOK                = "OK"
	StatusTemporaryError    = "TEMPORARY_ERROR"
	StatusInvalidTokenID    = "INVALID_TOKEN_ID"
	StatusInvalidSID        = "INVALID_SID"
	StatusInvalidParameter  = "INVALID_PARAMETER"
	StatusInsufficientFunds = "INSUFFICIENT_FUNDS"
	StatusBetAlreadyExist   = "BET_ALREADY_EXIST"
	StatusBetDoesNotExist   = "BET_DOES_NOT_EXIST"
	StatusBetAlreadySettled = "BET_ALREADY_SETTLED"
	StatusFinalErrorAction  = "FINAL_ERROR_ACTION_FAILED"
	StatusUnknownError      = "UNKNOWN_ERROR"
)

// Method names, as in the URL.
const (
	mCheck   = "check"
	mBalance = "balance"
	mDebit   = "debit"
	mCredit  = "credit"
	mCancel  = "cancel"
	mPromo   = "promo_payout"
	mSID     = "sid"
)

// Classes of wallet keys.
const (
	keyBet    = "bet"
	keyCredit = "credit"
	keyCancel = "cancel"
	keyPromo  = "promo"
	keyRound  = "round"
	keyTable  = "table"
)

func methods() map[string]provider.Method {
	m := map[string]provider.Method{}
	for _, x := range []provider.Method{
		{Name: mCheck, Class: provider.ClassAuth},
		{Name: mSID, Class: provider.ClassAuth},
		{Name: mBalance, Class: provider.ClassRead},
		{Name: mDebit, Class: provider.ClassGameplay},
		{Name: mCredit, Class: provider.ClassSettle},
		{Name: mCancel, Class: provider.ClassSettle},
		{Name: mPromo, Class: provider.ClassSettle},
	} {
		m[x.Name] = x
	}
	return m
}

// Adapter serves one Evolution instance. It implements provider.Adapter.
type Adapter struct {
	name    string
	cfg     Config
	token   [sha256.Size]byte // SHA-256 of the authToken, compared in constant time
	keys    provider.Keys
	deps    provider.Deps
	methods map[string]provider.Method
}

var _ provider.Adapter = (*Adapter)(nil)

// New returns the adapter of instance name; cfg must have been Resolved.
func New(name string, cfg Config, deps provider.Deps) (*Adapter, error) {
	keys, err := provider.NewKeys(KeyTag, name)
	if err != nil {
		return nil, err
	}
	if err := cfg.Resolve(nil); err != nil {
		return nil, err
	}
	if deps.Wallets == nil || deps.Sessions == nil {
		return nil, errors.New("evolution: Wallets and Sessions are required")
	}
	return &Adapter{name: name, cfg: cfg, token: sha256.Sum256([]byte(cfg.AuthToken)), keys: keys, deps: deps, methods: methods()}, nil
}

func (a *Adapter) Kind() string { return Kind }
func (a *Adapter) Name() string { return a.name }

// Lookup resolves the method segment (case-insensitively).
func (a *Adapter) Lookup(segment string) (provider.Method, bool) {
	m, ok := a.methods[strings.ToLower(segment)]
	return m, ok
}

// request is every field walletd reads from a request body. Unknown fields
// are ignored (Evolution adds fields over time); amounts are kept as their
// raw JSON text so they are parsed exactly, never through float64.
type request struct {
	SID      string `json:"sid"`
	UserID   string `json:"userId"`
	UUID     string `json:"uuid"`
	Currency string `json:"currency"`
	Game     struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Details struct {
			Table struct {
				ID  string `json:"id"`
				VID string `json:"vid"`
			} `json:"table"`
		} `json:"details"`
	} `json:"game"`
	Transaction struct {
		ID     string          `json:"id"`
		RefID  string          `json:"refId"`
		Amount json.RawMessage `json:"amount"`
	} `json:"transaction"`
	PromoTransaction struct {
		Type      string          `json:"type"`
		ID        string          `json:"id"`
		Amount    json.RawMessage `json:"amount"`
		VoucherID string          `json:"voucherId"`
	} `json:"promoTransaction"`
	Channel struct {
		Type string `json:"type"`
	} `json:"channel"`
}

// call is a decoded request.
type call struct {
	m       provider.Method
	r       request
	amount  string // the amount's JSON number text (debit, credit, promo_payout)
	refID   string // the bet's refId (debit, credit, cancel)
	invalid bool   // a field of the method is missing or malformed
}

func (c *call) Method() provider.Method { return c.m }
func (c *call) PlayerID() string        { return c.r.UserID }

// Decode checks the authToken and parses the body. The uuid is read first
// (leniently) so that even a refusal echoes it.
func (a *Adapter) Decode(m provider.Method, req provider.Request) (provider.Call, *provider.Reply) {
	if req.Oversize {
		return nil, ptr(status(StatusInvalidParameter, ""))
	}
	uuid := peekUUID(req.Body)
	got := sha256.Sum256([]byte(req.Query.Get("authToken")))
	if subtle.ConstantTimeCompare(got[:], a.token[:]) != 1 {
		return nil, ptr(status(StatusInvalidTokenID, uuid))
	}
	c := &call{m: m}
	if err := json.Unmarshal(req.Body, &c.r); err != nil {
		return nil, ptr(status(StatusInvalidParameter, uuid))
	}
	if c.r.UUID == "" || !wallet.ValidID(c.r.UserID) {
		return nil, ptr(status(StatusInvalidParameter, uuid))
	}
	// Past this point the caller is Evolution and names a player: a
	// parameter problem is answered by Execute, with the real balance.
	c.invalid = !c.parse()
	return c, nil
}

// parse checks the fields of the call's method and picks its amount and
// refId; false when one is missing or malformed.
func (c *call) parse() bool {
	tx := c.r.Transaction
	var ok bool
	switch c.m.Name {
	case mDebit, mCancel:
		// A debit's refId is what its credit and cancel name; should one
		// come without it, its own id stands in (cancel repeats both).
		c.refID = tx.RefID
		if c.refID == "" {
			c.refID = tx.ID
		}
		if tx.ID == "" {
			return false
		}
		if c.m.Name == mDebit {
			c.amount, ok = number(tx.Amount)
			return ok && c.r.Game.ID != ""
		}
	case mCredit:
		c.amount, ok = number(tx.Amount)
		c.refID = tx.RefID
		return ok && tx.ID != "" && tx.RefID != ""
	case mPromo:
		c.amount, ok = number(c.r.PromoTransaction.Amount)
		return ok && c.r.PromoTransaction.ID != ""
	}
	return true
}

// peekUUID returns the body's uuid if it is a JSON object with a string uuid.
func peekUUID(body []byte) string {
	var v struct {
		UUID json.RawMessage `json:"uuid"`
	}
	var s string
	if json.Unmarshal(body, &v) != nil || json.Unmarshal(v.UUID, &s) != nil || len(s) > 128 {
		return ""
	}
	return s
}

// number returns the text of a JSON number. Strings, null and missing
// amounts are refused; what the text holds (a sign, an exponent, too many
// decimals for the currency) is for the wallet to judge.
func number(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return "", false
	}
	return string(raw), true
}

// Refuse answers a call the edge refused (a rate limit).
func (a *Adapter) Refuse(ctx context.Context, c provider.Call, err error) provider.Reply {
	return a.fail(ctx, c.(*call), StatusTemporaryError, false)
}

// Execute performs one decoded call.
func (a *Adapter) Execute(ctx context.Context, pc provider.Call) provider.Reply {
	c := pc.(*call)
	if c.invalid {
		return a.fail(ctx, c, StatusInvalidParameter, c.m.Name != mCheck && c.m.Name != mSID)
	}
	switch c.m.Name {
	case mCheck:
		return a.check(ctx, c)
	case mSID:
		return a.sid(ctx, c)
	case mBalance:
		return a.balance(ctx, c)
	case mDebit:
		return a.debit(ctx, c)
	case mCredit:
		return a.credit(ctx, c)
	case mCancel:
		return a.cancel(ctx, c)
	case mPromo:
		return a.promo(ctx, c)
	}
	return status(StatusInvalidParameter, c.r.UUID)
}

func (a *Adapter) check(ctx context.Context, c *call) provider.Reply {
	if st := a.session(ctx, c); st != "" {
		return status(st, c.r.UUID)
	}
	if _, err := a.deps.Wallets.Get(ctx, c.r.UserID); err != nil {
		return status(a.walletStatus(ctx, c, err), c.r.UUID)
	}
	sid := c.r.SID
	if a.cfg.RotateSIDOnCheck {
		next, _, err := a.deps.Sessions.Rotate(ctx, sid)
		if err != nil {
			return status(a.sessionStatus(ctx, c, err), c.r.UUID)
		}
		sid = next
	}
	return provider.Reply{Status: http.StatusOK, Body: reply{Status: StatusOK, SID: sid, UUID: c.r.UUID}, Code: StatusOK}
}

func (a *Adapter) sid(ctx context.Context, c *call) provider.Reply {
	// Evolution asks for a session of a player it already knows (a return
	// through its lobby): issue one, as POST /v1/sessions would.
	if _, err := a.deps.Wallets.Get(ctx, c.r.UserID); err != nil {
		return status(a.walletStatus(ctx, c, err), c.r.UUID)
	}
	sid, _, err := a.deps.Sessions.Launch(ctx, c.r.UserID, a.name, "")
	if err != nil {
		return status(a.sessionStatus(ctx, c, err), c.r.UUID)
	}
	return provider.Reply{Status: http.StatusOK, Body: reply{Status: StatusOK, SID: sid, UUID: c.r.UUID}, Code: StatusOK}
}

func (a *Adapter) balance(ctx context.Context, c *call) provider.Reply {
	if st := a.session(ctx, c); st != "" {
		return a.fail(ctx, c, st, true)
	}
	v, err := a.deps.Wallets.Get(ctx, c.r.UserID)
	if err != nil {
		return a.fail(ctx, c, a.walletStatus(ctx, c, err), true)
	}
	return a.balanceReply(c, StatusOK, v.Currency, v.Balance)
}

func (a *Adapter) debit(ctx context.Context, c *call) provider.Reply {
	if st := a.session(ctx, c); st != "" {
		return a.fail(ctx, c, st, true)
	}
	cmd := wallet.Command{
		Kind: wallet.KindBet, TxID: a.keys.ID(keyBet, c.refID), Amount: c.amount,
		RoundID: a.keys.ID(keyRound, c.r.Game.ID), Currency: c.r.Currency,
	}
	if t := c.r.Game.Details.Table.ID; t != "" {
		cmd.GameID = a.keys.ID(keyTable, t)
	}
	return a.money(ctx, c, cmd, func(res wallet.Result, err error) string {
		switch {
		case err == nil && res.Outcome == wallet.OutcomeDuplicate:
			return StatusBetAlreadyExist // the balance moved once, the first time
		case err == nil:
			return StatusOK
		}
		switch wallet.ErrorCode(err) {
		case wallet.CodeTxConflict:
			return StatusBetAlreadyExist
		case wallet.CodeBetRolledBack:
			return StatusFinalErrorAction // its cancel came first
		}
		return a.walletStatus(ctx, c, err)
	})
}

func (a *Adapter) credit(ctx context.Context, c *call) provider.Reply {
	// No sid check: a credit pays what the player already won, so it is
	// accepted on an expired (or rotated) sid.
	cmd := wallet.Command{
		Kind: wallet.KindWin, TxID: a.keys.ID(keyCredit, c.r.Transaction.ID), Amount: c.amount,
		Ref: a.keys.ID(keyBet, c.refID), Currency: c.r.Currency,
	}
	return a.money(ctx, c, cmd, func(res wallet.Result, err error) string {
		switch {
		case err == nil && res.Outcome == wallet.OutcomeDuplicate:
			return StatusBetAlreadySettled // paid once, the first time
		case err == nil:
			return StatusOK
		}
		switch wallet.ErrorCode(err) {
		case wallet.CodeBetNotFound:
			return StatusBetDoesNotExist
		case wallet.CodeBetAlreadySettled, wallet.CodeBetRolledBack, wallet.CodeTxConflict:
			return StatusBetAlreadySettled
		}
		return a.walletStatus(ctx, c, err)
	})
}

func (a *Adapter) cancel(ctx context.Context, c *call) provider.Reply {
	// No sid check either: a cancel gives back a stake.
	cmd := wallet.Command{Kind: wallet.KindRollback, TxID: a.keys.ID(keyCancel, c.refID), Ref: a.keys.ID(keyBet, c.refID)}
	return a.money(ctx, c, cmd, func(res wallet.Result, err error) string {
		if err == nil {
			switch res.Outcome {
			case wallet.OutcomeApplied:
				return StatusOK
			case wallet.OutcomeTombstoned:
				// Nothing to cancel; the tombstone makes a late debit
				// of this bet FINAL_ERROR_ACTION_FAILED.
				return StatusBetDoesNotExist
			}
			return StatusBetAlreadySettled // a repeated cancel refunds once
		}
		switch wallet.ErrorCode(err) {
		case wallet.CodeBetAlreadySettled, wallet.CodeTxConflict:
			return StatusBetAlreadySettled
		}
		return a.walletStatus(ctx, c, err)
	})
}

func (a *Adapter) promo(ctx context.Context, c *call) provider.Reply {
	cmd := wallet.Command{Kind: wallet.KindWin, TxID: a.keys.ID(keyPromo, c.r.PromoTransaction.ID), Amount: c.amount, Currency: c.r.Currency}
	return a.money(ctx, c, cmd, func(res wallet.Result, err error) string {
		if err == nil {
			return StatusOK // a repeat is a duplicate: OK, credited once
		}
		return a.walletStatus(ctx, c, err)
	})
}

// money applies cmd and names its outcome with name. Evolution sends up to
// 6 decimals whatever the currency ("10.500000"): ExtraZeros lets the
// wallet accept trailing zeros, and refuse (INVALID_AMOUNT, so
// INVALID_PARAMETER) anything it would have to round.
func (a *Adapter) money(ctx context.Context, c *call, cmd wallet.Command, name func(wallet.Result, error) string) provider.Reply {
	cmd.ExtraZeros = true
	res, err := a.deps.Wallets.Apply(ctx, c.r.UserID, cmd)
	st := name(res, err)
	if err != nil {
		return a.fail(ctx, c, st, true)
	}
	return a.balanceReply(c, st, res.Currency, res.Balance)
}

// session checks the sid of check, balance and debit: it must be a live
// session of this instance (INVALID_SID) for this userId (INVALID_PARAMETER).
// It returns "" when the sid is good.
func (a *Adapter) session(ctx context.Context, c *call) string {
	s, err := a.deps.Sessions.Lookup(ctx, c.r.SID)
	switch {
	case err != nil:
		return a.sessionStatus(ctx, c, err)
	case s.Provider != a.name:
		return StatusInvalidSID
	case s.PlayerID != c.r.UserID:
		return StatusInvalidParameter
	}
	return ""
}

func (a *Adapter) sessionStatus(ctx context.Context, c *call, err error) string {
	if errors.Is(err, sessions.ErrNotFound) {
		return StatusInvalidSID
	}
	wallethttp.RequestLogger(ctx).Warn("evolution: session store failed", "instance", a.name, "method", c.m.Name, "err", err)
	return StatusTemporaryError
}

// walletStatus names the wallet errors every method shares. An outage is
// TEMPORARY_ERROR, never a business status.
func (a *Adapter) walletStatus(ctx context.Context, c *call, err error) string {
	switch wallet.ErrorCode(err) {
	case wallet.CodeWalletNotFound, wallet.CodeBadRequest, wallet.CodeInvalidAmount, wallet.CodeCurrencyMismatch:
		return StatusInvalidParameter
	case wallet.CodeInsufficientFunds:
		return StatusInsufficientFunds
	case wallet.CodeUnavailable, wallet.CodeRateLimited:
		return StatusTemporaryError
	case wallet.CodeInternal:
		if errors.Is(err, context.DeadlineExceeded) {
			return StatusTemporaryError
		}
	}
	wallethttp.RequestLogger(ctx).Warn("evolution: wallet call failed", "instance", a.name, "method", c.m.Name, "err", err)
	return StatusUnknownError
}

// fail answers an error status. Evolution wants the real balance even on
// errors: with withBalance, it is read (when the wallet answers; an
// unknown balance is left out rather than sent as a made-up zero).
func (a *Adapter) fail(ctx context.Context, c *call, st string, withBalance bool) provider.Reply {
	r := reply{Status: st, UUID: c.r.UUID}
	if withBalance && st != StatusTemporaryError && ctx.Err() == nil {
		if v, err := a.deps.Wallets.Get(ctx, c.r.UserID); err == nil {
			r.Balance, r.Bonus = provider.Money(v.Balance, 0), provider.Money(wallet.Zero(v.Currency), 0)
		}
	}
	return provider.Reply{Status: http.StatusOK, Body: r, Code: st}
}

// balanceReply answers status st with the balance.
func (a *Adapter) balanceReply(c *call, st string, cur wallet.Currency, balance wallet.Amount) provider.Reply {
	return provider.Reply{Status: http.StatusOK, Code: st, Body: reply{
		Status: st, Balance: provider.Money(balance, 0), Bonus: provider.Money(wallet.Zero(cur), 0), UUID: c.r.UUID,
	}}
}

// reply is every field an Evolution reply may carry. Money goes out as a
// JSON number with the currency's digits, exactly.
type reply struct {
	Status  string          `json:"status"`
	SID     string          `json:"sid,omitempty"`
	Balance provider.Number `json:"balance,omitempty"`
	Bonus   provider.Number `json:"bonus,omitempty"`
	UUID    string          `json:"uuid"`
}

func status(st, uuid string) provider.Reply {
	return provider.Reply{Status: http.StatusOK, Body: reply{Status: st, UUID: uuid}, Code: st}
}

func ptr[T any](v T) *T { return &v }
