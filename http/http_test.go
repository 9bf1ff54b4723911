package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/walletd/walletd/internal/logbuf"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walletd/walletd/wallet"
)

const testKey = "test-key-1"

// syncBuffer collects log output written from many goroutines.
type syncBuffer struct{ logbuf.Buffer }

// lines returns the JSON log lines.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

type testEnv struct {
	srv  *Server
	h    http.Handler
	fake *fakeWallets
	logs *syncBuffer
	reg  *prometheus.Registry
}

func newEnv(t testing.TB, mod ...func(*Config)) *testEnv {
	t.Helper()
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	cfg := Config{
		APIKeys:  []string{testKey},
		Registry: reg,
		Logger:   slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Version:  "test",
	}
	for _, m := range mod {
		m(&cfg)
	}
	fake := newFakeWallets()
	srv := NewServer(cfg, fake)
	return &testEnv{srv: srv, h: srv.Handler(), fake: fake, logs: logs, reg: reg}
}

// req is one test request; key "" means the right key, "-" no header.
type req struct {
	method, path, body string
	key                string
	header             map[string]string
	ctx                context.Context
}

func (e *testEnv) do(t *testing.T, r req) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.ctx != nil {
		hr = hr.WithContext(r.ctx)
	}
	if r.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	switch r.key {
	case "":
		hr.Header.Set("Authorization", "Bearer "+testKey)
	case "-":
	default:
		hr.Header.Set("Authorization", r.key)
	}
	for k, v := range r.header {
		if v == "" {
			hr.Header.Del(k)
		} else {
			hr.Header.Set(k, v)
		}
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, hr)
	return rec
}

func (e *testEnv) post(t *testing.T, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	return e.do(t, req{method: "POST", path: path, body: body})
}

func (e *testEnv) get(t *testing.T, path string) *httptest.ResponseRecorder {
	t.Helper()
	return e.do(t, req{method: "GET", path: path})
}

// mustOK posts and fails the test unless the status is want.
func (e *testEnv) mustPost(t *testing.T, path, body string, want int) map[string]any {
	t.Helper()
	rec := e.post(t, path, body)
	if rec.Code != want {
		t.Fatalf("POST %s %s: status %d, want %d: %s", path, body, rec.Code, want, rec.Body)
	}
	return decodeMap(t, rec)
}

func decodeMap(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("Content-Type %q, want application/json; charset=utf-8 (body %q)", ct, rec.Body)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", rec.Body, err)
	}
	return m
}

// errorOf returns the code and message of an error reply, failing the test
// if the reply is not the contract's error JSON.
func errorOf(t *testing.T, rec *httptest.ResponseRecorder) (string, string) {
	t.Helper()
	m := decodeMap(t, rec)
	e, ok := m["error"].(map[string]any)
	if !ok || len(m) != 1 || len(e) != 2 {
		t.Fatalf("body %q is not {\"error\":{\"code\",\"message\"}}", rec.Body)
	}
	code, _ := e["code"].(string)
	msg, _ := e["message"].(string)
	if code == "" || msg == "" {
		t.Fatalf("error body %q lacks code or message", rec.Body)
	}
	return code, msg
}

func wantError(t *testing.T, rec *httptest.ResponseRecorder, status int, code string, msgHas ...string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d: %s", rec.Code, status, rec.Body)
	}
	gotCode, msg := errorOf(t, rec)
	if gotCode != code {
		t.Fatalf("code %s, want %s: %s", gotCode, code, rec.Body)
	}
	for _, s := range msgHas {
		if !strings.Contains(msg, s) {
			t.Fatalf("message %q does not mention %q", msg, s)
		}
	}
}

// withWallet creates wallet p1 in currency and deposits 100.
func (e *testEnv) withWallet(t *testing.T, player, currency string) {
	t.Helper()
	e.mustPost(t, "/v1/wallets", fmt.Sprintf(`{"player_id":%q,"currency":%q}`, player, currency), http.StatusCreated)
	e.mustPost(t, "/v1/wallets/"+player+"/deposit", `{"tx_id":"seed","amount":"100"}`, http.StatusOK)
}

