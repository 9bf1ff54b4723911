package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/wallet"
)

// proxy is a TCP proxy between the store and Postgres that a test can cut
// (close every connection and refuse new ones) or stall (hold connections
// but forward nothing, as a network partition does), and then restore.
type proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex
	mode  string // "up", "cut", "stall"
	conns map[net.Conn]struct{}
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, mode: "up", conns: make(map[net.Conn]struct{})}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		mode := p.mode
		if mode == "cut" {
			p.mu.Unlock()
			c.Close() // refused
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		if mode == "stall" {
			continue // held open, never answered
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.drop(c)
			continue
		}
		p.mu.Lock()
		p.conns[up] = struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(up, c) })
		p.wg.Go(func() { p.pipe(c, up) })
	}
}

// pipe copies src to dst while the proxy is up; in a stall it stops
// forwarding and discards, so both ends wait.
func (p *proxy) pipe(dst, src net.Conn) {
	defer p.drop(dst)
	defer p.drop(src)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			mode := p.mode
			p.mu.Unlock()
			if mode == "up" {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			return
		}
	}
}

func (p *proxy) drop(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// set switches the mode; cutting or restoring closes every connection, as
// a restarted server or a healed partition's reset connections would.
func (p *proxy) set(mode string) {
	p.mu.Lock()
	p.mode = mode
	var conns []net.Conn
	if mode != "stall" {
		for c := range p.conns {
			conns = append(conns, c)
		}
	}
	p.mu.Unlock()
	for _, c := range conns {
		p.drop(c)
	}
}

func (p *proxy) close() {
	p.ln.Close()
	p.set("cut")
	p.wg.Wait()
}

// viaProxy rewrites a postgres:// DSN to go through addr.
func viaProxy(t testing.TB, dsn, addr string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("this test needs a postgres:// URL DSN: %v", err)
	}
	u.Host = addr
	return u.String()
}

// TestOutage drives appends through a proxy that is cut (and, in the
// second case, stalled) mid-traffic and then restored. Appends during the
// outage fail within the commit bound instead of hanging, every
// acknowledged write is in the journal afterwards, the books balance, and
// the same store carries on by itself once Postgres is back.
func TestOutage(t *testing.T) {
	for _, mode := range []string{"cut", "stall"} {
		t.Run(mode, func(t *testing.T) { testOutage(t, mode) })
	}
}

