package bench

import (
	"context"
	"testing"
	"time"

	"github.com/walletd/walletd/providers"
	"github.com/walletd/walletd/providers/providertest"
)

// Both provider wire formats through the simulator, timed by the harness:
// every request measured, the simulator's ledger clean.
func TestProviderFormats(t *testing.T) {
	stack := providertest.New(t, providers.Config{PragmaticSecret: "pp-secret", EvolutionAuthToken: "evo-token"})
	for _, tc := range []struct{ format, secret string }{
		{FormatPragmatic, "pp-secret"},
		{FormatEvolution, "evo-token"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := RunProvider(ctx, ProviderSpec{
				Target: Target{System: "stack", URL: stack.URL, APIKey: providertest.APIKey},
				Format: tc.format, Secret: tc.secret, Users: 4, Rounds: 10, WarmupRounds: 2, Seed: 7,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Log(res.Line())
			if res.Requests < 4*10 || res.OK != res.Requests || res.Discrepancies != 0 || res.Format != tc.format || res.LatencyMS.Max <= 0 {
				t.Fatalf("%+v", res)
			}
		})
	}
	// A wrong secret: every provider request is refused, and the simulator
	// reports it.
	res, err := RunProvider(context.Background(), ProviderSpec{
		Target: Target{System: "stack", URL: stack.URL, APIKey: providertest.APIKey},
		Format: FormatPragmatic, Secret: "wrong", Users: 1, Rounds: 2,
	})
	if err == nil && !res.Failed() {
		t.Fatalf("a wrong secret passed: %+v", res)
	}
}