func TestCreateWallet(t *testing.T) {
	e := newEnv(t)
	rec := e.post(t, "/v1/wallets", `{"player_id":"p1","currency":"EUR"}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	if got := rec.Header().Get("Location"); got != "/v1/wallets/p1" {
		t.Errorf("Location %q", got)
	}
	want := `{"player_id":"p1","currency":"EUR","balance":"0.00","version":0}` + "\n"
	if rec.Body.String() != want {
		t.Fatalf("body %s, want %s", rec.Body, want)
	}
	// Again with the same currency: 200, the existing wallet.
	rec = e.post(t, "/v1/wallets", `{"player_id":"p1","currency":"EUR"}`)
	if rec.Code != http.StatusOK || rec.Body.String() != want {
		t.Fatalf("re-create: %d %s", rec.Code, rec.Body)
	}
	// Another currency: CURRENCY_MISMATCH.
	wantError(t, e.post(t, "/v1/wallets", `{"player_id":"p1","currency":"USD"}`), 422, "CURRENCY_MISMATCH")
	// JPY has no minor digits, KWD three.
	if m := e.mustPost(t, "/v1/wallets", `{"player_id":"p2","currency":"JPY"}`, 201); m["balance"] != "0" {
		t.Errorf("JPY balance %v", m["balance"])
	}
	if m := e.mustPost(t, "/v1/wallets", `{"player_id":"p3","currency":"KWD"}`, 201); m["balance"] != "0.000" {
		t.Errorf("KWD balance %v", m["balance"])
	}

	for _, tc := range []struct {
		name, body, msg string
	}{
		{"missing player", `{"currency":"EUR"}`, "player_id"},
		{"empty player", `{"player_id":"","currency":"EUR"}`, "player_id"},
		{"bad player", `{"player_id":"a b","currency":"EUR"}`, "player_id"},
		{"long player", `{"player_id":"` + strings.Repeat("x", 129) + `","currency":"EUR"}`, "player_id"},
		{"number player", `{"player_id":12,"currency":"EUR"}`, "player_id"},
		{"missing currency", `{"player_id":"p9"}`, "currency"},
		{"lower case currency", `{"player_id":"p9","currency":"eur"}`, "currency"},
		{"unknown currency", `{"player_id":"p9","currency":"XXX"}`, "currency"},
		{"crypto currency", `{"player_id":"p9","currency":"BTC"}`, "currency"},
		{"number currency", `{"player_id":"p9","currency":978}`, "currency"},
		{"unknown field", `{"player_id":"p9","currency":"EUR","balance":"5"}`, `"balance"`},
		{"trailing", `{"player_id":"p9","currency":"EUR"}{}`, "one JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.post(t, "/v1/wallets", tc.body), 400, "BAD_REQUEST", tc.msg)
		})
	}
	for _, c := range e.fake.Calls() {
		if c.PlayerID == "p9" {
			t.Fatalf("a refused request reached the wallets: %+v", c)
		}
	}
}

func TestGetWallet(t *testing.T) {
	e := newEnv(t)
	e.withWallet(t, "p1", "EUR")
	rec := e.get(t, "/v1/wallets/p1")
	if rec.Code != 200 || rec.Body.String() != `{"player_id":"p1","currency":"EUR","balance":"100.00","version":1}`+"\n" {
		t.Fatalf("get: %d %s", rec.Code, rec.Body)
	}
	wantError(t, e.get(t, "/v1/wallets/nobody"), 404, "WALLET_NOT_FOUND")
	wantError(t, e.get(t, "/v1/wallets/a%20b"), 400, "BAD_REQUEST", "player_id")
	wantError(t, e.get(t, "/v1/wallets/"+strings.Repeat("x", 129)), 400, "BAD_REQUEST", "player_id")
}

// TestMoneyRoutes covers each money route's fields and validation, and the
// amount shapes of the contract, with the real wallet rules behind.
func TestMoneyRoutes(t *testing.T) {
	type tc struct {
		name   string
		route  string // deposit, withdraw, bet, win, rollback
		body   string
		status int
		code   string // error code, "" on success
		msg    string // part of the error message
	}
	long := strings.Repeat("x", 129)
	cases := []tc{
		// deposit
		{"deposit string", "deposit", `{"tx_id":"d1","amount":"10.50"}`, 200, "", ""},
		{"deposit number", "deposit", `{"tx_id":"d2","amount":10.5}`, 200, "", ""},
		{"deposit integer", "deposit", `{"tx_id":"d3","amount":7}`, 200, "", ""},
		{"deposit zero", "deposit", `{"tx_id":"d4","amount":"0"}`, 400, "INVALID_AMOUNT", ""},
		{"deposit empty amount", "deposit", `{"tx_id":"d5","amount":""}`, 400, "INVALID_AMOUNT", ""},
		{"deposit abc", "deposit", `{"tx_id":"d6","amount":"abc"}`, 400, "INVALID_AMOUNT", ""},
		{"deposit NaN", "deposit", `{"tx_id":"d7","amount":"NaN"}`, 400, "INVALID_AMOUNT", ""},
		{"deposit Inf", "deposit", `{"tx_id":"d7b","amount":"Infinity"}`, 400, "INVALID_AMOUNT", ""},
		{"deposit exponent string", "deposit", `{"tx_id":"d8","amount":"1e3"}`, 400, "INVALID_AMOUNT", ""},
		{"deposit exponent number", "deposit", `{"tx_id":"d9","amount":1e3}`, 400, "INVALID_AMOUNT", ""},
		{"deposit negative number", "deposit", `{"tx_id":"d10","amount":-1}`, 400, "INVALID_AMOUNT", ""},
		{"deposit negative string", "deposit", `{"tx_id":"d11","amount":"-1"}`, 400, "INVALID_AMOUNT", ""},
		{"deposit too many decimals", "deposit", `{"tx_id":"d12","amount":"1.005"}`, 400, "INVALID_AMOUNT", ""},
		{"deposit too many decimals number", "deposit", `{"tx_id":"d12b","amount":1.005}`, 400, "INVALID_AMOUNT", ""},
		{"deposit 19 integer digits", "deposit", `{"tx_id":"d13","amount":"1234567890123456789"}`, 400, "INVALID_AMOUNT", ""},
		{"deposit spaces", "deposit", `{"tx_id":"d14","amount":" 1"}`, 400, "INVALID_AMOUNT", ""},
		{"deposit missing amount", "deposit", `{"tx_id":"d15"}`, 400, "BAD_REQUEST", "amount"},
		{"deposit null amount", "deposit", `{"tx_id":"d16","amount":null}`, 400, "BAD_REQUEST", "amount"},
		{"deposit bool amount", "deposit", `{"tx_id":"d17","amount":true}`, 400, "BAD_REQUEST", "amount"},
		{"deposit object amount", "deposit", `{"tx_id":"d18","amount":{"v":1}}`, 400, "BAD_REQUEST", "amount"},
		{"deposit array amount", "deposit", `{"tx_id":"d19","amount":[1]}`, 400, "BAD_REQUEST", "amount"},
		{"deposit missing tx", "deposit", `{"amount":"1"}`, 400, "BAD_REQUEST", "tx_id"},
		{"deposit number tx", "deposit", `{"tx_id":5,"amount":"1"}`, 400, "BAD_REQUEST", "tx_id"},
		{"deposit bad tx", "deposit", `{"tx_id":"a/b","amount":"1"}`, 400, "BAD_REQUEST", "tx_id"},
		{"deposit long tx", "deposit", `{"tx_id":"` + long + `","amount":"1"}`, 400, "BAD_REQUEST", "tx_id"},
		{"deposit currency field", "deposit", `{"tx_id":"d20","amount":"1","currency":"EUR"}`, 400, "BAD_REQUEST", `"currency"`},
		{"deposit unknown field", "deposit", `{"tx_id":"d21","amount":"1","note":"x"}`, 400, "BAD_REQUEST", `"note"`},
		// withdraw
		{"withdraw", "withdraw", `{"tx_id":"w1","amount":"5"}`, 200, "", ""},
		{"withdraw too much", "withdraw", `{"tx_id":"w2","amount":"1000"}`, 422, "INSUFFICIENT_FUNDS", ""},
		{"withdraw zero", "withdraw", `{"tx_id":"w3","amount":0}`, 400, "INVALID_AMOUNT", ""},
		{"withdraw missing amount", "withdraw", `{"tx_id":"w4"}`, 400, "BAD_REQUEST", "amount"},
		// bet
		{"bet", "bet", `{"tx_id":"b1","round_id":"r1","game_id":"g1","amount":"2.50"}`, 200, "", ""},
		{"bet currency", "bet", `{"tx_id":"b2","round_id":"r1","game_id":"g1","amount":1,"currency":"EUR"}`, 200, "", ""},
		{"bet zero stake", "bet", `{"tx_id":"b3","round_id":"r2","game_id":"g1","amount":"0"}`, 200, "", ""},
		{"bet currency mismatch", "bet", `{"tx_id":"b4","round_id":"r1","game_id":"g1","amount":1,"currency":"USD"}`, 422, "CURRENCY_MISMATCH", ""},
		{"bet unknown currency", "bet", `{"tx_id":"b5","round_id":"r1","game_id":"g1","amount":1,"currency":"ABC"}`, 400, "BAD_REQUEST", "currency"},
		{"bet lower currency", "bet", `{"tx_id":"b5b","round_id":"r1","game_id":"g1","amount":1,"currency":"eur"}`, 400, "BAD_REQUEST", "currency"},
		{"bet missing round", "bet", `{"tx_id":"b6","game_id":"g1","amount":1}`, 400, "BAD_REQUEST", "round_id"},
		{"bet missing game", "bet", `{"tx_id":"b7","round_id":"r1","amount":1}`, 400, "BAD_REQUEST", "game_id"},
		{"bet bad game", "bet", `{"tx_id":"b8","round_id":"r1","game_id":"g 1","amount":1}`, 400, "BAD_REQUEST", "game_id"},
		{"bet missing amount", "bet", `{"tx_id":"b9","round_id":"r1","game_id":"g1"}`, 400, "BAD_REQUEST", "amount"},
		{"bet too much", "bet", `{"tx_id":"b10","round_id":"r1","game_id":"g1","amount":"500"}`, 422, "INSUFFICIENT_FUNDS", ""},
		{"bet bad amount", "bet", `{"tx_id":"b11","round_id":"r1","game_id":"g1","amount":"1.2.3"}`, 400, "INVALID_AMOUNT", ""},
		{"bet ref field", "bet", `{"tx_id":"b12","round_id":"r1","game_id":"g1","amount":1,"bet_tx_id":"b1"}`, 400, "BAD_REQUEST", "bet_tx_id"},
		// win
		{"win with bet", "win", `{"tx_id":"x1","amount":"5","bet_tx_id":"b1","currency":"EUR"}`, 200, "", ""},
		{"win second on bet", "win", `{"tx_id":"x2","amount":"5","bet_tx_id":"b1"}`, 409, "BET_ALREADY_SETTLED", ""},
		{"win unknown bet", "win", `{"tx_id":"x3","amount":"5","bet_tx_id":"nope"}`, 404, "BET_NOT_FOUND", ""},
		{"win round", "win", `{"tx_id":"x4","amount":"0","round_id":"r2"}`, 200, "", ""},
		{"win plain", "win", `{"tx_id":"x5","amount":1.25}`, 200, "", ""},
		{"win bad bet id", "win", `{"tx_id":"x6","amount":"1","bet_tx_id":"a b"}`, 400, "BAD_REQUEST", "bet_tx_id"},
		{"win bad round id", "win", `{"tx_id":"x7","amount":"1","round_id":"` + long + `"}`, 400, "BAD_REQUEST", "round_id"},
		{"win missing amount", "win", `{"tx_id":"x8"}`, 400, "BAD_REQUEST", "amount"},
		{"win currency mismatch", "win", `{"tx_id":"x9","amount":"1","currency":"GBP"}`, 422, "CURRENCY_MISMATCH", ""},
		{"win game field", "win", `{"tx_id":"x10","amount":"1","game_id":"g1"}`, 400, "BAD_REQUEST", "game_id"},
		// rollback
		{"rollback", "rollback", `{"tx_id":"rb1","ref_tx_id":"b2"}`, 200, "", ""},
		{"rollback settled", "rollback", `{"tx_id":"rb2","ref_tx_id":"b1"}`, 409, "BET_ALREADY_SETTLED", ""},
		{"rollback unseen bet", "rollback", `{"tx_id":"rb3","ref_tx_id":"later"}`, 200, "", ""},
		{"bet after its rollback", "bet", `{"tx_id":"later","round_id":"r3","game_id":"g1","amount":"1"}`, 409, "BET_ROLLED_BACK", ""},
		{"rollback missing ref", "rollback", `{"tx_id":"rb4"}`, 400, "BAD_REQUEST", "ref_tx_id"},
		{"rollback bad ref", "rollback", `{"tx_id":"rb5","ref_tx_id":"a\"b"}`, 400, "BAD_REQUEST", "ref_tx_id"},
		{"rollback amount field", "rollback", `{"tx_id":"rb6","ref_tx_id":"b2","amount":"1"}`, 400, "BAD_REQUEST", `"amount"`},
		{"rollback missing tx", "rollback", `{"ref_tx_id":"b2"}`, 400, "BAD_REQUEST", "tx_id"},
		// idempotency through the real rules
		{"deposit retry", "deposit", `{"tx_id":"d1","amount":"10.5"}`, 200, "", ""},
		{"deposit conflict", "deposit", `{"tx_id":"d1","amount":"11"}`, 409, "TX_CONFLICT", ""},
		{"kind conflict", "withdraw", `{"tx_id":"d1","amount":"10.50"}`, 409, "TX_CONFLICT", ""},
		// malformed bodies
		{"empty body", "deposit", ``, 400, "BAD_REQUEST", "empty"},
		{"whitespace body", "deposit", "  \n", 400, "BAD_REQUEST", "empty"},
		{"null body", "deposit", `null`, 400, "BAD_REQUEST", "object"},
		{"array body", "deposit", `[{"tx_id":"d1","amount":"1"}]`, 400, "BAD_REQUEST", "object"},
		{"string body", "deposit", `"x"`, 400, "BAD_REQUEST", "object"},
		{"broken JSON", "deposit", `{"tx_id":"d1",`, 400, "BAD_REQUEST", "malformed"},
		{"bad syntax", "deposit", `{"tx_id" "d1"}`, 400, "BAD_REQUEST", "malformed"},
		{"bare NaN", "deposit", `{"tx_id":"d30","amount":NaN}`, 400, "BAD_REQUEST", "malformed"},
		{"trailing object", "deposit", `{"tx_id":"d31","amount":"1"} {"tx_id":"d32","amount":"1"}`, 400, "BAD_REQUEST", "one JSON object"},
		{"trailing garbage", "deposit", `{"tx_id":"d33","amount":"1"}x`, 400, "BAD_REQUEST", "one JSON object"},
		{"trailing brace", "deposit", `{"tx_id":"d34","amount":"1"}}`, 400, "BAD_REQUEST", "one JSON object"},
	}
	e := newEnv(t)
	e.withWallet(t, "p1", "EUR")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(e.fake.Calls())
			rec := e.do(t, req{method: "POST", path: "/v1/wallets/p1/" + c.route, body: c.body,
				header: map[string]string{"Content-Type": "application/json"}})
			if c.code != "" {
				wantError(t, rec, c.status, c.code, c.msg)
				if c.code == "BAD_REQUEST" && len(e.fake.Calls()) != before {
					t.Fatalf("a BAD_REQUEST reached the wallets: %+v", e.fake.Calls()[before:])
				}
				return
			}
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, c.status, rec.Body)
			}
			m := decodeMap(t, rec)
			for _, k := range []string{"tx_id", "player_id", "kind", "amount", "balance", "version", "duplicate"} {
				if _, ok := m[k]; !ok {
					t.Fatalf("tx result %s lacks %q", rec.Body, k)
				}
			}
			if len(m) != 7 {
				t.Fatalf("tx result %s has extra fields", rec.Body)
			}
			if m["player_id"] != "p1" || m["kind"] != c.route {
				t.Fatalf("tx result %s", rec.Body)
			}
		})
	}
}

func TestTxResult(t *testing.T) {
	e := newEnv(t)
	e.withWallet(t, "p1", "EUR")
	want := `{"tx_id":"b1","player_id":"p1","kind":"bet","amount":"2.50","balance":"97.50","version":2,"duplicate":false}` + "\n"
	rec := e.post(t, "/v1/wallets/p1/bet", `{"tx_id":"b1","round_id":"r1","game_id":"g1","amount":2.5}`)
	if rec.Code != 200 || rec.Body.String() != want {
		t.Fatalf("bet: %d %s, want %s", rec.Code, rec.Body, want)
	}
	e.mustPost(t, "/v1/wallets/p1/deposit", `{"tx_id":"d2","amount":"1"}`, 200)
	// A retry: duplicate, the original version, the current balance.
	want = `{"tx_id":"b1","player_id":"p1","kind":"bet","amount":"2.50","balance":"98.50","version":2,"duplicate":true}` + "\n"
	rec = e.post(t, "/v1/wallets/p1/bet", `{"tx_id":"b1","round_id":"r1","game_id":"g1","amount":"2.50"}`)
	if rec.Code != 200 || rec.Body.String() != want {
		t.Fatalf("retry: %d %s, want %s", rec.Code, rec.Body, want)
	}
	// Rollback: the amount is the refund.
	m := e.mustPost(t, "/v1/wallets/p1/rollback", `{"tx_id":"rb1","ref_tx_id":"b1"}`, 200)
	if m["amount"] != "2.50" || m["balance"] != "101.00" || m["kind"] != "rollback" {
		t.Fatalf("rollback: %v", m)
	}
	// Money request on a wallet that does not exist.
	wantError(t, e.post(t, "/v1/wallets/nobody/deposit", `{"tx_id":"d1","amount":"1"}`), 404, "WALLET_NOT_FOUND")
}

// TestAmountText checks that amounts reach the wallet as the exact text sent.
func TestAmountText(t *testing.T) {
	e := newEnv(t)
	e.withWallet(t, "p1", "EUR")
	for i, tc := range []struct{ amount, want string }{
		{`10.50`, "10.50"},
		{`0.1`, "0.1"},
		{`"0.10"`, "0.10"},
		{`123456789012345678.12`, "123456789012345678.12"},
		{`1E3`, "1E3"},
		{`-0`, "-0"},
		{`"\u0031"`, "1"},
	} {
		e.post(t, "/v1/wallets/p1/deposit", fmt.Sprintf(`{"tx_id":"t%d","amount":%s}`, i, tc.amount))
		c, _ := e.fake.lastCall()
		if c.Method != "Apply" || c.Cmd.Amount != tc.want {
			t.Errorf("amount %s reached the wallet as %+v, want %q", tc.amount, c, tc.want)
		}
	}
}

func TestCommands(t *testing.T) {
	e := newEnv(t)
	e.withWallet(t, "p1", "EUR")
	for _, tc := range []struct {
		route, body string
		want        wallet.Command
	}{
		{"deposit", `{"tx_id":"d1","amount":"1"}`, wallet.Command{Kind: "deposit", TxID: "d1", Amount: "1"}},
		{"withdraw", `{"tx_id":"w1","amount":"1"}`, wallet.Command{Kind: "withdraw", TxID: "w1", Amount: "1"}},
		{"bet", `{"tx_id":"b1","round_id":"r1","game_id":"g1","amount":"1","currency":"EUR"}`,
			wallet.Command{Kind: "bet", TxID: "b1", RoundID: "r1", GameID: "g1", Amount: "1", Currency: "EUR"}},
		{"win", `{"tx_id":"x1","amount":"1","round_id":"r1","bet_tx_id":"b1","currency":"EUR"}`,
			wallet.Command{Kind: "win", TxID: "x1", RoundID: "r1", Ref: "b1", Amount: "1", Currency: "EUR"}},
		{"rollback", `{"tx_id":"rb1","ref_tx_id":"b9"}`, wallet.Command{Kind: "rollback", TxID: "rb1", Ref: "b9"}},
	} {
		e.mustPost(t, "/v1/wallets/p1/"+tc.route, tc.body, 200)
		c, _ := e.fake.lastCall()
		if c.PlayerID != "p1" || c.Cmd != tc.want {
			t.Errorf("%s: command %+v, want %+v", tc.route, c.Cmd, tc.want)
		}
	}
}

func TestTransactions(t *testing.T) {
	e := newEnv(t)
	e.withWallet(t, "p1", "EUR")
	e.mustPost(t, "/v1/wallets/p1/bet", `{"tx_id":"b1","round_id":"r1","game_id":"g1","amount":"2"}`, 200)
	e.mustPost(t, "/v1/wallets/p1/win", `{"tx_id":"x1","amount":"3","bet_tx_id":"b1"}`, 200)

	rec := e.get(t, "/v1/wallets/p1/transactions")
	if rec.Code != 200 {
		t.Fatalf("history: %d %s", rec.Code, rec.Body)
	}
	var out struct {
		Transactions []map[string]any `json:"transactions"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Transactions) != 3 {
		t.Fatalf("history: %s", rec.Body)
	}
	win := out.Transactions[0]
	wantWin := map[string]any{"seq": float64(3), "tx_id": "x1", "kind": "win", "amount": "3.00",
		"balance_after": "101.00", "round_id": "", "ref_tx_id": "b1", "created_at": "2025-03-01T12:00:00.003Z"}
	if fmt.Sprint(win) != fmt.Sprint(wantWin) {
		t.Fatalf("newest %v, want %v", win, wantWin)
	}
	if out.Transactions[1]["tx_id"] != "b1" || out.Transactions[1]["round_id"] != "r1" || out.Transactions[2]["tx_id"] != "seed" {
		t.Fatalf("order: %s", rec.Body)
	}
	if c, _ := e.fake.lastCall(); c.Limit != 50 || c.Before != 0 {
		t.Fatalf("defaults: %+v", c)
	}

	rec = e.get(t, "/v1/wallets/p1/transactions?limit=1&before=3")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"tx_id":"b1"`) || strings.Count(rec.Body.String(), `"seq"`) != 1 {
		t.Fatalf("page: %d %s", rec.Code, rec.Body)
	}
	if c, _ := e.fake.lastCall(); c.Limit != 1 || c.Before != 3 {
		t.Fatalf("params: %+v", c)
	}
	if rec := e.get(t, "/v1/wallets/p1/transactions?limit=1000"); rec.Code != 200 {
		t.Fatalf("limit 1000: %d", rec.Code)
	}
	// An empty page is an empty list, not null.
	if rec := e.get(t, "/v1/wallets/p1/transactions?before=1"); rec.Body.String() != `{"transactions":[]}`+"\n" {
		t.Fatalf("empty page: %s", rec.Body)
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=-1", "limit=abc", "limit=", "limit=1.5", "limit=+5",
		"before=0", "before=-1", "before=x", "before=", "before=18446744073709551616"} {
		wantError(t, e.get(t, "/v1/wallets/p1/transactions?"+q), 400, "BAD_REQUEST", strings.Split(q, "=")[0])
	}
	wantError(t, e.get(t, "/v1/wallets/nobody/transactions"), 404, "WALLET_NOT_FOUND")
}

func TestAuth(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.APIKeys = []string{"alpha", "", "beta"} })
	for _, tc := range []struct {
		name, auth string
		status     int
	}{
		{"missing", "-", 401},
		{"empty", "Bearer ", 401},
		{"wrong", "Bearer gamma", 401},
		{"prefix of key", "Bearer alph", 401},
		{"longer than key", "Bearer alphaa", 401},
		{"basic", "Basic YWxwaGE6", 401},
		{"no scheme", "alpha", 401},
		{"first key", "Bearer alpha", 404},
		{"second key", "Bearer beta", 404},
		{"scheme case", "bearer beta", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.do(t, req{method: "GET", path: "/v1/wallets/p1", key: tc.auth})
			if tc.status == 401 {
				wantError(t, rec, 401, "UNAUTHORIZED")
				if rec.Header().Get("WWW-Authenticate") == "" {
					t.Error("no WWW-Authenticate")
				}
				if rec.Header().Get("X-Request-ID") == "" {
					t.Error("no X-Request-ID on 401")
				}
				return
			}
			wantError(t, rec, 404, "WALLET_NOT_FOUND")
		})
	}
	// A refused request never reaches the wallets, not even its body.
	if rec := e.do(t, req{method: "POST", path: "/v1/wallets", body: `{"player_id":"p1","currency":"EUR"}`, key: "-"}); rec.Code != 401 {
		t.Fatalf("POST without key: %d", rec.Code)
	}
	for _, c := range e.fake.Calls() {
		if c.Method == "Open" {
			t.Fatal("an unauthorized create reached the wallets")
		}
	}
	// Open endpoints.
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if rec := e.do(t, req{method: "GET", path: p, key: "-"}); rec.Code != 200 {
			t.Errorf("%s without key: %d", p, rec.Code)
		}
	}
	// No keys at all: every /v1 request is refused.
	none := newEnv(t, func(c *Config) { c.APIKeys = nil })
	wantError(t, none.do(t, req{method: "GET", path: "/v1/wallets/p1", key: "Bearer "}), 401, "UNAUTHORIZED")
	wantError(t, none.do(t, req{method: "GET", path: "/v1/wallets/p1", key: "-"}), 401, "UNAUTHORIZED")
	// Keys never reach the logs.
	if s := e.logs.String(); strings.Contains(s, "alpha") || strings.Contains(s, "beta") || strings.Contains(s, "Authorization") {
		t.Fatalf("logs mention a key: %s", s)
	}
}

func TestRequestID(t *testing.T) {
	e := newEnv(t)
	e.withWallet(t, "p1", "EUR")
	for _, tc := range []struct {
		name, sent string
		echoed     bool
	}{
		{"sane", "req-42.a_b:c@d", true},
		{"max length", strings.Repeat("a", 128), true},
		{"too long", strings.Repeat("a", 129), false},
		{"space", "a b", false},
		{"quote", `a"b`, false},
		{"missing", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []req{
				{method: "GET", path: "/v1/wallets/p1"},
				{method: "GET", path: "/nowhere"},
				{method: "GET", path: "/v1/wallets/p1", key: "-"},
				{method: "POST", path: "/v1/wallets/p1/deposit", body: `{"tx_id":"x","amount":"abc"}`},
			} {
				r.header = map[string]string{"X-Request-ID": tc.sent}
				rec := e.do(t, r)
				got := rec.Header().Get("X-Request-ID")
				if tc.echoed && got != tc.sent {
					t.Fatalf("%s %s: X-Request-ID %q, want %q", r.method, r.path, got, tc.sent)
				}
				if !tc.echoed && (got == tc.sent || len(got) != 32) {
					t.Fatalf("%s %s: X-Request-ID %q, want a new one", r.method, r.path, got)
				}
			}
		})
	}
	// The wallets see the id in their context, and the log lines carry it.
	rec := e.do(t, req{method: "GET", path: "/v1/wallets/p1", header: map[string]string{"X-Request-ID": "trace-me"}})
	if c, _ := e.fake.lastCall(); c.RequestID != "trace-me" {
		t.Fatalf("wallet call has request id %q", c.RequestID)
	}
	if rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	found := false
	for _, l := range e.logs.lines(t) {
		if l["request_id"] == "trace-me" {
			found = true
		}
		if id, _ := l["request_id"].(string); id == "" {
			t.Fatalf("log line without request_id: %v", l)
		}
	}
	if !found {
		t.Fatal("no log line with the request id")
	}
}

