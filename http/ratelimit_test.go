package http

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walletd/walletd/ratelimit"
	"github.com/walletd/walletd/ratelimit/ratelimittest"
)

// limiterKind builds the options of one limiter implementation; the HTTP
// tests run against both.
type limiterKind struct {
	name string
	opts func(t *testing.T) ratelimit.Options
}

var limiterKinds = []limiterKind{
	{"memory", func(t *testing.T) ratelimit.Options { return ratelimit.Options{} }},
	{"redis", redisOpts},
}

// redisOpts: the test Redis under a prefix of the test's own, with a
// timeout a loaded test machine does not hit (the bounded-timeout case has
// its own test in package ratelimit).
func redisOpts(t *testing.T) ratelimit.Options {
	addr := ratelimittest.Addr(t)
	return ratelimit.Options{RedisAddr: addr, Prefix: ratelimittest.Prefix(t, addr), Timeout: 5 * time.Second}
}

// withLimiter gives the server a limiter built from o on the server's
// registry, closed when the test ends.
func withLimiter(t *testing.T, o ratelimit.Options) func(*Config) {
	return func(c *Config) {
		o.Registry = c.Registry
		o.Logger = c.Logger
		l, err := ratelimit.New(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		c.Limiter = l
	}
}

func betBody(tx string) string {
	return fmt.Sprintf(`{"tx_id":%q,"round_id":"r-%s","game_id":"g1","amount":"1"}`, tx, tx)
}

// metricLine returns the value of the exposition line that starts with
// series, failing if none does.
func (e *testEnv) metricLine(t *testing.T, series string) float64 {
	t.Helper()
	rec := e.do(t, req{method: "GET", path: "/metrics", key: "-"})
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics:\n%s", series, rec.Body)
	return 0
}

func wantRetryAfter(t *testing.T, rec *httptest.ResponseRecorder, lo, hi int) {
	t.Helper()
	ra := rec.Header().Get("Retry-After")
	n, err := strconv.Atoi(ra)
	if err != nil || n < lo || n > hi {
		t.Fatalf("Retry-After %q, want whole seconds in [%d, %d]", ra, lo, hi)
	}
}

func TestRateLimitGameplayBurst(t *testing.T) {
	for _, k := range limiterKinds {
		t.Run(k.name, func(t *testing.T) {
			o := k.opts(t)
			o.Gameplay = ratelimit.Rate{N: 5, Window: 10 * time.Second}
			e := newEnv(t, withLimiter(t, o))
			e.withWallet(t, "p1", "EUR")
			e.withWallet(t, "p2", "EUR")

			applied := len(e.fake.Calls())
			var ok, limited int
			for i := range 12 {
				rec := e.post(t, "/v1/wallets/p1/bet", betBody(fmt.Sprintf("b%d", i)))
				switch rec.Code {
				case http.StatusOK:
					ok++
				case http.StatusTooManyRequests:
					limited++
					wantError(t, rec, 429, "RATE_LIMITED")
					wantRetryAfter(t, rec, 1, 10)
				default:
					t.Fatalf("bet %d: %d %s", i, rec.Code, rec.Body)
				}
			}
			if ok != 5 || limited != 7 {
				t.Fatalf("%d admitted, %d limited; want 5 and 7", ok, limited)
			}
			// A withdrawal takes money too: same player, same budget.
			wantError(t, e.post(t, "/v1/wallets/p1/withdraw", `{"tx_id":"w1","amount":"1"}`), 429, "RATE_LIMITED")
			// The refused requests never reached the wallets.
			if got := len(e.fake.Calls()) - applied; got != 5 {
				t.Fatalf("%d calls reached the wallets, want 5", got)
			}
			// Another player has a budget of their own.
			e.mustPost(t, "/v1/wallets/p2/bet", betBody("x1"), 200)
			e.mustPost(t, "/v1/wallets/p2/withdraw", `{"tx_id":"w1","amount":"1"}`, 200)

			if got := e.metricLine(t, `walletd_ratelimit_decisions_total{decision="limited",policy="gameplay"}`); got != 8 {
				t.Errorf("limited decisions %v, want 8", got)
			}
			if got := e.metricLine(t, `walletd_http_requests_total{code="429",method="POST",route="/v1/wallets/:player_id/bet"}`); got != 7 {
				t.Errorf("429s on the bet route %v, want 7", got)
			}
			found := false
			for _, l := range e.logs.lines(t) {
				if l["msg"] == "http request" && l["code"] == "RATE_LIMITED" && l["player_id"] == "p1" && l["status"] == float64(429) {
					found = true
				}
			}
			if !found {
				t.Errorf("no access line for a 429: %s", e.logs)
			}
		})
	}
}

// TestRateLimitSettlementsPassDuringFlood: while a player's bets are
// refused, their deposits, wins and rollbacks go through — refusing a
// settlement would keep money owed from them.
func TestRateLimitSettlementsPassDuringFlood(t *testing.T) {
	for _, k := range limiterKinds {
		t.Run(k.name, func(t *testing.T) {
			o := k.opts(t)
			o.Gameplay = ratelimit.Rate{N: 3, Window: time.Minute}
			e := newEnv(t, withLimiter(t, o))
			e.withWallet(t, "p1", "EUR")
			for i := 1; i <= 3; i++ {
				e.mustPost(t, "/v1/wallets/p1/bet", betBody(fmt.Sprintf("b%d", i)), 200)
			}

			var wg sync.WaitGroup
			var mu sync.Mutex
			statuses := map[int]int{}
			for i := range 50 {
				wg.Go(func() {
					rec := e.post(t, "/v1/wallets/p1/bet", betBody(fmt.Sprintf("flood%d", i)))
					mu.Lock()
					statuses[rec.Code]++
					mu.Unlock()
				})
			}
			settlements := []struct{ path, body string }{
				{"/v1/wallets/p1/deposit", `{"tx_id":"d2","amount":"10"}`},
				{"/v1/wallets/p1/win", `{"tx_id":"w1","amount":"5","round_id":"r-b1","bet_tx_id":"b1"}`},
				{"/v1/wallets/p1/win", `{"tx_id":"w3","amount":"2"}`},
				{"/v1/wallets/p1/rollback", `{"tx_id":"rb2","ref_tx_id":"b2"}`},
			}
			results := make([]*httptest.ResponseRecorder, len(settlements))
			for i, s := range settlements {
				wg.Go(func() { results[i] = e.post(t, s.path, s.body) })
			}
			wg.Wait()
			if statuses[429] != 50 {
				t.Fatalf("flood statuses %v, want 50 429s", statuses)
			}
			for i, rec := range results {
				if rec.Code != 200 {
					t.Errorf("%s %s during the flood: %d %s", settlements[i].path, settlements[i].body, rec.Code, rec.Body)
				}
			}
			// Balance: 100 - 3 bets + 10 + 5 + 2 + 1 (rolled back) = 115.
			if m := decodeMap(t, e.get(t, "/v1/wallets/p1")); m["balance"] != "115.00" {
				t.Fatalf("balance %v, want 115.00", m["balance"])
			}
		})
	}
}

// TestRateLimitTwoServersShareLimit: two walletd instances (two servers,
// two limiters) on one Redis enforce one limit per player.
func TestRateLimitTwoServersShareLimit(t *testing.T) {
	o := redisOpts(t)
	o.Gameplay = ratelimit.Rate{N: 4, Window: time.Minute}
	a := newEnv(t, withLimiter(t, o))
	a.withWallet(t, "p1", "EUR")
	// The second instance: its own registry and limiter, the same wallets
	// (one store behind both).
	b := &testEnv{fake: a.fake, logs: &syncBuffer{}, reg: prometheus.NewRegistry()}
	cfg := Config{APIKeys: []string{testKey}, Registry: b.reg}
	withLimiter(t, o)(&cfg)
	b.srv = NewServer(cfg, a.fake)
	b.h = b.srv.Handler()

	admitted := 0
	for i := range 10 {
		e := a
		if i%2 == 1 {
			e = b
		}
		rec := e.post(t, "/v1/wallets/p1/bet", betBody(fmt.Sprintf("b%d", i)))
		switch rec.Code {
		case 200:
			admitted++
		case 429:
			wantRetryAfter(t, rec, 1, 60)
		default:
			t.Fatalf("bet %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	if admitted != 4 {
		t.Fatalf("two instances admitted %d bets, want 4 in all", admitted)
	}
	la := a.metricLine(t, `walletd_ratelimit_decisions_total{decision="allowed",policy="gameplay"}`)
	lb := b.metricLine(t, `walletd_ratelimit_decisions_total{decision="allowed",policy="gameplay"}`)
	if la == 0 || lb == 0 || la+lb != 4 {
		t.Fatalf("admissions per instance %v and %v: want both serving, 4 in all", la, lb)
	}
}

// TestRateLimitRedisDownFailsOpen: with Redis unreachable, wallet traffic
// continues and the metrics say so.
func TestRateLimitRedisDownFailsOpen(t *testing.T) {
	e := newEnv(t, withLimiter(t, ratelimit.Options{
		Gameplay: ratelimit.Rate{N: 2, Window: time.Minute}, RedisAddr: ratelimittest.ClosedAddr(t),
	}))
	e.withWallet(t, "p1", "EUR")
	for i := range 20 {
		e.mustPost(t, "/v1/wallets/p1/bet", betBody(fmt.Sprintf("b%d", i)), 200)
	}
	e.mustPost(t, "/v1/wallets/p1/withdraw", `{"tx_id":"w1","amount":"1"}`, 200)
	if got := e.metricLine(t, `walletd_ratelimit_decisions_total{decision="error_open",policy="gameplay"}`); got != 21 {
		t.Errorf("error_open decisions %v, want 21", got)
	}
	if got := e.metricLine(t, `walletd_ratelimit_redis_up`); got != 0 {
		t.Errorf("redis_up %v", got)
	}
	if got := e.metricLine(t, `walletd_ratelimit_redis_errors_total`); got < 1 {
		t.Errorf("redis errors %v", got)
	}
	if !strings.Contains(e.logs.String(), "failing open") {
		t.Errorf("the outage is not logged: %s", e.logs)
	}
}

// TestRateLimitFailClosed: configured to fail closed, a limiter that cannot
// decide refuses gameplay with 503 UNAVAILABLE (not 429: the client is over
// no limit), and settlements still pass.
func TestRateLimitFailClosed(t *testing.T) {
	e := newEnv(t, withLimiter(t, ratelimit.Options{
		Gameplay: ratelimit.Rate{N: 2, Window: time.Minute}, RedisAddr: ratelimittest.ClosedAddr(t), FailClosed: true,
	}))
	e.withWallet(t, "p1", "EUR")
	rec := e.post(t, "/v1/wallets/p1/bet", betBody("b1"))
	wantError(t, rec, 503, "UNAVAILABLE")
	wantRetryAfter(t, rec, 1, 1)
	wantError(t, e.post(t, "/v1/wallets/p1/withdraw", `{"tx_id":"w1","amount":"1"}`), 503, "UNAVAILABLE")
	e.mustPost(t, "/v1/wallets/p1/deposit", `{"tx_id":"d1","amount":"1"}`, 200)
	e.mustPost(t, "/v1/wallets/p1/win", `{"tx_id":"win1","amount":"1"}`, 200)
	if got := e.metricLine(t, `walletd_ratelimit_decisions_total{decision="error_closed",policy="gameplay"}`); got != 2 {
		t.Errorf("error_closed decisions %v, want 2", got)
	}
}

// TestRateLimitRetryAfterRounding: Retry-After is the wait in whole
// seconds, rounded up, at least 1.
func TestRateLimitRetryAfterRounding(t *testing.T) {
	for _, c := range []struct {
		window time.Duration
		want   string
	}{
		{300 * time.Millisecond, "1"},
		{time.Second, "1"},
		{2500 * time.Millisecond, "3"},
		{time.Minute, "60"},
	} {
		now := time.Unix(1000, 0)
		e := newEnv(t, withLimiter(t, ratelimit.Options{
			Gameplay: ratelimit.Rate{N: 1, Window: c.window}, Now: func() time.Time { return now },
		}))
		e.withWallet(t, "p1", "EUR")
		e.mustPost(t, "/v1/wallets/p1/bet", betBody("b1"), 200)
		rec := e.post(t, "/v1/wallets/p1/bet", betBody("b2"))
		wantError(t, rec, 429, "RATE_LIMITED")
		if got := rec.Header().Get("Retry-After"); got != c.want {
			t.Errorf("window %s: Retry-After %q, want %q", c.window, got, c.want)
		}
	}
}

func TestRateLimitOffAndUnset(t *testing.T) {
	for name, mod := range map[string][]func(*Config){
		"off":   {withLimiter(t, ratelimit.Options{Gameplay: ratelimit.Rate{Off: true}})},
		"unset": nil,
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, mod...)
			e.withWallet(t, "p1", "EUR")
			for i := range 60 {
				e.mustPost(t, "/v1/wallets/p1/bet", betBody(fmt.Sprintf("b%d", i)), 200)
			}
		})
	}
	// A bad player id is a 400 before any limit is asked.
	e := newEnv(t, withLimiter(t, ratelimit.Options{Gameplay: ratelimit.Rate{N: 1, Window: time.Minute}}))
	for range 3 {
		wantError(t, e.post(t, "/v1/wallets/bad%20id/bet", betBody("b1")), 400, "BAD_REQUEST")
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for _, c := range []struct {
		name, remote string
		xff          []string
		trusted      []netip.Prefix
		want         string
	}{
		{"peer", "192.0.2.1:5555", nil, nil, "192.0.2.1"},
		{"peer v6", "[2001:db8::1]:5555", nil, nil, "2001:db8::1"},
		{"peer v4-mapped", "[::ffff:192.0.2.1]:5555", nil, nil, "192.0.2.1"},
		{"xff ignored without trusted proxies", "192.0.2.1:5555", []string{"203.0.113.9"}, nil, "192.0.2.1"},
		{"xff ignored from an untrusted peer", "192.0.2.1:5555", []string{"203.0.113.9"}, trusted, "192.0.2.1"},
		{"one trusted proxy", "10.1.1.1:5555", []string{"203.0.113.9"}, trusted, "203.0.113.9"},
		{"spoofed left part ignored", "10.1.1.1:5555", []string{"6.6.6.6, 203.0.113.9"}, trusted, "203.0.113.9"},
		{"two trusted proxies", "10.1.1.1:5555", []string{"6.6.6.6, 203.0.113.9, 10.2.2.2"}, trusted, "203.0.113.9"},
		{"several header lines", "10.1.1.1:5555", []string{"6.6.6.6", "203.0.113.9", "10.2.2.2"}, trusted, "203.0.113.9"},
		{"v6 hop with port", "[fd00::1]:443", []string{"[2001:db8::7]:1234"}, trusted, "2001:db8::7"},
		{"garbage hop stops at the last vouched address", "10.1.1.1:5555", []string{"203.0.113.9, nonsense"}, trusted, "10.1.1.1"},
		{"all hops trusted", "10.1.1.1:5555", []string{"10.3.3.3, 10.2.2.2"}, trusted, "10.3.3.3"},
		{"no header from a trusted proxy", "10.1.1.1:5555", nil, trusted, "10.1.1.1"},
		{"unix socket", "@", []string{"203.0.113.9"}, trusted, "@"},
	} {
		if got := clientIP(c.remote, c.xff, c.trusted); got != c.want {
			t.Errorf("%s: %q", c.name, got)
		}
	}

	// Through a server: its TrustedProxies apply; outside one, the peer.
	var seen string
	e := newEnv(t, func(c *Config) { c.TrustedProxies = trusted })
	e.srv.Mount("POST", "/providers/test/authenticate", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = ClientIP(r)
		w.WriteHeader(204)
	}))
	r := httptest.NewRequest("POST", "/providers/test/authenticate", nil)
	r.RemoteAddr = "10.9.9.9:1234"
	r.Header.Set("X-Forwarded-For", "203.0.113.50")
	e.h.ServeHTTP(httptest.NewRecorder(), r)
	if seen != "203.0.113.50" {
		t.Fatalf("through a server with a trusted proxy: %q", seen)
	}
	if got := ClientIP(r); got != "10.9.9.9" {
		t.Fatalf("outside a server: %q", got)
	}
}