func testOutage(t *testing.T, mode string) {
	const commitTimeout = time.Second
	_, direct := openTest(t, Options{}) // creates and migrates the database
	p := startProxy(t, mustURL(t, direct).Host)
	s := openOn(t, viaProxy(t, direct, p.addr()), Options{CommitTimeout: commitTimeout})

	const appenders, walletsEach = 8, 4
	var (
		stop      atomic.Bool
		acked     sync.Map // "player/tx" -> seq
		ackCount  atomic.Int64
		failCount atomic.Int64
		slowest   atomic.Int64 // ns, of appends that failed
		wg        sync.WaitGroup
		errs      = make(chan error, appenders)
	)
	// Each appender owns its wallets, as their actors would.
	for g := range appenders {
		wg.Go(func() {
			accts := make([]*acct, walletsEach)
			for i := range accts {
				accts[i] = newAcct(t, fmt.Sprintf("o%d-%d", g, i), "EUR")
			}
			for n := 0; !stop.Load(); n++ {
				a := accts[n%walletsEach]
				tx := fmt.Sprintf("t%d", n)
				_, ev, err := a.st.Apply(wallet.Command{Kind: wallet.KindDeposit, TxID: tx, Amount: "1.00"}, time.Now())
				if err != nil || ev == nil {
					errs <- fmt.Errorf("apply: %v", err)
					return
				}
				a.pending = append(a.pending, *ev)
				w := a.write()
				// The caller's own deadline is generous: the store must fail
				// within its commit bound on its own.
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				start := time.Now()
				err = s.Append(ctx, w)
				took := time.Since(start)
				cancel()
				if err == nil {
					acked.Store(a.id+"/"+tx, w.Version())
					ackCount.Add(1)
					continue
				}
				failCount.Add(1)
				for old := slowest.Load(); int64(took) > old && !slowest.CompareAndSwap(old, int64(took)); old = slowest.Load() {
				}
				// As an actor does: rebuild from the store before going on,
				// retrying until the store answers.
				for !stop.Load() {
					ctx, cancel := context.WithTimeout(context.Background(), 2*commitTimeout)
					err := a.reload(ctx, s)
					cancel()
					if err == nil {
						break
					}
					if errors.Is(err, actors.ErrNotFound) { // its creating write never committed
						*a = *newAcct(t, a.id, "EUR")
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	waitAcks := func(n int64, what string) {
		t.Helper()
		waitFor(t, 30*time.Second, what, func() bool { return ackCount.Load() >= n })
	}
	waitAcks(200, "traffic before the outage")

	failedBefore := failCount.Load()
	p.set(mode)
	// Every appender had a write in flight or about to be: each must fail
	// (and then wait in its reload loop).
	waitFor(t, 10*time.Second, "appends to fail during the outage", func() bool { return failCount.Load() >= failedBefore+int64(appenders) })
	time.Sleep(2 * commitTimeout) // stay down a while
	if err := s.Ready(context.Background()); err == nil {
		t.Error("ready during the outage")
	}
	ackedDuring := ackCount.Load()
	p.set("up")

	waitAcks(ackedDuring+500, "the store to recover by itself")
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Failing took at most the commit bound, plus the wait for the batch
	// ahead in the queue, plus scheduling: never a hang.
	if max := time.Duration(slowest.Load()); max > 2*commitTimeout+time.Second {
		t.Errorf("a failing append took %v, bound is about %v", max, 2*commitTimeout)
	}
	ctx := testCtx(t)
	if err := s.Ready(ctx); err != nil {
		t.Errorf("not ready after the outage: %v", err)
	}
	// Every acknowledged write is in the journal at its version.
	c := sqlConn(t, direct)
	missing := 0
	acked.Range(func(k, v any) bool {
		id, tx := splitKey(k.(string))
		var seq int64
		err := c.QueryRow(ctx, "SELECT seq FROM journal WHERE player_id = $1 AND tx_id = $2", id, tx).Scan(&seq)
		if err != nil || uint64(seq) != v.(uint64) {
			missing++
			if missing < 5 {
				t.Errorf("acknowledged %s at %d: journal has %d (%v)", k, v, seq, err)
			}
		}
		return true
	})
	if missing > 0 {
		t.Errorf("%d acknowledged writes missing", missing)
	}
	if problems, err := s.Verify(ctx); err != nil || len(problems) > 0 {
		t.Errorf("verify after the outage: %v %v", problems, err)
	}
	t.Logf("%s: %d acknowledged, %d failed, slowest failure %v", mode, ackCount.Load(), failCount.Load(), time.Duration(slowest.Load()))
}

func splitKey(k string) (id, tx string) {
	for i := len(k) - 1; i >= 0; i-- {
		if k[i] == '/' {
			return k[:i], k[i+1:]
		}
	}
	return k, ""
}

func mustURL(t testing.TB, dsn string) *url.URL {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Fatalf("this test needs a postgres:// URL DSN, got %q: %v", dsn, err)
	}
	return u
}

// TestWriterReconnectsAfterIdle: the server ends the writer's connection
// while it is idle (a restart, an idle timeout); the next write notices
// before sending and commits on a new connection instead of failing.
func TestWriterReconnectsAfterIdle(t *testing.T) {
	s, dsn := openTest(t, Options{})
	s.writers[0].idleCheck = 0 // set before any write: no race with the writer
	ctx := testCtx(t)
	a := newAcct(t, "idle", "EUR")
	a.deposit(t, "d1", "1.00")
	mustAppend(t, s, a.write())

	c := sqlConn(t, dsn)
	var killed int
	if err := c.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'walletd'`).Scan(&killed); err != nil || killed == 0 {
		t.Fatalf("terminate the store's backends: %d, %v", killed, err)
	}
	a.deposit(t, "d2", "1.00")
	if err := s.Append(ctx, a.write()); err != nil {
		t.Fatalf("append after the connection was ended: %v", err)
	}
	if _, err := s.Load(ctx, "idle"); err != nil {
		t.Fatalf("load after the connections were ended: %v", err)
	}
}