func TestBodyLimitAndContentType(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxBodyBytes = 100 })
	e.withWallet(t, "p1", "EUR")
	big := `{"tx_id":"d1","amount":"1","x":"` + strings.Repeat("y", 200) + `"}`
	wantError(t, e.post(t, "/v1/wallets/p1/deposit", big), 413, "BAD_REQUEST", "too large")
	// Large only through trailing data.
	wantError(t, e.post(t, "/v1/wallets/p1/deposit", `{"tx_id":"d1","amount":"1"}`+strings.Repeat(" ", 200)), 413, "BAD_REQUEST", "too large")

	d := newEnv(t) // default limit 64 KiB
	d.withWallet(t, "p1", "EUR")
	wantError(t, d.post(t, "/v1/wallets/p1/deposit", `{"tx_id":"`+strings.Repeat("a", 70<<10)+`","amount":"1"}`), 413, "BAD_REQUEST", "too large")

	for _, tc := range []struct {
		ct     string
		status int
	}{
		{"", 200},
		{"application/json", 200},
		{"application/json; charset=utf-8", 200},
		{"Application/JSON; charset=UTF-8", 200},
		{"application/json; charset=iso-8859-1", 200},
		{"application/problem+json", 200},
		{"text/plain", 415},
		{"application/x-www-form-urlencoded", 415},
		{"application/jsonx", 415},
		{";;;", 415},
	} {
		rec := e.do(t, req{method: "POST", path: "/v1/wallets/p1/deposit", body: `{"tx_id":"c1","amount":"1"}`,
			header: map[string]string{"Content-Type": tc.ct}})
		if tc.status == 415 {
			wantError(t, rec, 415, "BAD_REQUEST", "Content-Type")
		} else if rec.Code != tc.status {
			t.Errorf("Content-Type %q: %d %s", tc.ct, rec.Code, rec.Body)
		}
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/", 404, "NOT_FOUND"},
		{"GET", "/v2/wallets", 404, "NOT_FOUND"},
		{"GET", "/v1/wallets/p1/", 404, "NOT_FOUND"},   // no redirect to the slash-less path
		{"GET", "/V1/WALLETS/p1", 404, "NOT_FOUND"},    // no case-fixing redirect
		{"GET", "/v1/wallets/a/b/c", 404, "NOT_FOUND"}, //
		{"POST", "/v1/sessions", 404, "NOT_FOUND"},     // not yet
		{"DELETE", "/v1/wallets/p1", 405, "METHOD_NOT_ALLOWED"},
		{"GET", "/v1/wallets", 405, "METHOD_NOT_ALLOWED"},
		{"PUT", "/v1/wallets/p1/bet", 405, "METHOD_NOT_ALLOWED"},
		{"POST", "/healthz", 405, "METHOD_NOT_ALLOWED"},
	} {
		rec := e.do(t, req{method: tc.method, path: tc.path})
		wantError(t, rec, tc.status, tc.code)
		if rec.Header().Get("X-Request-ID") == "" {
			t.Errorf("%s %s: no X-Request-ID", tc.method, tc.path)
		}
		if tc.status == 405 && rec.Header().Get("Allow") == "" {
			t.Errorf("%s %s: no Allow header", tc.method, tc.path)
		}
	}
}

