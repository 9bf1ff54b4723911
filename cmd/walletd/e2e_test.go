package main

import (
	"time"

	"fmt"
	"github.com/walletd/walletd/internal/config"
	"github.com/walletd/walletd/internal/requestid"
	"github.com/walletd/walletd/ratelimit/ratelimittest"
	"strings"
	"testing"
)

// The contract of wallet-api.md and the rules of wallet-semantics.md,
// exercised against the real server and the real embedded store.

func TestWalletLifecycle(t *testing.T) { eachStore(t, testWalletLifecycle) }

func testWalletLifecycle(t *testing.T, start starter) {
	ts := start(nil)
	r := ts.do("POST", "/v1/wallets", `{"player_id":"alice","currency":"EUR"}`)
	ts.expect(r, 201, "")
	if r.str("player_id") != "alice" || r.str("currency") != "EUR" || r.str("balance") != "0.00" || r.num("version") != 0 {
		t.Fatalf("created wallet: %s", r.Raw)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("content type %q", ct)
	}
	ts.expect(ts.do("POST", "/v1/wallets", `{"player_id":"alice","currency":"EUR"}`), 200, "")
	ts.expect(ts.do("POST", "/v1/wallets", `{"player_id":"alice","currency":"USD"}`), 422, "CURRENCY_MISMATCH")
	ts.expect(ts.do("POST", "/v1/wallets", `{"player_id":"bob","currency":"XYZ"}`), 400, "BAD_REQUEST")
	ts.expect(ts.do("POST", "/v1/wallets", `{"player_id":"bob"}`), 400, "BAD_REQUEST")
	ts.expect(ts.do("POST", "/v1/wallets", `{"player_id":"bad id","currency":"EUR"}`), 400, "BAD_REQUEST")
	ts.expect(ts.do("GET", "/v1/wallets/nobody", ""), 404, "WALLET_NOT_FOUND")
	ts.expect(ts.do("POST", "/v1/wallets/nobody/deposit", `{"tx_id":"d1","amount":"1"}`), 404, "WALLET_NOT_FOUND")
	ts.expect(ts.do("GET", "/v1/wallets/nobody/transactions", ""), 404, "WALLET_NOT_FOUND")
	r = ts.do("GET", "/v1/wallets/alice", "")
	ts.expect(r, 200, "")
	if r.str("balance") != "0.00" || r.num("version") != 0 {
		t.Fatalf("get: %s", r.Raw)
	}
}

func TestMoneyFlow(t *testing.T) { eachStore(t, testMoneyFlow) }

