package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"github.com/walletd/walletd/internal/logbuf"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walletd/walletd/internal/config"
	"github.com/walletd/walletd/ratelimit/ratelimittest"
	"github.com/walletd/walletd/wallet"
)

// impl builds a limiter of one implementation; every semantic test runs
// against both, so the in-process limiter cannot drift from Redis's.
type impl struct {
	name string
	new  func(t *testing.T, o Options) *Limiter
}

var impls = []impl{
	{"memory", func(t *testing.T, o Options) *Limiter { return mustNew(t, o) }},
	{"redis", func(t *testing.T, o Options) *Limiter {
		addr := ratelimittest.Addr(t)
		o.RedisAddr = addr
		o.Prefix = ratelimittest.Prefix(t, addr)
		return mustNew(t, o)
	}},
}

// semantics are options for tests of the window itself: a Redis failure
// must surface as an error (fail closed), not pass as an admission, and a
// loaded test machine must not turn into timeouts.
func semantics(auth, gameplay Rate) Options {
	return Options{Auth: auth, Gameplay: gameplay, FailClosed: true, Timeout: 5 * time.Second, Registry: prometheus.NewRegistry()}
}

func mustNew(t *testing.T, o Options) *Limiter {
	t.Helper()
	l, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func allow(t *testing.T, l *Limiter, p Policy, keys ...string) (bool, time.Duration) {
	t.Helper()
	ok, wait, err := l.Allow(context.Background(), p, keys...)
	if err != nil {
		t.Fatalf("Allow(%s, %v): %v", p, keys, err)
	}
	if ok && wait != 0 || !ok && wait <= 0 {
		t.Fatalf("Allow(%s, %v) = %v, %v: an admission has no wait, a refusal a positive one", p, keys, ok, wait)
	}
	return ok, wait
}

// eventually polls cond every few milliseconds until it holds or 10s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWindowAdmitsNThenRefuses(t *testing.T) {
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) {
			const n, w = 3, 250 * time.Millisecond
			l := im.new(t, semantics(Rate{N: n, Window: w}, Rate{N: n, Window: w}))
			for i := range n {
				if ok, _ := allow(t, l, Gameplay, "p1"); !ok {
					t.Fatalf("request %d of %d refused", i+1, n)
				}
			}
			ok, wait := allow(t, l, Gameplay, "p1")
			if ok {
				t.Fatalf("request %d admitted over %d/%s", n+1, n, w)
			}
			if wait > w {
				t.Fatalf("wait %s longer than the window %s", wait, w)
			}
			// The wait is honest: once it has passed, the request fits.
			time.Sleep(wait)
			if ok, wait := allow(t, l, Gameplay, "p1"); !ok {
				t.Fatalf("still refused after the announced wait (now %s)", wait)
			}
		})
	}
}

// TestWindowSlides tells a sliding window from a fixed one: a slot frees
// when the oldest admission leaves the window, not when a period restarts,
// and only that slot.
func TestWindowSlides(t *testing.T) {
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) {
			const w = 400 * time.Millisecond
			l := im.new(t, semantics(Rate{N: 2, Window: w}, Rate{N: 2, Window: w}))
			if ok, _ := allow(t, l, Gameplay, "p1"); !ok {
				t.Fatal("first refused")
			}
			time.Sleep(w / 2)
			bStart := time.Now()
			if ok, _ := allow(t, l, Gameplay, "p1"); !ok {
				t.Fatal("second refused")
			}
			ok, wait := allow(t, l, Gameplay, "p1")
			if ok {
				t.Fatal("third admitted within the window")
			}
			// At least w/2 has passed since the first admission, which is
			// the one that must leave: the wait cannot exceed w/2.
			if wait > w/2 {
				t.Fatalf("wait %s: want at most %s (until the first admission leaves)", wait, w/2)
			}
			eventually(t, "the first admission to leave the window", func() bool {
				ok, _ := allow(t, l, Gameplay, "p1")
				return ok
			})
			ok, _ = allow(t, l, Gameplay, "p1")
			if time.Since(bStart) >= w {
				t.Logf("machine too slow to check the second slot (%s since the second admission)", time.Since(bStart))
				return
			}
			if ok {
				t.Fatal("two slots freed while the second admission is still inside the window: a fixed window, not a sliding one")
			}
		})
	}
}

