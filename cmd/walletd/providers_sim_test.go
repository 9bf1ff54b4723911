package main

import (
	"context"
	"strings"
	"testing"

	"github.com/walletd/walletd/providers/sim"
)

// TestSimulatorAgainstRealBinary plays whole rounds as Pragmatic Play and as
// Evolution against the real walletd process — bets, wins, losses, multi-bet
// rounds, promos, retries with the same reference, refunds and cancels
// including refund-before-bet — then checks every wallet against the
// simulator's ledger and the journal with walletctl verify.
func TestSimulatorAgainstRealBinary(t *testing.T) {
	dir := t.TempDir()
	p := startProc(t, dir,
		"WALLET_PRAGMATIC_SECRET=pp-test-secret",
		"WALLET_EVOLUTION_AUTH_TOKEN=evo-test-token",
		"WALLET_RATE_GAMEPLAY=off", "WALLET_RATE_AUTH=off")
	rep, err := sim.Run(context.Background(), sim.Config{
		BaseURL: p.base,
		APIKey:  testKey,
		Providers: []sim.Provider{
			{Instance: "pragmatic", Kind: "pragmatic", Secret: "pp-test-secret"},
			{Instance: "evolution", Kind: "evolution", AuthToken: "evo-test-token"},
		},
		Players:    6,
		Rounds:     25,
		Currencies: []string{"EUR", "JPY", "KWD"},
		RetryRate:  0.25,
		Seed:       42,
	})
	if err != nil {
		t.Fatalf("simulator: %v", err)
	}
	if rep.MismatchCount > 0 {
		t.Fatalf("%d wallets differ from the simulator's ledger:\n%s", rep.MismatchCount, strings.Join(rep.Mismatches, "\n"))
	}
	for _, pr := range rep.Providers {
		if pr.Rounds == 0 || pr.Requests <= pr.Rounds {
			t.Fatalf("%s played %d rounds in %d requests", pr.Instance, pr.Rounds, pr.Requests)
		}
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	if out, code := walletctl(t, dir, "verify"); code != 0 {
		t.Fatalf("walletctl verify after the simulation: exit %d\n%s", code, out)
	}
}