func testMoneyFlow(t *testing.T, start starter) {
	ts := start(nil)
	ts.open("p1", "EUR")
	steps := []struct {
		name, path, body string
		status           int
		code             string
		balance          string
		version          float64
		duplicate        bool
	}{
		{"deposit", "deposit", `{"tx_id":"d1","amount":"100.00"}`, 200, "", "100.00", 1, false},
		{"deposit retry", "deposit", `{"tx_id":"d1","amount":"100"}`, 200, "", "100.00", 1, true},
		{"deposit zero", "deposit", `{"tx_id":"d0","amount":"0"}`, 400, "INVALID_AMOUNT", "", 0, false},
		{"withdraw", "withdraw", `{"tx_id":"w1","amount":20.5}`, 200, "", "79.50", 2, false},
		{"withdraw too much", "withdraw", `{"tx_id":"w2","amount":"79.51"}`, 422, "INSUFFICIENT_FUNDS", "", 0, false},
		{"bet", "bet", `{"tx_id":"b1","round_id":"r1","game_id":"g1","amount":"10"}`, 200, "", "69.50", 3, false},
		{"bet retry answers the original version", "bet", `{"tx_id":"b1","round_id":"r1","game_id":"g1","amount":"10.00"}`, 200, "", "69.50", 3, true},
		{"bet conflict on amount", "bet", `{"tx_id":"b1","round_id":"r1","game_id":"g1","amount":"11"}`, 409, "TX_CONFLICT", "", 0, false},
		{"bet conflict on round", "bet", `{"tx_id":"b1","round_id":"r2","game_id":"g1","amount":"10"}`, 409, "TX_CONFLICT", "", 0, false},
		{"tx_id reused by another kind", "deposit", `{"tx_id":"b1","amount":"10"}`, 409, "TX_CONFLICT", "", 0, false},
		{"zero-stake bet", "bet", `{"tx_id":"b0","round_id":"r1","game_id":"g1","amount":"0"}`, 200, "", "69.50", 4, false},
		{"bet over balance", "bet", `{"tx_id":"b2","round_id":"r1","game_id":"g1","amount":"69.51"}`, 422, "INSUFFICIENT_FUNDS", "", 0, false},
		{"bet in another currency", "bet", `{"tx_id":"b3","round_id":"r1","game_id":"g1","amount":"1","currency":"USD"}`, 422, "CURRENCY_MISMATCH", "", 0, false},
		{"win for an unknown bet", "win", `{"tx_id":"x1","bet_tx_id":"nope","amount":"1"}`, 404, "BET_NOT_FOUND", "", 0, false},
		{"win settles b1", "win", `{"tx_id":"x1","bet_tx_id":"b1","amount":"25.25","currency":"EUR"}`, 200, "", "94.75", 5, false},
		{"second win for b1", "win", `{"tx_id":"x2","bet_tx_id":"b1","amount":"1"}`, 409, "BET_ALREADY_SETTLED", "", 0, false},
		{"rollback of a settled bet", "rollback", `{"tx_id":"rb1","ref_tx_id":"b1"}`, 409, "BET_ALREADY_SETTLED", "", 0, false},
		{"round win settles b0", "win", `{"tx_id":"x3","round_id":"r1","amount":"0"}`, 200, "", "94.75", 6, false},
		{"rollback of b0 after its round won", "rollback", `{"tx_id":"rb0","ref_tx_id":"b0"}`, 409, "BET_ALREADY_SETTLED", "", 0, false},
		{"promo win credits", "win", `{"tx_id":"promo1","amount":"5"}`, 200, "", "99.75", 7, false},
		{"bet to roll back", "bet", `{"tx_id":"b4","round_id":"r4","game_id":"g1","amount":"9.75"}`, 200, "", "90.00", 8, false},
		{"rollback refunds", "rollback", `{"tx_id":"rb4","ref_tx_id":"b4"}`, 200, "", "99.75", 9, false},
		{"rollback retry", "rollback", `{"tx_id":"rb4","ref_tx_id":"b4"}`, 200, "", "99.75", 9, true},
		{"second rollback, new tx_id, changes nothing", "rollback", `{"tx_id":"rb4b","ref_tx_id":"b4"}`, 200, "", "99.75", 9, false},
		{"win after rollback", "win", `{"tx_id":"x4","bet_tx_id":"b4","amount":"1"}`, 409, "BET_ROLLED_BACK", "", 0, false},
		{"rollback before bet", "rollback", `{"tx_id":"rb5","ref_tx_id":"b5"}`, 200, "", "99.75", 10, false},
		{"the late bet is refused", "bet", `{"tx_id":"b5","round_id":"r5","game_id":"g1","amount":"1"}`, 409, "BET_ROLLED_BACK", "", 0, false},
		{"refused requests were not recorded", "withdraw", `{"tx_id":"w2","amount":"0.75"}`, 200, "", "99.00", 11, false},
	}
	for _, s := range steps {
		r := ts.do("POST", "/v1/wallets/p1/"+s.path, s.body)
		if r.Status != s.status || r.code() != s.code {
			t.Fatalf("%s: got %d %q, want %d %q: %s", s.name, r.Status, r.code(), s.status, s.code, r.Raw)
		}
		if s.status != 200 {
			continue
		}
		dup, _ := r.Body["duplicate"].(bool)
		if r.str("balance") != s.balance || r.num("version") != s.version || dup != s.duplicate || r.str("player_id") != "p1" {
			t.Fatalf("%s: got %s; want balance %s version %v duplicate %v", s.name, r.Raw, s.balance, s.version, s.duplicate)
		}
		if r.str("kind") != s.path || r.str("tx_id") == "" {
			t.Fatalf("%s: kind/tx_id in %s", s.name, r.Raw)
		}
	}
	// Every refusal changed nothing: the journal has exactly the 11 applied.
	bal, ver := ts.balance("p1")
	if bal != "99.00" || ver != 11 {
		t.Fatalf("final %s v%v", bal, ver)
	}
}