func TestAllOrNoneOverKeys(t *testing.T) {
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) {
			l := im.new(t, semantics(Rate{N: 2, Window: time.Minute}, Rate{N: 2, Window: time.Minute}))
			ip, player := IPKey("192.0.2.7"), PlayerKey("p1")
			allow(t, l, Auth, ip)
			allow(t, l, Auth, ip)
			if ok, _ := allow(t, l, Auth, ip, player); ok {
				t.Fatal("admitted with the address over its limit")
			}
			// The refusal counted under neither key: the player has both slots.
			for i := range 2 {
				if ok, _ := allow(t, l, Auth, player); !ok {
					t.Fatalf("player refused at %d: a refused request was counted", i+1)
				}
			}
			if ok, _ := allow(t, l, Auth, player); ok {
				t.Fatal("player admitted over the limit")
			}
			// Duplicates and empty keys change nothing.
			if ok, _ := allow(t, l, Auth, "", IPKey("192.0.2.8"), IPKey("192.0.2.8")); !ok {
				t.Fatal("fresh address refused")
			}
			if ok, _ := allow(t, l, Auth, IPKey("192.0.2.8")); !ok {
				t.Fatal("a duplicated key counted twice")
			}
		})
	}
}

func TestKeysAndPoliciesAreSeparate(t *testing.T) {
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) {
			l := im.new(t, semantics(Rate{N: 1, Window: time.Minute}, Rate{N: 1, Window: time.Minute}))
			for _, c := range []struct {
				p    Policy
				key  string
				want bool
			}{
				{Gameplay, PlayerKey("a"), true},
				{Gameplay, PlayerKey("b"), true},
				{Auth, PlayerKey("a"), true}, // same key, other policy
				{Auth, IPKey("1.2.3.4"), true},
				{Auth, PlayerKey("1.2.3.4"), true}, // a player named like an address is not that address
				{Gameplay, PlayerKey("a"), false},
				{Auth, PlayerKey("a"), false},
			} {
				if ok, _ := allow(t, l, c.p, c.key); ok != c.want {
					t.Errorf("%s %s: admitted=%v, want %v", c.p, c.key, ok, c.want)
				}
			}
		})
	}
}

func TestOffPolicyAndDegenerateCalls(t *testing.T) {
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) {
			l := im.new(t, semantics(Rate{Off: true}, Rate{N: 1, Window: time.Minute}))
			for range 100 {
				if ok, _ := allow(t, l, Auth, IPKey("192.0.2.1")); !ok {
					t.Fatal("an off policy refused")
				}
			}
			if ok, _ := allow(t, l, Gameplay); !ok {
				t.Fatal("no key: refused")
			}
			if ok, _ := allow(t, l, Gameplay, ""); !ok {
				t.Fatal("empty key: refused")
			}
			if _, _, err := l.Allow(context.Background(), "bonus", "k"); err == nil {
				t.Fatal("unknown policy: no error")
			}
			// Over-long keys are hashed, distinctly.
			long1, long2 := strings.Repeat("x", 1000)+"1", strings.Repeat("x", 1000)+"2"
			if ok, _ := allow(t, l, Gameplay, long1); !ok {
				t.Fatal("long key refused")
			}
			if ok, _ := allow(t, l, Gameplay, long2); !ok {
				t.Fatal("two long keys collided")
			}
			if ok, _ := allow(t, l, Gameplay, long1); ok {
				t.Fatal("long key admitted twice")
			}
		})
	}
}