// errWithRetry is an error that says when to retry, as a rate limiter's may.
type errWithRetry struct{ err *wallet.Error }

func (e errWithRetry) Error() string             { return e.err.Error() }
func (e errWithRetry) RetryAfter() time.Duration { return 2500 * time.Millisecond }
func (e errWithRetry) Unwrap() error             { return e.err }

func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		status     int
		code       string
		retryAfter string
		message    string
	}{
		{"bad request", wallet.Errorf(wallet.CodeBadRequest, "m"), 400, "BAD_REQUEST", "", "m"},
		{"invalid amount", wallet.Errorf(wallet.CodeInvalidAmount, "m"), 400, "INVALID_AMOUNT", "", "m"},
		{"unauthorized", wallet.Errorf(wallet.CodeUnauthorized, "m"), 401, "UNAUTHORIZED", "", "m"},
		{"wallet not found", wallet.Errorf(wallet.CodeWalletNotFound, "m"), 404, "WALLET_NOT_FOUND", "", "m"},
		{"bet not found", wallet.Errorf(wallet.CodeBetNotFound, "m"), 404, "BET_NOT_FOUND", "", "m"},
		{"tx conflict", wallet.Errorf(wallet.CodeTxConflict, "m"), 409, "TX_CONFLICT", "", "m"},
		{"rolled back", wallet.Errorf(wallet.CodeBetRolledBack, "m"), 409, "BET_ROLLED_BACK", "", "m"},
		{"settled", wallet.Errorf(wallet.CodeBetAlreadySettled, "m"), 409, "BET_ALREADY_SETTLED", "", "m"},
		{"currency", wallet.Errorf(wallet.CodeCurrencyMismatch, "m"), 422, "CURRENCY_MISMATCH", "", "m"},
		{"funds", wallet.Errorf(wallet.CodeInsufficientFunds, "m"), 422, "INSUFFICIENT_FUNDS", "", "m"},
		{"rate limited", wallet.Errorf(wallet.CodeRateLimited, "m"), 429, "RATE_LIMITED", "1", "m"},
		{"rate limited with delay", errWithRetry{wallet.Errorf(wallet.CodeRateLimited, "m")}, 429, "RATE_LIMITED", "3", "m"},
		{"unavailable", wallet.Errorf(wallet.CodeUnavailable, "m"), 503, "UNAVAILABLE", "1", "m"},
		{"wrapped", fmt.Errorf("engine: %w", wallet.Errorf(wallet.CodeInsufficientFunds, "m")), 422, "INSUFFICIENT_FUNDS", "", "m"},
		{"deadline", context.DeadlineExceeded, 503, "UNAVAILABLE", "1", ""},
		{"wrapped deadline", fmt.Errorf("ask: %w", context.DeadlineExceeded), 503, "UNAVAILABLE", "1", ""},
		{"plain error", errors.New("pq: connection refused at 10.0.0.7"), 500, "INTERNAL", "", "internal error"},
		{"internal code", wallet.Errorf(wallet.CodeInternal, "secret detail"), 500, "INTERNAL", "", "internal error"},
		{"unknown code", wallet.Errorf("WHATEVER", "secret detail"), 500, "INTERNAL", "", "internal error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.fake.fail = tc.err
			for _, r := range []req{
				{method: "GET", path: "/v1/wallets/p1"},
				{method: "POST", path: "/v1/wallets", body: `{"player_id":"p1","currency":"EUR"}`},
				{method: "POST", path: "/v1/wallets/p1/deposit", body: `{"tx_id":"d1","amount":"1"}`},
				{method: "GET", path: "/v1/wallets/p1/transactions"},
			} {
				rec := e.do(t, r)
				wantError(t, rec, tc.status, tc.code, tc.message)
				if got := rec.Header().Get("Retry-After"); got != tc.retryAfter {
					t.Fatalf("Retry-After %q, want %q", got, tc.retryAfter)
				}
				if tc.status == 500 && (strings.Contains(rec.Body.String(), "secret") || strings.Contains(rec.Body.String(), "10.0.0.7")) {
					t.Fatalf("internal detail leaked: %s", rec.Body)
				}
			}
			if tc.status == 500 {
				logged := false
				for _, l := range e.logs.lines(t) {
					if l["level"] == "ERROR" && strings.Contains(fmt.Sprint(l["err"]), tc.err.Error()) {
						logged = true
					}
				}
				if !logged {
					t.Fatalf("the cause was not logged at ERROR: %s", e.logs)
				}
			}
		})
	}
}