func TestExactDecimals(t *testing.T) { eachStore(t, testExactDecimals) }

func testExactDecimals(t *testing.T, start starter) {
	ts := start(nil)
	for _, tc := range []struct {
		currency, deposit, bet, balance, tooPrecise string
	}{
		{"EUR", "0.30", "0.10", "0.20", "0.001"},
		{"JPY", "1000", "333", "667", "1.5"},
		{"KWD", "1.005", "0.001", "1.004", "0.0001"},
		{"USD", "999999999999999999.99", "0.01", "999999999999999999.98", "0.005"},
	} {
		p := "p-" + tc.currency
		ts.open(p, tc.currency)
		r := ts.do("POST", "/v1/wallets/"+p+"/deposit", `{"tx_id":"d","amount":"`+tc.deposit+`"}`)
		ts.expect(r, 200, "")
		if r.str("amount") != tc.deposit {
			t.Fatalf("%s deposit echoed %s", tc.currency, r.str("amount"))
		}
		// As a JSON number, parsed exactly too.
		r = ts.do("POST", "/v1/wallets/"+p+"/bet", `{"tx_id":"b","round_id":"r","game_id":"g","amount":`+tc.bet+`}`)
		ts.expect(r, 200, "")
		if r.str("balance") != tc.balance {
			t.Fatalf("%s: balance %s, want %s", tc.currency, r.str("balance"), tc.balance)
		}
		ts.expect(ts.do("POST", "/v1/wallets/"+p+"/bet", `{"tx_id":"b2","round_id":"r","game_id":"g","amount":"`+tc.tooPrecise+`"}`), 400, "INVALID_AMOUNT")
		if bal, _ := ts.balance(p); bal != tc.balance {
			t.Fatalf("%s: get balance %s", tc.currency, bal)
		}
	}
	// Three tenths in cents never drift.
	ts.open("drift", "EUR")
	for i := 0; i < 30; i++ {
		ts.expect(ts.do("POST", "/v1/wallets/drift/deposit", fmt.Sprintf(`{"tx_id":"d%d","amount":0.1}`, i)), 200, "")
	}
	if bal, _ := ts.balance("drift"); bal != "3.00" {
		t.Fatalf("30 × 0.1 = %s", bal)
	}
}

func TestBadInputChangesNothing(t *testing.T) { eachStore(t, testBadInputChangesNothing) }