// TestOffPoliciesCostNothing: with a policy off (walletd's load benchmark,
// operators who limit elsewhere) the helpers called on every bet and login
// decide without building keys: no allocation, and the other policy still
// limits.
func TestOffPoliciesCostNothing(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		l    *Limiter
	}{
		{"both off", mustNew(t, semantics(Rate{Off: true}, Rate{Off: true}))},
		{"zero rates", mustNew(t, semantics(Rate{}, Rate{}))},
		{"nil limiter", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			allocs := testing.AllocsPerRun(100, func() {
				if err := tc.l.CheckGameplay(ctx, "player-1"); err != nil {
					t.Fatal(err)
				}
				if err := tc.l.CheckAuth(ctx, "192.0.2.1", "player-1"); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("%v allocations per check of off policies, want 0", allocs)
			}
		})
	}
	l := mustNew(t, semantics(Rate{Off: true}, Rate{N: 1, Window: time.Minute}))
	if err := l.CheckGameplay(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	var limited *LimitedError
	if err := l.CheckGameplay(ctx, "p"); !errors.As(err, &limited) {
		t.Fatalf("second bet under 1/1m with auth off: %v, want LimitedError", err)
	}
}

// TestConcurrentExactlyN: 100 simultaneous requests on one key, exactly N
// admitted — the decision is atomic, no check-then-act race.
func TestConcurrentExactlyN(t *testing.T) {
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) {
			const n, callers = 10, 100
			l := im.new(t, semantics(Rate{N: n, Window: time.Minute}, Rate{N: n, Window: time.Minute}))
			var admitted, refused atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make(chan error, callers)
			for range callers {
				wg.Go(func() {
					<-start
					ok, _, err := l.Allow(context.Background(), Gameplay, PlayerKey("hot"))
					switch {
					case err != nil:
						errs <- err
					case ok:
						admitted.Add(1)
					default:
						refused.Add(1)
					}
				})
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if admitted.Load() != n || refused.Load() != callers-n {
				t.Fatalf("admitted %d, refused %d; want %d and %d", admitted.Load(), refused.Load(), n, callers-n)
			}
		})
	}
}

// TestInstancesShareOneLimit: two limiters (two walletd processes) on one
// Redis and prefix share the window.
func TestInstancesShareOneLimit(t *testing.T) {
	addr := ratelimittest.Addr(t)
	prefix := ratelimittest.Prefix(t, addr)
	o := semantics(Rate{N: 4, Window: time.Minute}, Rate{N: 4, Window: time.Minute})
	o.RedisAddr, o.Prefix = addr, prefix
	a, b := mustNew(t, o), mustNew(t, o)
	admitted := 0
	for i := range 10 {
		l := a
		if i%2 == 1 {
			l = b
		}
		if ok, _ := allow(t, l, Gameplay, PlayerKey("p1")); ok {
			admitted++
		}
	}
	if admitted != 4 {
		t.Fatalf("two instances admitted %d, want 4 in all", admitted)
	}
	// Another prefix is another limit (another deployment on the same Redis).
	o.Prefix = ratelimittest.Prefix(t, addr)
	if ok, _ := allow(t, mustNew(t, o), Gameplay, PlayerKey("p1")); !ok {
		t.Fatal("a different prefix shares the limit")
	}
}

// syncBuffer collects log output written from many goroutines.
type syncBuffer = logbuf.Buffer

func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metric
				}
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