// TestDisconnectDoesNotCancel: the wallets never see the client's
// cancellation, only the server's own bound.
func TestDisconnectDoesNotCancel(t *testing.T) {
	e := newEnv(t)
	e.withWallet(t, "p1", "EUR")

	// Canceled before the call.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := e.do(t, req{method: "POST", path: "/v1/wallets/p1/deposit", body: `{"tx_id":"d1","amount":"1"}`, ctx: ctx})
	if rec.Code != 200 {
		t.Fatalf("deposit: %d %s", rec.Code, rec.Body)
	}
	c, _ := e.fake.lastCall()
	if c.CtxErr != nil || !c.HasDeadline {
		t.Fatalf("the wallet call got ctx err %v, deadline %v", c.CtxErr, c.HasDeadline)
	}

	// Canceled while the call is in flight.
	e.fake.hold, e.fake.entered = make(chan struct{}), make(chan struct{}, 1)
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan *httptest.ResponseRecorder)
	go func() {
		done <- e.do(t, req{method: "POST", path: "/v1/wallets/p1/bet",
			body: `{"tx_id":"b1","round_id":"r1","game_id":"g1","amount":"1"}`, ctx: ctx})
	}()
	<-e.fake.entered
	cancel()
	time.Sleep(20 * time.Millisecond) // give a wrongly wired cancellation time to arrive
	close(e.fake.hold)
	rec = <-done
	if rec.Code != 200 {
		t.Fatalf("bet: %d %s", rec.Code, rec.Body)
	}
	c, _ = e.fake.lastCall()
	if c.CtxErr != nil || c.LateCtxErr != nil {
		t.Fatalf("the wallet call saw the client's cancellation: %v / %v", c.CtxErr, c.LateCtxErr)
	}
}

