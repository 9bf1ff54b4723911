package postgres

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/internal/pgtest"
	"github.com/walletd/walletd/wallet"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := leakedGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines leaked by the store:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// leakedGoroutines waits up to d for every goroutine of the store and of pgx
// to end, and returns the stacks of those that did not.
func leakedGoroutines(d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "persistence/postgres.") && !strings.Contains(g, "leakedGoroutines") && !strings.Contains(g, "TestMain") ||
				strings.Contains(g, "jackc/pgx") || strings.Contains(g, "jackc/puddle") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// openTest opens a store on a fresh database, closed when the test ends.
func openTest(t testing.TB, opts Options) (*Store, string) {
	t.Helper()
	dsn := pgtest.DSN(t)
	return openOn(t, dsn, opts), dsn
}

// openOn opens another store on the database dsn (a second process).
func openOn(t testing.TB, dsn string, opts Options) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, dsn, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// sqlConn is a direct connection for planting and inspecting rows.
func sqlConn(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func exec(t testing.TB, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := c.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// acct is one wallet as its actor sees it: the real domain state, the store's
// version, and the events applied but not yet written. Not safe for
// concurrent use.
type acct struct {
	id      string
	cur     wallet.Currency
	st      *wallet.State
	stored  uint64
	created bool
	pending []wallet.Event
	clock   time.Time
}

func newAcct(t testing.TB, id, code string) *acct {
	t.Helper()
	c, ok := wallet.LookupCurrency(code)
	if !ok {
		t.Fatalf("currency %s", code)
	}
	return &acct{id: id, cur: c, st: wallet.New(c, wallet.DefaultLimits), clock: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

// apply runs cmd through the domain and keeps its event for the next write.
func (a *acct) apply(t testing.TB, cmd wallet.Command) wallet.Event {
	t.Helper()
	a.clock = a.clock.Add(time.Millisecond)
	_, ev, err := a.st.Apply(cmd, a.clock)
	if err != nil || ev == nil {
		t.Fatalf("%s: apply %+v: %v (event %v)", a.id, cmd, err, ev)
	}
	a.pending = append(a.pending, *ev)
	return *ev
}

func (a *acct) deposit(t testing.TB, tx, amount string) wallet.Event {
	t.Helper()
	return a.apply(t, wallet.Command{Kind: wallet.KindDeposit, TxID: tx, Amount: amount})
}

// write takes the pending events into the next write (the creating one
// first) and assumes it will commit.
func (a *acct) write() actors.Write {
	w := actors.Write{PlayerID: a.id, Expected: a.stored, Events: a.pending}
	if !a.created {
		w.Create = &actors.Wallet{PlayerID: a.id, Currency: a.cur, CreatedAt: a.clock}
		a.created = true
	}
	a.pending, a.stored = nil, w.Version()
	return w
}

// reload rebuilds the account from the store, as an actor does after a
// failed or fenced write.
func (a *acct) reload(ctx context.Context, s actors.Store) error {
	l, err := s.Load(ctx, a.id)
	if err != nil {
		return err
	}
	st, err := wallet.Rebuild(l.Wallet.Currency, l.Snapshot, l.Tail, wallet.DefaultLimits)
	if err != nil {
		return err
	}
	a.st, a.stored, a.created, a.pending = st, st.Version(), true, nil
	return nil
}

func mustAppend(t testing.TB, s actors.Store, w actors.Write) {
	t.Helper()
	if err := s.Append(context.Background(), w); err != nil {
		t.Fatalf("append to %s at %d: %v", w.PlayerID, w.Expected, err)
	}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