func TestRedisDownFailsOpen(t *testing.T) {
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	l := mustNew(t, Options{
		Auth: Rate{N: 1, Window: time.Minute}, Gameplay: Rate{N: 1, Window: time.Minute},
		RedisAddr: ratelimittest.ClosedAddr(t), Backoff: time.Hour,
		Registry: reg, Logger: slog.New(slog.NewJSONHandler(logs, nil)),
	})
	for i := range 200 {
		ok, wait, err := l.Allow(context.Background(), Gameplay, PlayerKey("p1"))
		if !ok || wait != 0 || err != nil {
			t.Fatalf("request %d with Redis down: %v %v %v, want admitted", i, ok, wait, err)
		}
	}
	if got := metricValue(t, reg, "walletd_ratelimit_decisions_total", "policy", "gameplay", "decision", "error_open"); got != 200 {
		t.Errorf("error_open decisions %v, want 200", got)
	}
	if got := metricValue(t, reg, "walletd_ratelimit_decisions_total", "policy", "gameplay", "decision", "allowed"); got != 0 {
		t.Errorf("allowed decisions %v, want 0 (they were not decided)", got)
	}
	if got := metricValue(t, reg, "walletd_ratelimit_redis_up"); got != 0 {
		t.Errorf("redis_up %v", got)
	}
	// The breaker: after a few failures Redis is left alone until the
	// backoff ends, instead of one failed dial per request.
	if got := metricValue(t, reg, "walletd_ratelimit_redis_errors_total"); got < 1 || got > breakerThreshold {
		t.Errorf("redis errors %v: want 1..%d (the breaker stops the calls)", got, breakerThreshold)
	}
	// Logged, but not once per request.
	if n := strings.Count(logs.String(), "rate limiter cannot decide"); n < 1 || n > 2 {
		t.Errorf("%d log lines for 200 failures:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "failing open") {
		t.Errorf("log does not say it fails open:\n%s", logs)
	}
}

func TestRedisDownFailClosed(t *testing.T) {
	reg := prometheus.NewRegistry()
	l := mustNew(t, Options{
		Gameplay:  Rate{N: 1, Window: time.Minute},
		RedisAddr: ratelimittest.ClosedAddr(t), FailClosed: true, Registry: reg,
	})
	ok, wait, err := l.Allow(context.Background(), Gameplay, PlayerKey("p1"))
	if ok || wait != 0 || wallet.ErrorCode(err) != wallet.CodeUnavailable {
		t.Fatalf("fail closed: %v %v %v, want refused with UNAVAILABLE", ok, wait, err)
	}
	if err := l.CheckGameplay(context.Background(), "p1"); wallet.ErrorCode(err) != wallet.CodeUnavailable {
		t.Fatalf("CheckGameplay: %v", err)
	}
	if strings.Contains(wallet.ErrorMessage(err), "127.0.0.1") {
		t.Fatalf("the message a client sees names the Redis address: %q", wallet.ErrorMessage(err))
	}
	if got := metricValue(t, reg, "walletd_ratelimit_decisions_total", "policy", "gameplay", "decision", "error_closed"); got != 2 {
		t.Errorf("error_closed decisions %v, want 2", got)
	}
	// Policies that are off need no Redis at all.
	if ok, _, err := l.Allow(context.Background(), Auth, IPKey("192.0.2.1")); !ok || err != nil {
		t.Fatalf("off policy with Redis down: %v %v", ok, err)
	}
}

// TestRedisHangsBounded: a Redis that accepts and never answers costs a
// decision no more than the timeout, not go-redis's default seconds.
func TestRedisHangsBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	l := mustNew(t, Options{
		Gameplay:  Rate{N: 1, Window: time.Minute},
		RedisAddr: ratelimittest.Blackhole(t), Timeout: 50 * time.Millisecond, Backoff: time.Hour, Registry: reg,
	})
	var slowest time.Duration
	for range 10 {
		start := time.Now()
		ok, _, err := l.Allow(context.Background(), Gameplay, PlayerKey("p1"))
		slowest = max(slowest, time.Since(start))
		if !ok || err != nil {
			t.Fatalf("hung Redis: %v %v, want admitted", ok, err)
		}
	}
	// Generous against a slow machine; go-redis's own defaults would take
	// 3s or more per call.
	if slowest > time.Second {
		t.Fatalf("a decision took %s with a 50ms timeout", slowest)
	}
	if got := metricValue(t, reg, "walletd_ratelimit_decisions_total", "policy", "gameplay", "decision", "error_open"); got != 10 {
		t.Errorf("error_open %v, want 10", got)
	}
}