func TestWalletTimeout(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RequestTimeout = 30 * time.Millisecond })
	e.fake.hold = make(chan struct{}) // never released: the call runs into its deadline
	start := time.Now()
	rec := e.post(t, "/v1/wallets/p1/deposit", `{"tx_id":"d1","amount":"1"}`)
	wantError(t, rec, 503, "UNAVAILABLE")
	if rec.Header().Get("Retry-After") != "1" {
		t.Fatal("no Retry-After")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
	if c, _ := e.fake.lastCall(); !errors.Is(c.LateCtxErr, context.DeadlineExceeded) {
		t.Fatalf("call ended with %v", c.LateCtxErr)
	}
}

func TestHealthAndReady(t *testing.T) {
	e := newEnv(t)
	rec := e.do(t, req{method: "GET", path: "/healthz", key: "-"})
	if rec.Code != 200 || rec.Body.String() != `{"status":"ok"}`+"\n" {
		t.Fatalf("healthz: %d %s", rec.Code, rec.Body)
	}
	if rec := e.do(t, req{method: "GET", path: "/readyz", key: "-"}); rec.Code != 200 {
		t.Fatalf("readyz with no Ready: %d", rec.Code)
	}

	var fail error
	r := newEnv(t, func(c *Config) {
		c.Ready = func(ctx context.Context) error { return fail }
	})
	if rec := r.do(t, req{method: "GET", path: "/readyz", key: "-"}); rec.Code != 200 || decodeMap(t, rec)["status"] != "ready" {
		t.Fatalf("readyz: %d %s", rec.Code, rec.Body)
	}
	fail = errors.New("dial tcp 10.1.2.3:5432: connection refused")
	rec = r.do(t, req{method: "GET", path: "/readyz", key: "-"})
	wantError(t, rec, 503, "UNAVAILABLE")
	if strings.Contains(rec.Body.String(), "10.1.2.3") {
		t.Fatalf("readyz leaked the cause: %s", rec.Body)
	}
	if !strings.Contains(r.logs.String(), "10.1.2.3") {
		t.Fatal("readyz did not log the cause")
	}
	// Marked errors: the reply names the parts that do not answer, in order,
	// and still not their errors.
	fail = errors.Join(NotReady("store", nil), NotReady("redis", fail), NotReady("cluster", fmt.Errorf("etcd: %w", fail)))
	rec = r.do(t, req{method: "GET", path: "/readyz", key: "-"})
	wantError(t, rec, 503, "UNAVAILABLE", "not ready: redis, cluster not answering")
	if strings.Contains(rec.Body.String(), "10.1.2.3") || strings.Contains(rec.Body.String(), "store") {
		t.Fatalf("readyz: %s", rec.Body)
	}

	// A Ready that hangs and ignores its context is cut off after 2s.
	hang := make(chan struct{})
	defer close(hang)
	h := newEnv(t, func(c *Config) {
		c.Ready = func(context.Context) error { <-hang; return nil }
	})
	start := time.Now()
	wantError(t, h.do(t, req{method: "GET", path: "/readyz", key: "-"}), 503, "UNAVAILABLE", "no answer within 2s")
	if d := time.Since(start); d < readyTimeout || d > readyTimeout+2*time.Second {
		t.Fatalf("readyz took %v", d)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.withWallet(t, "p1", "EUR")
	e.withWallet(t, "p2", "EUR")
	e.mustPost(t, "/v1/wallets/p1/bet", `{"tx_id":"b1","round_id":"r1","game_id":"g1","amount":"1"}`, 200)
	e.mustPost(t, "/v1/wallets/p2/bet", `{"tx_id":"b1","round_id":"r1","game_id":"g1","amount":"1"}`, 200)
	e.post(t, "/v1/wallets/p2/bet", `{"tx_id":"b2","round_id":"r1","game_id":"g1","amount":"1000"}`)
	e.do(t, req{method: "GET", path: "/no/such/path/12345"})
	e.do(t, req{method: "BREW", path: "/v1/wallets/p1"})

	rec := e.do(t, req{method: "GET", path: "/metrics", key: "-"})
	if rec.Code != 200 {
		t.Fatalf("metrics: %d", rec.Code)
	}
	body := rec.Body.String()
	for _, want := range []string{
		`walletd_http_requests_total{code="200",method="POST",route="/v1/wallets/:player_id/bet"} 2`,
		`walletd_http_requests_total{code="422",method="POST",route="/v1/wallets/:player_id/bet"} 1`,
		`walletd_http_requests_total{code="201",method="POST",route="/v1/wallets"} 2`,
		`walletd_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`walletd_http_requests_total{code="405",method="OTHER",route="unmatched"} 1`,
		`walletd_http_request_duration_seconds_count{method="POST",route="/v1/wallets/:player_id/bet"} 3`,
		`walletd_build_info{version="test"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s\n%s", want, body)
		}
	}
	for _, raw := range []string{"/v1/wallets/p1", "/v1/wallets/p2", "12345", "BREW"} {
		if strings.Contains(body, raw) {
			t.Errorf("metrics carry the raw %q", raw)
		}
	}
	// A second server on the same registry shares the metrics instead of panicking.
	s2 := NewServer(Config{Registry: e.reg, Version: "test"}, newFakeWallets())
	s2.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/healthz", nil))
}

func TestAccessLog(t *testing.T) {
	e := newEnv(t)
	e.withWallet(t, "p1", "EUR")
	e.do(t, req{method: "POST", path: "/v1/wallets/p1/bet", body: `{"tx_id":"b1","round_id":"r1","game_id":"g1","amount":"1"}`,
		header: map[string]string{"X-Request-ID": "bet-1"}})
	e.fake.fail = errors.New("boom")
	e.do(t, req{method: "GET", path: "/v1/wallets/p1", header: map[string]string{"X-Request-ID": "get-1"}})

	var bet, get map[string]any
	for _, l := range e.logs.lines(t) {
		if l["msg"] != "http request" {
			continue
		}
		switch l["request_id"] {
		case "bet-1":
			bet = l
		case "get-1":
			get = l
		}
	}
	if bet == nil || get == nil {
		t.Fatalf("access lines missing: %s", e.logs)
	}
	for k, v := range map[string]any{"level": "INFO", "method": "POST", "route": "/v1/wallets/:player_id/bet",
		"status": float64(200), "player_id": "p1"} {
		if bet[k] != v {
			t.Errorf("bet line %s = %v, want %v (%v)", k, bet[k], v, bet)
		}
	}
	if _, ok := bet["duration_ms"].(float64); !ok {
		t.Errorf("no duration_ms: %v", bet)
	}
	if b, _ := bet["bytes"].(float64); b < 50 {
		t.Errorf("bytes %v", bet["bytes"])
	}
	if get["level"] != "WARN" || get["status"] != float64(500) || get["code"] != "INTERNAL" {
		t.Errorf("5xx line: %v", get)
	}
	if strings.Contains(e.logs.String(), testKey) {
		t.Fatal("the key reached the logs")
	}
}

func TestPanicRecovery(t *testing.T) {
	e := newEnv(t)
	e.srv.Mount("POST", "/providers/test/boom", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("kaboom")
	}))
	rec := e.do(t, req{method: "POST", path: "/providers/test/boom", key: "-", header: map[string]string{"X-Request-ID": "p-1"}})
	wantError(t, rec, 500, "INTERNAL", "internal error")
	if rec.Header().Get("X-Request-ID") != "p-1" {
		t.Fatal("no request id on the 500")
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "kaboom") || !strings.Contains(logs, "goroutine") {
		t.Fatalf("panic not logged with a stack: %s", logs)
	}
	if strings.Contains(rec.Body.String(), "kaboom") {
		t.Fatal("panic value leaked")
	}
	// http.ErrAbortHandler keeps its meaning.
	e.srv.Mount("GET", "/providers/test/abort", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic(http.ErrAbortHandler)
	}))
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Fatalf("recovered %v, want http.ErrAbortHandler", p)
			}
		}()
		e.do(t, req{method: "GET", path: "/providers/test/abort", key: "-"})
	}()
}

