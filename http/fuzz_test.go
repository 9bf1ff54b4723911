package http

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/walletd/walletd/wallet"
)

var eur, _ = wallet.LookupCurrency("EUR")

// FuzzBetBody: no body on POST /v1/wallets/p1/bet ever gives a 5xx or a
// panic, and every refusal is the contract's error JSON.
func FuzzBetBody(f *testing.F) {
	for _, seed := range []string{
		`{"tx_id":"b1","round_id":"r1","game_id":"g1","amount":"1.00"}`,
		`{"tx_id":"b1","round_id":"r1","game_id":"g1","amount":1.5,"currency":"EUR"}`,
		`{"tx_id":"b2","round_id":"r1","game_id":"g1","amount":1e400}`,
		`{"tx_id":"b3","round_id":"r1","game_id":"g1","amount":"99999999999999999999999"}`,
		`{"tx_id":"b4","round_id":"r1","game_id":"g1","amount":-0.0}`,
		`{"tx_id":"b5","round_id":"r1","game_id":"g1","amount":null}`,
		`{"tx_id":"\u0000","amount":{}}`,
		`{"tx_id":"b1"}{}`,
		`[]`, `null`, ``, `{`, `"`, `{"a":`,
		`{"tx_id":"b6","round_id":"r1","game_id":"g1","amount":"1","currency":"eur"}`,
		`{"tx_id":"b7","round_id":"r1","game_id":"g1","amount":"\ud800"}`,
	} {
		f.Add(seed)
	}
	e := newEnv(f)
	ctx := context.Background()
	if _, _, err := e.fake.Open(ctx, "p1", eur); err != nil {
		f.Fatal(err)
	}
	if _, err := e.fake.Apply(ctx, "p1", wallet.Command{Kind: wallet.KindDeposit, TxID: "seed", Amount: "1000"}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/v1/wallets/p1/bet", strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+testKey)
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, r)
		if rec.Code >= 500 {
			t.Fatalf("body %q: status %d %s", body, rec.Code, rec.Body)
		}
		if rec.Code != http.StatusOK {
			errorOf(t, rec)
		}
	})
}