// TestRedisOutageAndRecovery takes Redis away mid-traffic and gives it back.
func TestRedisOutageAndRecovery(t *testing.T) {
	addr := ratelimittest.Addr(t)
	proxy := ratelimittest.NewProxy(t, addr)
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	l := mustNew(t, Options{
		Gameplay:  Rate{N: 1000, Window: time.Minute},
		RedisAddr: proxy.Addr, Prefix: ratelimittest.Prefix(t, addr), Timeout: 2 * time.Second,
		Backoff: 50 * time.Millisecond, Registry: reg, Logger: slog.New(slog.NewJSONHandler(logs, nil)),
	})
	gameplay := func(decision string) float64 {
		return metricValue(t, reg, "walletd_ratelimit_decisions_total", "policy", "gameplay", "decision", decision)
	}
	if ok, _ := allow(t, l, Gameplay, PlayerKey("p1")); !ok || gameplay("allowed") != 1 {
		t.Fatalf("through the proxy: admitted=%v allowed=%v", ok, gameplay("allowed"))
	}
	if metricValue(t, reg, "walletd_ratelimit_redis_up") != 1 {
		t.Fatal("redis_up is not 1")
	}

	proxy.Down()
	// Long enough an outage for the breaker to open, so that the recovery
	// below goes through a probe after the backoff.
	eventually(t, "decisions to fail open", func() bool {
		allow(t, l, Gameplay, PlayerKey("p1"))
		return gameplay("error_open") > 2*breakerThreshold
	})
	if metricValue(t, reg, "walletd_ratelimit_redis_up") != 0 {
		t.Error("redis_up is not 0 during the outage")
	}

	proxy.Up()
	eventually(t, "Redis to be used again", func() bool {
		before := gameplay("allowed")
		allow(t, l, Gameplay, PlayerKey("p1"))
		return gameplay("allowed") > before
	})
	if metricValue(t, reg, "walletd_ratelimit_redis_up") != 1 {
		t.Error("redis_up is not 1 after the outage")
	}
	if !strings.Contains(logs.String(), "Redis answers again") {
		t.Errorf("recovery not logged:\n%s", logs)
	}
}

func TestMemoryExactWaits(t *testing.T) {
	now := time.Unix(1000, 0)
	l := mustNew(t, Options{Gameplay: Rate{N: 2, Window: time.Second}, Now: func() time.Time { return now }})
	at := func(d time.Duration) { now = time.Unix(1000, 0).Add(d) }
	for _, c := range []struct {
		at   time.Duration
		ok   bool
		wait time.Duration
	}{
		{0, true, 0},
		{300 * time.Millisecond, true, 0},
		{400 * time.Millisecond, false, 600 * time.Millisecond},  // until the first leaves
		{999 * time.Millisecond, false, time.Millisecond},        // still inside (window is (now-1s, now])
		{1000 * time.Millisecond, true, 0},                       // the first left exactly now
		{1100 * time.Millisecond, false, 200 * time.Millisecond}, // until the second leaves
		{1300 * time.Millisecond, true, 0},
		{5 * time.Second, true, 0},
		{5 * time.Second, true, 0},
		{5 * time.Second, false, time.Second},
	} {
		at(c.at)
		ok, wait := allow(t, l, Gameplay, "k")
		if ok != c.ok || wait != c.wait {
			t.Errorf("at %s: %v %s, want %v %s", c.at, ok, wait, c.ok, c.wait)
		}
	}
}