func TestMount(t *testing.T) {
	e := newEnv(t)
	var sawPlayer string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetPlayerID(r.Context(), "p7")
		RequestLogger(r.Context()).Info("inside")
		sawPlayer = "yes"
		w.WriteHeader(204)
	})
	e.srv.Mount("POST", "/v1/sessions", h)
	e.srv.Mount("POST", "/providers/:name/authenticate", h)

	wantError(t, e.do(t, req{method: "POST", path: "/v1/sessions", key: "-"}), 401, "UNAUTHORIZED")
	if sawPlayer != "" {
		t.Fatal("a /v1 route ran without a key")
	}
	if rec := e.do(t, req{method: "POST", path: "/v1/sessions"}); rec.Code != 204 {
		t.Fatalf("mounted /v1 route: %d", rec.Code)
	}
	if rec := e.do(t, req{method: "POST", path: "/providers/x/authenticate", key: "-"}); rec.Code != 204 {
		t.Fatalf("mounted provider route: %d", rec.Code)
	}
	found := false
	for _, l := range e.logs.lines(t) {
		if l["route"] == "/providers/:name/authenticate" && l["player_id"] == "p7" && l["status"] == float64(204) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no access line for the mounted route: %s", e.logs)
	}
	if RequestLogger(context.Background()) == nil {
		t.Fatal("RequestLogger outside a request is nil")
	}
}