func testBadInputChangesNothing(t *testing.T, start starter) {
	ts := start(nil)
	ts.open("p1", "EUR")
	ts.expect(ts.do("POST", "/v1/wallets/p1/deposit", `{"tx_id":"d1","amount":"50"}`), 200, "")
	cases := []struct {
		name, path, body, code string
		status                 int
	}{
		{"malformed JSON", "deposit", `{"tx_id":`, "BAD_REQUEST", 400},
		{"not an object", "deposit", `[1,2]`, "BAD_REQUEST", 400},
		{"trailing data", "deposit", `{"tx_id":"a","amount":"1"} {}`, "BAD_REQUEST", 400},
		{"unknown field", "deposit", `{"tx_id":"a","amount":"1","ammount":"2"}`, "BAD_REQUEST", 400},
		{"missing amount", "deposit", `{"tx_id":"a"}`, "BAD_REQUEST", 400},
		{"null amount", "deposit", `{"tx_id":"a","amount":null}`, "BAD_REQUEST", 400},
		{"bool amount", "deposit", `{"tx_id":"a","amount":true}`, "BAD_REQUEST", 400},
		{"numeric tx_id", "deposit", `{"tx_id":5,"amount":"1"}`, "BAD_REQUEST", 400},
		{"missing tx_id", "deposit", `{"amount":"1"}`, "BAD_REQUEST", 400},
		{"tx_id too long", "deposit", `{"tx_id":"` + strings.Repeat("a", 129) + `","amount":"1"}`, "BAD_REQUEST", 400},
		{"tx_id bad chars", "deposit", `{"tx_id":"a b","amount":"1"}`, "BAD_REQUEST", 400},
		{"empty amount", "deposit", `{"tx_id":"a","amount":""}`, "INVALID_AMOUNT", 400},
		{"abc", "deposit", `{"tx_id":"a","amount":"abc"}`, "INVALID_AMOUNT", 400},
		{"NaN", "deposit", `{"tx_id":"a","amount":"NaN"}`, "INVALID_AMOUNT", 400},
		{"Infinity", "deposit", `{"tx_id":"a","amount":"Infinity"}`, "INVALID_AMOUNT", 400},
		{"exponent string", "deposit", `{"tx_id":"a","amount":"1e3"}`, "INVALID_AMOUNT", 400},
		{"exponent number", "deposit", `{"tx_id":"a","amount":1e3}`, "INVALID_AMOUNT", 400},
		{"negative", "deposit", `{"tx_id":"a","amount":"-1"}`, "INVALID_AMOUNT", 400},
		{"negative number", "withdraw", `{"tx_id":"a","amount":-1}`, "INVALID_AMOUNT", 400},
		{"too many decimals", "deposit", `{"tx_id":"a","amount":"1.001"}`, "INVALID_AMOUNT", 400},
		{"19 integer digits", "deposit", `{"tx_id":"a","amount":"1000000000000000000"}`, "INVALID_AMOUNT", 400},
		{"bet without round", "bet", `{"tx_id":"a","game_id":"g","amount":"1"}`, "BAD_REQUEST", 400},
		{"bet without game", "bet", `{"tx_id":"a","round_id":"r","amount":"1"}`, "BAD_REQUEST", 400},
		{"bet with unknown currency", "bet", `{"tx_id":"a","round_id":"r","game_id":"g","amount":"1","currency":"EURO"}`, "BAD_REQUEST", 400},
		{"rollback without ref", "rollback", `{"tx_id":"a"}`, "BAD_REQUEST", 400},
		{"rollback of itself", "rollback", `{"tx_id":"a","ref_tx_id":"a"}`, "BAD_REQUEST", 400},
		{"win naming a deposit", "win", `{"tx_id":"a","bet_tx_id":"d1","amount":"1"}`, "BAD_REQUEST", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts.t = t
			ts.expect(ts.do("POST", "/v1/wallets/p1/"+tc.path, tc.body), tc.status, tc.code)
		})
	}
	ts.t = t
	if bal, ver := ts.balance("p1"); bal != "50.00" || ver != 1 {
		t.Fatalf("bad input changed the wallet: %s v%v", bal, ver)
	}
	// Huge bodies are refused before decoding.
	big := `{"tx_id":"a","amount":"1","x":"` + strings.Repeat("y", 1<<20) + `"}`
	if r := ts.do("POST", "/v1/wallets/p1/deposit", big); r.Status != 413 {
		t.Fatalf("1 MiB body: %d %s", r.Status, r.Raw)
	}
}

func TestTransactionsHistory(t *testing.T) { eachStore(t, testTransactionsHistory) }

func testTransactionsHistory(t *testing.T, start starter) {
	ts := start(nil)
	ts.open("p1", "KWD")
	for i := 1; i <= 5; i++ {
		ts.expect(ts.do("POST", "/v1/wallets/p1/deposit", fmt.Sprintf(`{"tx_id":"d%d","amount":"0.%03d"}`, i, i)), 200, "")
	}
	ts.expect(ts.do("POST", "/v1/wallets/p1/bet", `{"tx_id":"b1","round_id":"r1","game_id":"g1","amount":"0.002"}`), 200, "")
	ts.expect(ts.do("POST", "/v1/wallets/p1/rollback", `{"tx_id":"rb1","ref_tx_id":"b1"}`), 200, "")
	r := ts.do("GET", "/v1/wallets/p1/transactions?limit=3", "")
	ts.expect(r, 200, "")
	txs, _ := r.Body["transactions"].([]any)
	if len(txs) != 3 {
		t.Fatalf("want 3 transactions: %s", r.Raw)
	}
	first := txs[0].(map[string]any)
	if first["seq"] != 7.0 || first["tx_id"] != "rb1" || first["kind"] != "rollback" || first["amount"] != "0.002" ||
		first["balance_after"] != "0.015" || first["ref_tx_id"] != "b1" || first["round_id"] != "r1" || first["created_at"] == "" {
		t.Fatalf("newest transaction: %v", first)
	}
	r = ts.do("GET", "/v1/wallets/p1/transactions?limit=10&before=3", "")
	txs, _ = r.Body["transactions"].([]any)
	if len(txs) != 2 || txs[0].(map[string]any)["seq"] != 2.0 || txs[1].(map[string]any)["seq"] != 1.0 {
		t.Fatalf("before=3: %s", r.Raw)
	}
	for _, q := range []string{"limit=0", "limit=abc", "limit=100000", "before=-1", "before=x"} {
		ts.expect(ts.do("GET", "/v1/wallets/p1/transactions?"+q, ""), 400, "BAD_REQUEST")
	}
}