func TestMemoryEvictsIdleKeys(t *testing.T) {
	now := time.Unix(1000, 0)
	l := mustNew(t, Options{Auth: Rate{N: 5, Window: time.Second}, Now: func() time.Time { return now }})
	mem := l.backend.(*memory)
	for i := range 1000 {
		allow(t, l, Auth, fmt.Sprintf("old-%d", i))
	}
	if n := mem.len(Auth); n != 1000 {
		t.Fatalf("%d keys, want 1000", n)
	}
	now = now.Add(2 * time.Second)
	for i := range 1000 {
		allow(t, l, Auth, fmt.Sprintf("new-%d", i))
	}
	if n := mem.len(Auth); n != 1000 {
		t.Fatalf("%d keys after the old ones went idle, want the 1000 new ones", n)
	}
}

func TestMemoryBoundedKeys(t *testing.T) {
	reg := prometheus.NewRegistry()
	l := mustNew(t, Options{Auth: Rate{N: 1, Window: time.Hour}, MaxKeys: 320, Registry: reg})
	mem := l.backend.(*memory)
	for i := range 10_000 {
		if ok, _ := allow(t, l, Auth, fmt.Sprintf("ip-%d", i)); !ok {
			t.Fatalf("fresh key %d refused", i)
		}
		if n := mem.len(Auth); n > 320 {
			t.Fatalf("%d keys held, MaxKeys is 320", n)
		}
	}
	if got := metricValue(t, reg, "walletd_ratelimit_memory_evictions_total"); got < 10_000-320 {
		t.Fatalf("evictions %v", got)
	}
}

func TestKeys(t *testing.T) {
	for in, want := range map[string]string{
		"":                         "",
		"192.0.2.7":                "ip:192.0.2.7",
		"::ffff:192.0.2.7":         "ip:192.0.2.7",
		"2001:db8:1:2:3:4:5:6":     "ip:2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1":     "ip:2001:db8:1:2::/64",
		"fe80::1%eth0":             "ip:fe80::/64",
		"@":                        "ip:@",
		"not an address, at all?!": "ip:not an address, at all?!",
	} {
		if got := IPKey(in); got != want {
			t.Errorf("IPKey(%q) = %q, want %q", in, got, want)
		}
	}
	if PlayerKey("") != "" || PlayerKey("p1") != "player:p1" {
		t.Error("PlayerKey")
	}
}

func TestCheckErrors(t *testing.T) {
	l := mustNew(t, Options{Gameplay: Rate{N: 1, Window: 90 * time.Second}, Auth: Rate{N: 1, Window: time.Minute}})
	ctx := context.Background()
	if err := l.CheckGameplay(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	err := l.CheckGameplay(ctx, "p1")
	if wallet.ErrorCode(err) != wallet.CodeRateLimited {
		t.Fatalf("code of %v", err)
	}
	var ra interface{ RetryAfter() time.Duration }
	if le, ok := err.(*LimitedError); !ok || le.Policy != Gameplay {
		t.Fatalf("%T %v", err, err)
	} else {
		ra = le
	}
	if d := ra.RetryAfter(); d <= 89*time.Second || d > 90*time.Second {
		t.Fatalf("RetryAfter %s", d)
	}
	if msg := wallet.ErrorMessage(err); msg != "too many gameplay requests; retry in 90s" {
		t.Fatalf("message %q", msg)
	}
	if msg := (&LimitedError{Policy: Auth, Wait: time.Millisecond}).Unwrap().Error(); !strings.Contains(msg, "retry in 1s") {
		t.Fatalf("sub-second wait: %q", msg)
	}
	// Auth over either key.
	if err := l.CheckAuth(ctx, "192.0.2.1", "p9"); err != nil {
		t.Fatal(err)
	}
	if err := l.CheckAuth(ctx, "192.0.2.2", "p9"); wallet.ErrorCode(err) != wallet.CodeRateLimited {
		t.Fatalf("same player, other address: %v", err)
	}
	if err := l.CheckAuth(ctx, "192.0.2.1", "p10"); wallet.ErrorCode(err) != wallet.CodeRateLimited {
		t.Fatalf("same address, other player: %v", err)
	}
	if err := l.CheckAuth(ctx, "192.0.2.3", ""); err != nil {
		t.Fatalf("address only: %v", err)
	}
}

func TestNilLimiterAllows(t *testing.T) {
	var l *Limiter
	if ok, _, err := l.Allow(context.Background(), Gameplay, "k"); !ok || err != nil {
		t.Fatal("nil limiter refused")
	}
	if l.CheckAuth(context.Background(), "192.0.2.1", "p") != nil || l.Ready(context.Background()) != nil || l.Close() != nil {
		t.Fatal("nil limiter errs")
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []Options{
		{Auth: Rate{N: 0, Window: time.Second}},
		{Gameplay: Rate{N: 5}},
		{Gameplay: Rate{N: 5, Window: time.Microsecond}},
		{Gameplay: Rate{N: -1, Window: time.Second}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v): no error", o)
		}
	}
	_, err := New(Options{RedisAddr: "redis://user:s3cret@[::1:6379/x"})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("bad URL: %v", err)
	}
	// Off and zero-valued rates are valid: a policy that limits nothing.
	if _, err := New(Options{}); err != nil {
		t.Error(err)
	}
}

