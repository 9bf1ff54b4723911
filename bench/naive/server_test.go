package naive

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/walletd/walletd/internal/pgtest"
)

// The baseline behind walletd's HTTP stack answers the contract's subset
// with the contract's JSON and codes.
func TestHandler(t *testing.T) {
	ctx := context.Background()
	w, err := Open(ctx, pgtest.DSN(t), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	srv := httptest.NewServer(Handler(w, []string{"k"}, nil).Handler())
	defer srv.Close()
	call := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer k")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: %s", method, path, b)
		}
		return resp.StatusCode, m
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               map[string]any // fields of the reply (error: its code)
	}{
		{"POST", "/v1/wallets", `{"player_id":"p","currency":"EUR"}`, 201, map[string]any{"balance": "0.00", "version": 0.0}},
		{"POST", "/v1/wallets", `{"player_id":"p","currency":"EUR"}`, 200, map[string]any{"balance": "0.00"}},
		{"POST", "/v1/wallets", `{"player_id":"p","currency":"USD"}`, 422, map[string]any{"code": "CURRENCY_MISMATCH"}},
		{"POST", "/v1/wallets/p/deposit", `{"tx_id":"d1","amount":"10"}`, 200, map[string]any{"balance": "10.00", "version": 1.0, "kind": "deposit"}},
		{"POST", "/v1/wallets/p/bet", `{"tx_id":"b1","round_id":"r1","game_id":"g","amount":"2.50"}`, 200, map[string]any{"balance": "7.50", "version": 2.0, "duplicate": false}},
		{"POST", "/v1/wallets/p/bet", `{"tx_id":"b1","round_id":"r1","game_id":"g","amount":"2.50"}`, 200, map[string]any{"version": 2.0, "duplicate": true, "amount": "2.50"}},
		{"POST", "/v1/wallets/p/win", `{"tx_id":"w1","bet_tx_id":"b1","amount":"0"}`, 200, map[string]any{"balance": "7.50", "version": 3.0}},
		{"POST", "/v1/wallets/p/bet", `{"tx_id":"b2","round_id":"r2","game_id":"g","amount":"1.25"}`, 200, map[string]any{"balance": "6.25"}},
		{"POST", "/v1/wallets/p/rollback", `{"tx_id":"rb1","ref_tx_id":"b2"}`, 200, map[string]any{"balance": "7.50", "amount": "1.25", "version": 5.0}},
		{"POST", "/v1/wallets/p/rollback", `{"tx_id":"rb2","ref_tx_id":"b2"}`, 409, map[string]any{"code": "BET_ROLLED_BACK"}},
		{"POST", "/v1/wallets/p/rollback", `{"tx_id":"rb3","ref_tx_id":"nope"}`, 404, map[string]any{"code": "BET_NOT_FOUND"}},
		{"POST", "/v1/wallets/p/bet", `{"tx_id":"b3","round_id":"r3","game_id":"g","amount":"100"}`, 422, map[string]any{"code": "INSUFFICIENT_FUNDS"}},
		{"POST", "/v1/wallets/p/bet", `{"tx_id":"b4","round_id":"r4","game_id":"g","amount":"1.001"}`, 400, map[string]any{"code": "INVALID_AMOUNT"}},
		{"POST", "/v1/wallets/q/bet", `{"tx_id":"b1","round_id":"r1","game_id":"g","amount":"1"}`, 404, map[string]any{"code": "WALLET_NOT_FOUND"}},
		{"GET", "/v1/wallets/p", "", 200, map[string]any{"player_id": "p", "currency": "EUR", "balance": "7.50", "version": 5.0}},
	} {
		status, got := call(tc.method, tc.path, tc.body)
		if e, ok := got["error"].(map[string]any); ok {
			got = e
		}
		if status != tc.status {
			t.Errorf("%s %s %s: HTTP %d %v, want %d", tc.method, tc.path, tc.body, status, got, tc.status)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s %s %s: %s = %v, want %v (%v)", tc.method, tc.path, tc.body, k, got[k], v, got)
			}
		}
	}
	_, hist := call("GET", "/v1/wallets/p/transactions?limit=10", "")
	txs, _ := hist["transactions"].([]any)
	if len(txs) != 5 {
		t.Fatalf("history %v", hist)
	}
	newest := txs[0].(map[string]any)
	if newest["seq"] != 5.0 || newest["kind"] != "rollback" || newest["ref_tx_id"] != "b2" || newest["balance_after"] != "7.50" {
		t.Errorf("newest %v", newest)
	}
}