func TestAuthAndRequestIDs(t *testing.T) { eachStore(t, testAuthAndRequestIDs) }

func testAuthAndRequestIDs(t *testing.T, start starter) {
	ts := start(func(c *config.Config) { c.APIKeys = []string{testKey, "second-key"} })
	ts.expect(ts.do("GET", "/v1/wallets/p1", "", "Authorization", ""), 401, "UNAUTHORIZED")
	ts.expect(ts.do("GET", "/v1/wallets/p1", "", "Authorization", "Bearer wrong"), 401, "UNAUTHORIZED")
	ts.expect(ts.do("GET", "/v1/wallets/p1", "", "Authorization", "Basic "+testKey), 401, "UNAUTHORIZED")
	ts.expect(ts.do("GET", "/v1/wallets/p1", "", "Authorization", "Bearer second-key"), 404, "WALLET_NOT_FOUND")

	r := ts.do("GET", "/v1/wallets/p1", "", "X-Request-ID", "my-req-42")
	if r.Header.Get("X-Request-ID") != "my-req-42" {
		t.Fatalf("request id not echoed: %q", r.Header.Get("X-Request-ID"))
	}
	r = ts.do("GET", "/v1/wallets/p1", "", "X-Request-ID", "bad id with spaces")
	if id := r.Header.Get("X-Request-ID"); id == "" || strings.Contains(id, " ") {
		t.Fatalf("an insane request id must be replaced: %q", id)
	}
	if !strings.Contains(ts.logs.String(), `"request_id":"my-req-42"`) {
		t.Fatal("the access log does not carry the request id")
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		r := ts.do("GET", path, "", "Authorization", "")
		if r.Status != 200 || r.Header.Get("X-Request-ID") == "" {
			t.Fatalf("%s: %d", path, r.Status)
		}
	}
	if r := ts.do("GET", "/metrics", ""); !strings.Contains(r.Raw, "walletd_http_requests_total") || !strings.Contains(r.Raw, "walletd_wallet_actors_active") {
		t.Fatalf("metrics lack walletd families:\n%.2000s", r.Raw)
	}
	ts.expect(ts.do("GET", "/v2/nothing", ""), 404, "NOT_FOUND")
	if strings.Contains(ts.logs.String(), "second-key") || strings.Contains(ts.logs.String(), testKey) {
		t.Fatal("an API key appeared in the logs")
	}
}

// When the store cannot commit, requests get UNAVAILABLE, /readyz turns 503,
// and nothing is applied.
func TestStoreOutageIsUnavailable(t *testing.T) { eachStore(t, testStoreOutageIsUnavailable) }

func testStoreOutageIsUnavailable(t *testing.T, start starter) {
	ts := start(nil)
	ts.open("p1", "EUR")
	ts.expect(ts.do("POST", "/v1/wallets/p1/deposit", `{"tx_id":"d1","amount":"5"}`), 200, "")
	if err := ts.m.store.Close(); err != nil {
		t.Fatal(err)
	}
	r := ts.do("POST", "/v1/wallets/p1/deposit", `{"tx_id":"d2","amount":"5"}`)
	ts.expect(r, 503, "UNAVAILABLE")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("UNAVAILABLE without Retry-After")
	}
	ts.expect(ts.do("GET", "/readyz", ""), 503, r.code())
}

