package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walletd/walletd/internal/pgtest"
)

// op is one money request of the crash test and what came of it.
type op struct {
	wallet, path, body string
	delta              int64 // in cents: + deposit, − bet
	acked              bool
	version            float64
}

// TestCrashLosesNothing kills the real walletd with SIGKILL in the middle of
// concurrent traffic, several times, restarting it on the same data folder.
// After each restart every acknowledged transaction is there with its
// version, its retry answers duplicate, unacknowledged ones apply at most
// once, and the journal replays to every balance (walletctl verify).
func TestCrashLosesNothing(t *testing.T) {
	// Hundreds of bets a second on one player: the gameplay rate limit is
	// not what this test is about.
	t.Run("embedded", func(t *testing.T) { testCrash(t, 3, []string{"WALLET_RATE_GAMEPLAY=off"}) })
	t.Run("postgres", func(t *testing.T) {
		// Two writers: wallets sharded over two group commits must be as durable.
		testCrash(t, 5, []string{"WALLET_RATE_GAMEPLAY=off", "WALLET_PG_WRITERS=2", "WALLET_PG_DSN=" + pgtest.DSN(t)})
	})
}

func testCrash(t *testing.T, cycles int, env []string) {
	dir := t.TempDir()
	wallets := []string{"hot", "w1", "w2", "w3", "w4", "w5"}
	want := map[string]int64{}
	p := startProc(t, dir, env...)
	ts := p.server()
	for _, w := range wallets {
		ts.open(w, "EUR")
		ts.expect(ts.do("POST", "/v1/wallets/"+w+"/deposit", `{"tx_id":"seed","amount":"1000000.00"}`), 200, "")
		want[w] = 100000000
	}

	for cycle := 0; cycle < cycles; cycle++ {
		var (
			mu     sync.Mutex
			ops    []*op
			acked  atomic.Int64
			stop   atomic.Bool
			wg     sync.WaitGroup
			client = &http.Client{Timeout: 5 * time.Second}
		)
		for g := 0; g < 24; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; !stop.Load(); i++ {
					w := wallets[(g+i)%len(wallets)]
					if i%3 == 0 {
						w = "hot"
					}
					o := &op{wallet: w}
					tx := fmt.Sprintf("c%d-g%d-%d", cycle, g, i)
					if i%4 == 0 {
						o.path, o.delta = "deposit", 101
						o.body = fmt.Sprintf(`{"tx_id":"%s","amount":"1.01"}`, tx)
					} else {
						o.path, o.delta = "bet", -37
						o.body = fmt.Sprintf(`{"tx_id":"%s","round_id":"r%d","game_id":"g","amount":"0.37"}`, tx, i)
					}
					mu.Lock()
					ops = append(ops, o)
					mu.Unlock()
					r, ok := post(client, p.base, o)
					if ok {
						o.acked, o.version = true, r
						acked.Add(1)
					} else if stop.Load() {
						return
					}
				}
			}(g)
		}
		// Kill once real traffic is flowing, at a moment the test does not choose.
		deadline := time.Now().Add(20 * time.Second)
		for acked.Load() < int64(300+cycle*150) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		p.kill()
		stop.Store(true)
		wg.Wait()
		if acked.Load() == 0 {
			t.Fatalf("cycle %d: no request was acknowledged before the kill\n%s", cycle, p.logs.String())
		}

		p = startProc(t, dir, env...)
		ts = p.server()
		unknown := 0
		for _, o := range ops {
			r := ts.do("POST", "/v1/wallets/"+o.wallet+"/"+o.path, o.body)
			if r.Status != 200 {
				t.Fatalf("cycle %d: retry of %s: %d %s", cycle, o.body, r.Status, r.Raw)
			}
			dup, _ := r.Body["duplicate"].(bool)
			if o.acked && (!dup || r.num("version") != o.version) {
				t.Fatalf("cycle %d: acknowledged %s (v%v) retried as duplicate=%v v%v: lost or applied twice", cycle, o.body, o.version, dup, r.num("version"))
			}
			if !o.acked {
				unknown++
			}
			want[o.wallet] += o.delta
		}
		for _, w := range wallets {
			bal, _ := ts.balance(w)
			if exp := fmt.Sprintf("%d.%02d", want[w]/100, want[w]%100); bal != exp {
				t.Fatalf("cycle %d: %s balance %s, want %s", cycle, w, bal, exp)
			}
		}
		t.Logf("cycle %d: %d requests, %d acknowledged before SIGKILL, %d in flight", cycle, len(ops), acked.Load(), unknown)
	}
	if err := p.stop(); err != nil {
		t.Fatalf("graceful stop after the crash cycles: %v", err)
	}
	out, code := walletctl(t, dir, append(env, "verify")...)
	if code != 0 || !strings.Contains(out, "verify: ok") {
		t.Fatalf("walletctl verify: exit %d\n%s", code, out)
	}
}

// post sends one op; ok only for a 200 with a version.
func post(c *http.Client, base string, o *op) (float64, bool) {
	req, _ := http.NewRequest("POST", base+"/v1/wallets/"+o.wallet+"/"+o.path, strings.NewReader(o.body))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, false
	}
	var body struct {
		Version float64 `json:"version"`
	}
	if err := decodeJSON(resp, &body); err != nil || body.Version == 0 {
		return 0, false
	}
	return body.Version, true
}

// TestGracefulShutdown: SIGTERM finishes in-flight requests, flushes and
// closes the store and exits 0; the data is all there at the next start.
func TestGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	p := startProc(t, dir)
	ts := p.server()
	ts.open("p1", "JPY")
	var wg sync.WaitGroup
	var acked atomic.Int64
	client := &http.Client{Timeout: 10 * time.Second}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				o := &op{wallet: "p1", path: "deposit", body: fmt.Sprintf(`{"tx_id":"g%d-%d","amount":"1"}`, g, i)}
				if _, ok := post(client, p.base, o); ok {
					acked.Add(1)
				}
			}
		}(g)
	}
	time.Sleep(20 * time.Millisecond)
	if err := p.stop(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.logs.String())
	}
	wg.Wait()
	if !strings.Contains(p.logs.String(), "walletd stopped cleanly") {
		t.Fatalf("no clean stop in the logs:\n%s", p.logs.String())
	}
	p = startProc(t, dir)
	bal, ver := p.server().balance("p1")
	if ver < float64(acked.Load()) { // an acknowledged deposit was lost
		t.Fatalf("version %v after %d acknowledged deposits", ver, acked.Load())
	}
	if bal != fmt.Sprint(int64(ver)) {
		t.Fatalf("balance %s at version %v", bal, ver)
	}
	_ = p.stop()
}
