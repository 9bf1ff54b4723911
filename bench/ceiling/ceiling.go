// Package ceiling is the benchmark's upper bound: walletd's own HTTP stack
// (router, middleware, authentication, strict request decoding, access log,
// metrics, JSON replies) in front of wallets that do nothing. What it serves
// per second on a machine is what walletd could serve there if its engine
// and store cost nothing.
package ceiling

import (
	"context"
	"log/slog"

	"github.com/walletd/walletd/actors"
	wallethttp "github.com/walletd/walletd/http"
	"github.com/walletd/walletd/wallet"
)

// Handler returns the no-op server (serve its Handler or HTTPServer).
func Handler(apiKeys []string, logger *slog.Logger) *wallethttp.Server {
	return wallethttp.NewServer(wallethttp.Config{APIKeys: apiKeys, Logger: logger, Version: "ceiling"}, Wallets{})
}

// Wallets answers every call at once without keeping anything. Its replies
// have the contract's shape so a load generator parses them as it would
// walletd's; they carry no state (balance 0.00, version 1).
type Wallets struct{}

var _ actors.Wallets = Wallets{}

// eur is the currency of the replies.
func eur() wallet.Currency {
	c, _ := wallet.LookupCurrency("EUR")
	return c
}

// Open implements actors.Wallets.
func (Wallets) Open(_ context.Context, playerID string, c wallet.Currency) (actors.View, bool, error) {
	return actors.View{PlayerID: playerID, Currency: c, Balance: wallet.Zero(c)}, true, nil
}

// Get implements actors.Wallets.
func (Wallets) Get(_ context.Context, playerID string) (actors.View, error) {
	return actors.View{PlayerID: playerID, Currency: eur(), Balance: wallet.Zero(eur())}, nil
}

// Apply implements actors.Wallets.
func (Wallets) Apply(_ context.Context, _ string, cmd wallet.Command) (wallet.Result, error) {
	return wallet.Result{TxID: cmd.TxID, Kind: cmd.Kind, Amount: wallet.Zero(eur()), Balance: wallet.Zero(eur()), Version: 1, Outcome: wallet.OutcomeApplied}, nil
}

// History implements actors.Wallets.
func (Wallets) History(context.Context, string, uint64, int) ([]wallet.Event, error) {
	return nil, nil
}
