package actors

import (
	"context"

	"github.com/walletd/walletd/wallet"
)

// Wallets is how the edges (http/, providers/) reach wallets. The local
// Engine implements it by spawning one actor per wallet in this process; a
// cluster mode implements it by routing to the owning member. Nothing above
// this interface knows which.
//
// Every method may return a *wallet.Error with CodeUnavailable when the
// store cannot commit or the wallet is overloaded: nothing was applied (or,
// after a lost commit acknowledgement, a retry with the same tx_id answers
// duplicate).
type Wallets interface {
	// Open creates the wallet, or returns it if it exists with currency c
	// (created false). Another currency: CodeCurrencyMismatch.
	Open(ctx context.Context, playerID string, c wallet.Currency) (view View, created bool, err error)
	// Get returns the wallet; CodeWalletNotFound if there is none.
	Get(ctx context.Context, playerID string) (View, error)
	// Apply applies one money command and returns after it is committed.
	// Business refusals are *wallet.Error with the contract's codes.
	Apply(ctx context.Context, playerID string, cmd wallet.Command) (wallet.Result, error)
	// History lists committed transactions, newest first (see Store.History);
	// CodeWalletNotFound if there is no such wallet.
	History(ctx context.Context, playerID string, before uint64, limit int) ([]wallet.Event, error)
}

// View is a wallet as callers see it.
type View struct {
	PlayerID string
	Currency wallet.Currency
	Balance  wallet.Amount
	Version  uint64
}
