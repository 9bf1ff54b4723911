package sim_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walletd/walletd/providers"
	"github.com/walletd/walletd/providers/providertest"
	"github.com/walletd/walletd/providers/sim"
)

// config is walletd's provider configuration of these tests: both env
// shortcuts, plus a file with a crediting Pragmatic instance and an
// Evolution instance that rotates sids.
func config(t *testing.T) providers.Config {
	t.Helper()
	file := filepath.Join(t.TempDir(), "providers.json")
	conf := `{"instances": [
		{"name": "ppcredit", "kind": "pragmatic", "secretEnv": "PPC_SECRET", "bonusWin": "credit"},
		{"name": "evorot", "kind": "evolution", "authToken": "evorot-token", "rotateSidOnCheck": true}]}`
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PPC_SECRET": "ppc-secret"}
	return providers.Config{File: file, PragmaticSecret: "pp-secret", EvolutionAuthToken: "evo-token",
		Getenv: func(k string) string { return env[k] }}
}

func TestSimulatorMatchesTheLedger(t *testing.T) {
	cfg := config(t)
	stack := providertest.New(t, cfg)
	provs, err := sim.ProvidersOf(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := sim.Run(ctx, sim.Config{
		BaseURL: stack.URL, APIKey: providertest.APIKey, Providers: provs,
		Players: 4, Rounds: 40, Currencies: []string{"EUR", "JPY", "KWD"}, RetryRate: 0.4, Seed: 42,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rep.Print(&out)
	t.Log("\n" + out.String())
	if !rep.OK() {
		t.Fatalf("%d mismatches with the ledger", rep.MismatchCount)
	}
	if len(rep.Providers) != 4 {
		t.Fatalf("%d providers played, want 4", len(rep.Providers))
	}
	// The run went through the interesting paths, retries included.
	seen := map[string]int{}
	for _, p := range rep.Providers {
		if p.Rounds != 4*40 {
			t.Errorf("%s played %d rounds, want %d", p.Instance, p.Rounds, 4*40)
		}
		for k, n := range p.Outcomes {
			seen[k] += n
		}
	}
	for _, o := range []string{
		"bet 0", "bet 0 (retry)", "bet 1", "bet 5", "bet 120", "refund 0", "refund 120", "result 0 (retry)", "endRound 0",
		"debit OK", "debit BET_ALREADY_EXIST (retry)", "debit INSUFFICIENT_FUNDS", "debit FINAL_ERROR_ACTION_FAILED",
		"credit OK", "credit BET_ALREADY_SETTLED", "credit BET_DOES_NOT_EXIST", "cancel OK", "cancel BET_DOES_NOT_EXIST",
		"promo_payout OK", "balance INVALID_SID",
	} {
		if seen[o] == 0 {
			t.Errorf("no %q in the run", o)
		}
	}
}

func TestSimulatorReportsMismatches(t *testing.T) {
	cfg := config(t)
	stack := providertest.New(t, cfg)
	// The simulator believes ppcredit is informational: every bonusWin it
	// plays then pays more than its ledger expects.
	rep, err := sim.Run(context.Background(), sim.Config{
		BaseURL: stack.URL, APIKey: providertest.APIKey, Players: 2, Rounds: 60, Seed: 7,
		Providers: []sim.Provider{{Instance: "ppcredit", Kind: "pragmatic", Secret: "ppc-secret", BonusWin: "informational"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || !strings.Contains(strings.Join(rep.Mismatches, "\n"), "final balance") {
		t.Fatalf("a wrong ledger went unnoticed: %+v", rep.Mismatches)
	}
}

func TestSimulatorRefusesABadSetup(t *testing.T) {
	stack := providertest.New(t, config(t))
	for _, c := range []sim.Config{
		{BaseURL: stack.URL, APIKey: "wrong", Providers: []sim.Provider{{Instance: "pragmatic", Kind: "pragmatic", Secret: "pp-secret"}}},
		{BaseURL: stack.URL, APIKey: providertest.APIKey},
		{BaseURL: "http://127.0.0.1:1", APIKey: "k", Providers: []sim.Provider{{Instance: "evolution", Kind: "evolution", AuthToken: "x"}}},
		{BaseURL: stack.URL, APIKey: providertest.APIKey, Providers: []sim.Provider{{Instance: "h", Kind: "hub88"}}},
	} {
		if _, err := sim.Run(context.Background(), c); err == nil {
			t.Errorf("Run(%+v) did not refuse", c)
		}
	}
}