// TestMetricsStayOffTheGlobalRegistry: two limiters, no global state.
func TestMetricsStayOffTheGlobalRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := mustNew(t, Options{Gameplay: Rate{N: 1, Window: time.Second}, Registry: reg})
	b := mustNew(t, Options{Gameplay: Rate{N: 1, Window: time.Second}, Registry: reg}) // shares, no panic
	allow(t, a, Gameplay, "x")
	allow(t, b, Gameplay, "x")
	if got := metricValue(t, reg, "walletd_ratelimit_decisions_total", "policy", "gameplay", "decision", "allowed"); got != 2 {
		t.Errorf("shared counter %v", got)
	}
	if got := metricValue(t, reg, "walletd_ratelimit_decision_duration_seconds", "policy", "gameplay"); got != 2 {
		t.Errorf("histogram count %v", got)
	}
	fams, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "walletd_") {
			t.Errorf("%s on the global registry", f.GetName())
		}
	}
}

// TestNoGoroutineLeak: a limiter with Redis leaves nothing running after
// Close.
func TestNoGoroutineLeak(t *testing.T) {
	addr := ratelimittest.Addr(t)
	prefix := ratelimittest.Prefix(t, addr)
	before := runtime.NumGoroutine()
	l, err := New(Options{Gameplay: Rate{N: 5, Window: time.Second}, RedisAddr: addr, Prefix: prefix, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { l.Allow(context.Background(), Gameplay, PlayerKey("p1")) })
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

// TestConfigRateConverts: cmd converts config.Rate into Rate directly; this
// stops compiling if the two ever drift apart.
func TestConfigRateConverts(t *testing.T) {
	for s, want := range map[string]Rate{
		"20/1s":  {N: 20, Window: time.Second},
		"300/1m": {N: 300, Window: time.Minute},
		"off":    {Off: true},
	} {
		c, err := config.ParseRate(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := Rate(c); got != want {
			t.Errorf("%s: %+v, want %+v", s, got, want)
		}
		if _, err := New(Options{Auth: Rate(c), Gameplay: Rate(c)}); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
}

// BenchmarkAllow: the cost of one decision (figures are printed, never
// asserted). Many players, as in production; parallel callers.
func BenchmarkAllow(b *testing.B) {
	for _, name := range []string{"memory", "redis"} {
		b.Run(name, func(b *testing.B) {
			o := Options{Gameplay: Rate{N: 50, Window: time.Second}, Timeout: time.Second}
			if name == "redis" {
				addr := ratelimittest.Addr(b)
				o.RedisAddr, o.Prefix = addr, ratelimittest.Prefix(b, addr)
			}
			l, err := New(o)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, err := l.Allow(context.Background(), Gameplay, PlayerKey(strconv.FormatInt(next.Add(1)%10_000, 10))); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