// TestRateLimited: a burst of bets over the gameplay policy gets 429
// RATE_LIMITED with Retry-After; settlements and deposits still pass; with
// Redis configured the same holds through Redis.
func TestRateLimited(t *testing.T) {
	for _, backend := range []string{"in-process", "redis"} {
		t.Run(backend, func(t *testing.T) {
			player := "rl-" + requestid.New()[:12] // Redis is shared: a fresh key
			ts := startServer(t, func(c *config.Config) {
				c.RateGameplay = config.Rate{N: 5, Window: time.Minute}
				if backend == "redis" {
					c.RedisAddr = ratelimittest.Addr(t)
				}
			})
			ts.open(player, "EUR")
			ts.expect(ts.do("POST", "/v1/wallets/"+player+"/deposit", `{"tx_id":"d","amount":"100"}`), 200, "")
			limited := 0
			for i := 0; i < 8; i++ {
				r := ts.do("POST", "/v1/wallets/"+player+"/bet", fmt.Sprintf(`{"tx_id":"b%d","round_id":"r","game_id":"g","amount":"1"}`, i))
				switch r.Status {
				case 200:
				case 429:
					ts.expect(r, 429, "RATE_LIMITED")
					if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
						t.Fatalf("429 without a useful Retry-After: %q", ra)
					}
					limited++
				default:
					t.Fatalf("bet %d: %d %s", i, r.Status, r.Raw)
				}
			}
			if limited != 3 {
				t.Fatalf("%d of 8 bets limited at 5/min, want 3", limited)
			}
			// Money already owed is never limited.
			ts.expect(ts.do("POST", "/v1/wallets/"+player+"/win", `{"tx_id":"w","bet_tx_id":"b0","amount":"2"}`), 200, "")
			ts.expect(ts.do("POST", "/v1/wallets/"+player+"/rollback", `{"tx_id":"rb","ref_tx_id":"b1"}`), 200, "")
			ts.expect(ts.do("POST", "/v1/wallets/"+player+"/deposit", `{"tx_id":"d2","amount":"1"}`), 200, "")
			if bal, _ := ts.balance(player); bal != "99.00" {
				t.Fatalf("balance %s, want 99.00 (5 bets, a win of 2, a refund of 1, a deposit of 1)", bal)
			}
			if r := ts.do("GET", "/metrics", ""); !strings.Contains(r.Raw, `walletd_ratelimit_decisions_total{decision="limited",policy="gameplay"} 3`) {
				t.Fatal("the rate-limit metric did not count the 3 refusals")
			}
		})
	}
}

// TestRedisDownFailsOpen: with Redis unreachable bets still go through (the
// limiter fails open), the error metric moves, and /readyz reports 503 as the
// contract requires (ready = store and, if configured, Redis answer).
func TestRedisDownFailsOpen(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.RedisAddr = ratelimittest.ClosedAddr(t) })
	ts.open("p1", "EUR")
	ts.expect(ts.do("POST", "/v1/wallets/p1/deposit", `{"tx_id":"d","amount":"10"}`), 200, "")
	for i := 0; i < 3; i++ {
		ts.expect(ts.do("POST", "/v1/wallets/p1/bet", fmt.Sprintf(`{"tx_id":"b%d","round_id":"r","game_id":"g","amount":"1"}`, i)), 200, "")
	}
	// The reply names what does not answer: Redis, and the session store
	// that lives there; not the wallet store.
	if r := ts.do("GET", "/readyz", ""); !strings.Contains(r.Raw, `"not ready: redis, session store not answering"`) {
		t.Fatalf("readyz with Redis down: %s", r.Raw)
	}
	ts.expect(ts.do("GET", "/readyz", ""), 503, "UNAVAILABLE")
	r := ts.do("GET", "/metrics", "")
	if !strings.Contains(r.Raw, `walletd_ratelimit_redis_up 0`) || strings.Contains(r.Raw, `walletd_ratelimit_decisions_total{decision="error_open",policy="gameplay"} 0`) {
		t.Fatalf("metrics do not show the Redis outage:\n%s", grepLines(r.Raw, "walletd_ratelimit"))
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
