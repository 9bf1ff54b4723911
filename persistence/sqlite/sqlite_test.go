package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/persistence/storetest"
	"github.com/walletd/walletd/wallet"
)

func openTest(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) actors.Store { return openTest(t, t.TempDir(), Options{}) })
}

func TestDurability(t *testing.T) {
	storetest.RunDurability(t,
		func(t *testing.T) actors.Store { return openTest(t, t.TempDir(), Options{}) },
		func(t *testing.T, s actors.Store) actors.Store {
			if err := s.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			return openTest(t, s.(*Store).dir, Options{})
		})
}

func TestLockRefusesSecondOpen(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	_, err := Open(dir, Options{})
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second open: %v, want ErrInUse naming %s", err, dir)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Released on close.
	s = openTest(t, dir, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestNoGoroutineLeft: after Close, the writer and everything the store
// started (database/sql's openers included) are gone.
func TestNoGoroutineLeft(t *testing.T) {
	before := runtime.NumGoroutine()
	s := openTest(t, t.TempDir(), Options{})
	walletOf(t, s, "p", "EUR", 10, 5)
	if _, err := s.Load(context.Background(), "p"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.writerDone:
	default:
		t.Fatal("writer goroutine still running after Close")
	}
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before })
}

// walletOf writes a wallet with a few events through the store, made by the
// real domain, and returns its state.
func walletOf(t *testing.T, s *Store, id, code string, n int, snapshotAt int) *wallet.State {
	t.Helper()
	ctx := context.Background()
	c, _ := wallet.LookupCurrency(code)
	st := wallet.New(c, wallet.DefaultLimits)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	w := actors.Write{PlayerID: id, Create: &actors.Wallet{PlayerID: id, Currency: c, CreatedAt: now}}
	for i := range n {
		now = now.Add(time.Second)
		cmd := wallet.Command{Kind: wallet.KindDeposit, TxID: fmt.Sprintf("d%d", i), Amount: "5"}
		if i%3 == 1 {
			cmd = wallet.Command{Kind: wallet.KindBet, TxID: fmt.Sprintf("b%d", i), RoundID: fmt.Sprintf("r%d", i), Amount: "2"}
		}
		_, ev, err := st.Apply(cmd, now)
		if err != nil {
			t.Fatal(err)
		}
		w.Events = append(w.Events, *ev)
		if i+1 == snapshotAt {
			sn := st.Snapshot()
			w.Snapshot = &sn
			if err := s.Append(ctx, w); err != nil {
				t.Fatal(err)
			}
			w = actors.Write{PlayerID: id, Expected: st.Version()}
		}
	}
	if err := s.Append(ctx, w); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	walletOf(t, s, "good", "EUR", 20, 10)
	walletOf(t, s, "balance", "JPY", 8, 0)
	walletOf(t, s, "gap", "KWD", 8, 0)
	walletOf(t, s, "snap", "EUR", 8, 5)
	problems, err := s.Verify(ctx)
	if err != nil || len(problems) != 0 {
		t.Fatalf("verify of good data: %v %v", problems, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Plant corruption behind the store's back.
	raw, err := sql.Open("sqlite", filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE wallets SET balance = '999' WHERE player_id = 'balance'`,
		`DELETE FROM journal WHERE player_id = 'gap' AND seq = 4`,
		`UPDATE snapshots SET data = replace(data, '"balance":"', '"balance":"1') WHERE player_id = 'snap'`,
		`INSERT INTO journal (player_id, seq, tx_id, kind, amount, balance_after, settles, tombstone, created_at)
			VALUES ('orphan', 1, 'x', 'deposit', '1.00', '1.00', '', 0, 0)`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir, Options{})
	defer s.Close()
	problems, err = s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"balance": "wallet balance 999, journal sums to",
		"gap":     "sequence gap: seq 5 follows 3",
		"snap":    "snapshot at 5 holds 1",
		"orphan":  "journal rows without a wallet",
	}
	if len(problems) != len(want) {
		t.Errorf("verify found %d problems, want %d: %v", len(problems), len(want), problems)
	}
	for _, p := range problems {
		if w, ok := want[p.PlayerID]; !ok || !strings.Contains(p.Detail, w) {
			t.Errorf("problem %v, want for %s: %q", p, p.PlayerID, w)
		}
	}
	// Activation refuses a journal with a hole rather than load a wrong version.
	if _, err := s.Load(ctx, "gap"); err == nil || errors.Is(err, actors.ErrNotFound) {
		t.Errorf("load of a wallet with a seq gap: %v, want an error", err)
	}
}

// TestBatchKeepsQueueOrder holds the writer on one batch while three writes
// queue up: two of one wallet, in order, with a refused write between them.
// They commit as one batch; the second write of the wallet builds on the
// first, and the refused one harms neither.
func TestBatchKeepsQueueOrder(t *testing.T) {
	ctx := context.Background()
	var hold atomic.Bool
	held, release := make(chan struct{}), make(chan struct{})
	var batches [][2]int
	var mu sync.Mutex
	s := openTest(t, t.TempDir(), Options{OnCommit: func(writes, events int, _ time.Duration, err error) {
		mu.Lock()
		batches = append(batches, [2]int{writes, events})
		mu.Unlock()
		if hold.CompareAndSwap(true, false) {
			held <- struct{}{}
			<-release
		}
	}})
	defer s.Close()
	eur, _ := wallet.LookupCurrency("EUR")
	st := wallet.New(eur, wallet.DefaultLimits)
	at := time.Now()
	event := func(tx string) wallet.Event {
		_, ev, err := st.Apply(wallet.Command{Kind: wallet.KindDeposit, TxID: tx, Amount: "1.00"}, at)
		if err != nil {
			t.Fatal(err)
		}
		return *ev
	}
	first := actors.Write{PlayerID: "a", Create: &actors.Wallet{PlayerID: "a", Currency: eur}, Events: []wallet.Event{event("d1")}}
	second := actors.Write{PlayerID: "a", Expected: 1, Events: []wallet.Event{event("d2"), event("d3")}}
	refused := actors.Write{PlayerID: "nobody", Expected: 7}

	hold.Store(true)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	wg.Go(func() {
		errs[3] = s.Append(ctx, actors.Write{PlayerID: "x", Create: &actors.Wallet{PlayerID: "x", Currency: eur}})
	})
	<-held
	for i, w := range []actors.Write{first, refused, second} {
		wg.Go(func() { errs[i] = s.Append(ctx, w) })
		waitFor(t, func() bool { return len(s.queue) == i+1 })
	}
	close(release)
	wg.Wait()
	if errs[0] != nil || errs[2] != nil || errs[3] != nil || !errors.Is(errs[1], actors.ErrFenced) {
		t.Fatalf("results %v, want nil, ErrFenced, nil, nil", errs)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(batches) != 2 || batches[1] != [2]int{3, 3} {
		t.Fatalf("batches (writes, events) %v, want [[1 0] [3 3]]", batches)
	}
	l, err := s.Load(ctx, "a")
	if err != nil || len(l.Tail) != 3 {
		t.Fatalf("load: %d events, %v", len(l.Tail), err)
	}
}

// TestQueueFullWaitsForContext: a full queue makes Append wait for its
// context, never forever, and drops nothing that got in.
func TestQueueFullWaitsForContext(t *testing.T) {
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s := openTest(t, t.TempDir(), Options{QueueSize: 1, OnCommit: func(int, int, time.Duration, error) {
		once.Do(func() { held <- struct{}{}; <-release })
	}})
	defer s.Close()
	eur, _ := wallet.LookupCurrency("EUR")
	create := func(id string) actors.Write {
		return actors.Write{PlayerID: id, Create: &actors.Wallet{PlayerID: id, Currency: eur}}
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = s.Append(context.Background(), create("first")) })
	<-held // the writer is busy with "first"
	wg.Go(func() { errs[1] = s.Append(context.Background(), create("queued")) })
	waitFor(t, func() bool { return len(s.queue) == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := s.Append(ctx, create("late"))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "queue full") {
		t.Fatalf("append to a full queue: %v, want queue full + deadline", err)
	}
	close(release)
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("queued appends: %v", errs)
	}
	for _, id := range []string{"first", "queued"} {
		if _, err := s.Load(context.Background(), id); err != nil {
			t.Errorf("load %s: %v", id, err)
		}
	}
	if _, err := s.Load(context.Background(), "late"); !errors.Is(err, actors.ErrNotFound) {
		t.Errorf("load late: %v, want ErrNotFound", err)
	}
}

// TestLockedDatabaseFailsBatch: when the database cannot be written (here
// another connection holds an exclusive lock), every write of the batch
// fails, nothing is written, Ready says so, and the store recovers after.
func TestLockedDatabaseFailsBatch(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var failed atomic.Int32
	s := openTest(t, dir, Options{BusyTimeout: 20 * time.Millisecond, OnCommit: func(_, _ int, _ time.Duration, err error) {
		if err != nil {
			failed.Add(1)
		}
	}})
	defer s.Close()
	raw, err := sql.Open("sqlite", filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}

	eur, _ := wallet.LookupCurrency("EUR")
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		id := fmt.Sprintf("w%d", i)
		wg.Go(func() {
			errs[i] = s.Append(ctx, actors.Write{PlayerID: id, Create: &actors.Wallet{PlayerID: id, Currency: eur}})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil || errors.Is(err, actors.ErrFenced) {
			t.Errorf("append %d while locked: %v, want an unavailable error", i, err)
		}
	}
	if err := s.Ready(ctx); err == nil {
		t.Error("ready while the database is locked")
	}
	if failed.Load() == 0 {
		t.Error("OnCommit saw no failed batch")
	}

	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("ready after unlock: %v", err)
	}
	for i := range errs {
		id := fmt.Sprintf("w%d", i)
		if _, err := s.Load(ctx, id); !errors.Is(err, actors.ErrNotFound) {
			t.Errorf("failed write of %s was kept: %v", id, err)
		}
		if err := s.Append(ctx, actors.Write{PlayerID: id, Create: &actors.Wallet{PlayerID: id, Currency: eur}}); err != nil {
			t.Errorf("append %s after unlock: %v", id, err)
		}
	}
}

// TestLookupUsesIndexes guards the lookup's query plan: every access to the
// journal must be an index search, never a scan of the wallet's journal.
func TestLookupUsesIndexes(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer s.Close()
	walletOf(t, s, "p", "EUR", 10, 0)
	q := `EXPLAIN QUERY PLAN ` + lookupSQL
	rows, err := s.rdb.Query(q, "p", `["b1"]`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	joined := strings.Join(plan, "\n")
	for _, line := range plan {
		// A journal walk shows as "SCAN journal" or as a search on the
		// primary key's player_id prefix alone.
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "SCAN" && (f[1] == "journal" || f[1] == "w") || strings.Contains(line, "PRIMARY KEY (player_id=?)") {
			t.Errorf("lookup walks the journal (%s):\n%s", line, joined)
		}
	}
	for _, idx := range []string{"journal_tx_id", "journal_ref", "journal_round_wins"} {
		if !strings.Contains(joined, idx) {
			t.Errorf("lookup plan does not use %s:\n%s", idx, joined)
		}
	}
}

func TestAppendAfterCloseAndCancelled(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	eur, _ := wallet.LookupCurrency("EUR")
	w := actors.Write{PlayerID: "p", Create: &actors.Wallet{PlayerID: "p", Currency: eur}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Append(ctx, w); !errors.Is(err, context.Canceled) {
		t.Errorf("append with a cancelled context: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(context.Background(), w); !errors.Is(err, ErrClosed) {
		t.Errorf("append after close: %v, want ErrClosed", err)
	}
	if _, err := s.Verify(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("verify after close: %v, want ErrClosed", err)
	}
}

// waitFor polls cond until it holds (the test's deadline bounds it).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