func TestHTTPServer(t *testing.T) {
	e := newEnv(t)
	hs := e.srv.HTTPServer("127.0.0.1:0")
	if hs.Addr != "127.0.0.1:0" || hs.Handler == nil || hs.ReadHeaderTimeout != 5*time.Second || hs.ReadTimeout != 15*time.Second ||
		hs.WriteTimeout != 30*time.Second || hs.IdleTimeout != 2*time.Minute || hs.MaxHeaderBytes != 64<<10 {
		t.Fatalf("server: %+v", hs)
	}
	// End to end over a real connection.
	ts := httptest.NewServer(e.srv.Handler())
	defer ts.Close()
	r, _ := http.NewRequest("POST", ts.URL+"/v1/wallets", strings.NewReader(`{"player_id":"p1","currency":"EUR"}`))
	r.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := ts.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 201 || resp.Header.Get("X-Request-ID") == "" {
		t.Fatalf("over TCP: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestOpenAPIListsEveryRoute keeps docs/openapi.yaml in step with the router.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	doc, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string][]string{
		"/v1/wallets":                         {"post"},
		"/v1/wallets/:player_id":              {"get"},
		"/v1/wallets/:player_id/deposit":      {"post"},
		"/v1/wallets/:player_id/withdraw":     {"post"},
		"/v1/wallets/:player_id/bet":          {"post"},
		"/v1/wallets/:player_id/win":          {"post"},
		"/v1/wallets/:player_id/rollback":     {"post"},
		"/v1/wallets/:player_id/transactions": {"get"},
		"/healthz":                            {"get"},
		"/readyz":                             {"get"},
		"/metrics":                            {"get"},
	}
	e := newEnv(t)
	text := string(doc)
	for pattern, methods := range routes {
		for _, m := range methods {
			if h, _, _ := e.srv.router.Lookup(strings.ToUpper(m), strings.ReplaceAll(pattern, ":player_id", "p1")); h == nil {
				t.Errorf("the router has no %s %s", m, pattern)
			}
		}
		path := strings.ReplaceAll(pattern, ":player_id", "{player_id}")
		i := strings.Index(text, "\n  "+path+":\n")
		if i < 0 {
			t.Errorf("openapi.yaml lacks path %s", path)
			continue
		}
		rest := text[i+len(path)+4:]
		if j := strings.Index(rest, "\n  /"); j >= 0 {
			rest = rest[:j]
		}
		for _, m := range methods {
			if !strings.Contains(rest, "\n    "+m+":\n") {
				t.Errorf("openapi.yaml lacks %s %s", m, path)
			}
		}
	}
}

// The money reply is written without reflection; it must be what
// encoding/json writes, or fall back to it.
func TestTxResultJSONMatchesEncodingJSON(t *testing.T) {
	for _, tc := range []txResultJSON{
		{TxID: "b-1", PlayerID: "p1", Kind: "bet", Amount: "10.00", Balance: "90.00", Version: 7},
		{TxID: "t:x@y.z", PlayerID: "pp.i1:p-9", Kind: "win", Amount: "0", Balance: "0.001", Version: 1 << 62, Duplicate: true},
		{TxID: `quote"d`, PlayerID: "p", Kind: "bet", Amount: "1", Balance: "1"},
		{TxID: `back\slash`, PlayerID: "p", Kind: "bet", Amount: "1", Balance: "1"},
		{TxID: "<script>&", PlayerID: "p", Kind: "bet", Amount: "1", Balance: "1"},
		{TxID: "tab\there", PlayerID: "p", Kind: "bet", Amount: "1", Balance: "1"},
		{TxID: "ünïcode", PlayerID: "p", Kind: "bet", Amount: "1", Balance: "1"},
		{TxID: "bad\xffutf8", PlayerID: "p", Kind: "bet", Amount: "1", Balance: "1"},
		{},
	} {
		want, err := json.Marshal(tc)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := tc.appendJSON(nil)
		if !ok {
			if plainJSON(tc.TxID) && plainJSON(tc.PlayerID) {
				t.Errorf("%+v: fell back for plain strings", tc)
			}
			continue
		}
		if string(got) != string(want) {
			t.Errorf("%+v:\n got  %s\n want %s", tc, got, want)
		}
	}
}

// TestReservedTxIDs: with provider namespaces reserved, a money request whose
// tx_id starts with one is refused (400) before it reaches the wallet; ids
// that merely resemble them pass, and references to provider transactions
// (a rollback's ref_tx_id, a win's bet_tx_id) are not new keys and pass.
func TestReservedTxIDs(t *testing.T) {
	e := newEnv(t)
	e.srv.ReserveTxIDPrefixes("evo.", "pp.")
	e.withWallet(t, "p1", "EUR")
	for _, tc := range []struct {
		route, body string
		refused     bool
	}{
		{"deposit", `{"tx_id":"pp.main:deposit:1","amount":"1"}`, true},
		{"withdraw", `{"tx_id":"evo.live:withdraw:1","amount":"1"}`, true},
		{"bet", `{"tx_id":"pp.main:bet:1","round_id":"r1","game_id":"g1","amount":"1"}`, true},
		{"win", `{"tx_id":"evo.x:win@ab","amount":"1"}`, true},
		{"rollback", `{"tx_id":"pp.","ref_tx_id":"b1"}`, true},
		{"bet", `{"tx_id":"pp","round_id":"r1","game_id":"g1","amount":"1"}`, false},
		{"bet", `{"tx_id":"ppx.main:bet:1","round_id":"r1","game_id":"g1","amount":"1"}`, false},
		{"bet", `{"tx_id":"PP.main:bet:1","round_id":"r1","game_id":"g1","amount":"1"}`, false},
		{"win", `{"tx_id":"w-1","amount":"1","bet_tx_id":"pp.main:bet:1","round_id":"pp.main:round:1"}`, false},
		{"rollback", `{"tx_id":"rb-1","ref_tx_id":"evo.live:bet:1"}`, false},
	} {
		before := len(e.fake.Calls())
		rec := e.post(t, "/v1/wallets/p1/"+tc.route, tc.body)
		reached := len(e.fake.Calls()) > before
		if tc.refused {
			wantError(t, rec, 400, "BAD_REQUEST", "tx_id", `"`+strings.SplitN(tc.body, `"`, 5)[3][:3])
			if reached {
				t.Errorf("%s %s reached the wallet", tc.route, tc.body)
			}
		} else if !reached {
			// (The win may then be refused by the wallet: its bet is unknown.)
			t.Errorf("%s %s: %d %s, want it to reach the wallet", tc.route, tc.body, rec.Code, rec.Body)
		}
	}
}
