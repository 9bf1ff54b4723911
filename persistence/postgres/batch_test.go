package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/persistence/internal/pending"
	"github.com/walletd/walletd/wallet"
)

// TestNumericRoundTrip: amounts go in and come back with exactly the
// currency's digits, in the journal, the wallet row and the snapshot.
func TestNumericRoundTrip(t *testing.T) {
	s, dsn := openTest(t, Options{})
	ctx := testCtx(t)
	c := sqlConn(t, dsn)
	for _, tc := range []struct{ code, amount string }{{"EUR", "12.50"}, {"JPY", "1000"}, {"KWD", "1.005"}} {
		a := newAcct(t, "num-"+tc.code, tc.code)
		a.deposit(t, "d1", tc.amount)
		a.deposit(t, "d2", tc.amount)
		w := a.write()
		sn := a.st.Snapshot()
		w.Snapshot = &sn
		mustAppend(t, s, w)

		l, err := s.Load(ctx, a.id)
		if err != nil {
			t.Fatal(err)
		}
		if l.Snapshot == nil || len(l.Tail) != 0 {
			t.Fatalf("%s: load %+v", tc.code, l)
		}
		h, err := s.History(ctx, a.id, 0, 10)
		if err != nil || len(h) != 2 {
			t.Fatalf("%s: history %v %v", tc.code, h, err)
		}
		double := a.st.Balance().String()
		if got := h[1].Amount.String(); got != tc.amount {
			t.Errorf("%s: amount %s came back as %s", tc.code, tc.amount, got)
		}
		if got := h[0].BalanceAfter.String(); got != double {
			t.Errorf("%s: balance_after %s came back as %s", tc.code, double, got)
		}
		if l.Snapshot.Balance != double {
			t.Errorf("%s: snapshot balance %s, want %s", tc.code, l.Snapshot.Balance, double)
		}
		// The rows hold NUMERIC with the scale written, not a float.
		var amount, balance, typ string
		if err := c.QueryRow(ctx, `SELECT j.amount::text, w.balance::text, pg_typeof(w.balance)::text
			FROM journal j JOIN wallets w USING (player_id) WHERE j.player_id = $1 AND j.seq = 1`, a.id).Scan(&amount, &balance, &typ); err != nil {
			t.Fatal(err)
		}
		if amount != tc.amount || balance != double || typ != "numeric" {
			t.Errorf("%s: stored amount %s balance %s as %s", tc.code, amount, balance, typ)
		}
	}
}

// TestBatchIsolatesFailures runs one batch by hand, so the refused writes
// certainly share the statement with the good ones. With keys already in
// the journal the fast statement fails whole and the careful one writes the
// batch; without, the fast one writes the good wallets and the careful one
// only explains the refusals.
func TestBatchIsolatesFailures(t *testing.T) {
	for _, collide := range []bool{true, false} {
		t.Run(fmt.Sprintf("key collisions=%v", collide), func(t *testing.T) { testBatchIsolatesFailures(t, collide) })
	}
}

func testBatchIsolatesFailures(t *testing.T, collide bool) {
	var commits atomic.Int64
	s, dsn := openTest(t, Options{OnCommit: func(writes, events int, took time.Duration, err error) { commits.Add(1) }})
	ctx := testCtx(t)

	accts := make(map[string]*acct)
	for _, id := range []string{"good1", "good2", "stale", "dupkey", "latebet", "badbalance", "exists"} {
		a := newAcct(t, id, "EUR")
		a.deposit(t, "seed", "10.00")
		a.apply(t, wallet.Command{Kind: wallet.KindRollback, TxID: "rb", Ref: "ghost"}) // tombstone of bet "ghost"
		mustAppend(t, s, a.write())
		accts[id] = a
	}
	// Corrupt badbalance's row behind the store's back: its next write no
	// longer follows the stored balance.
	exec(t, sqlConn(t, dsn), "UPDATE wallets SET balance = balance + 1 WHERE player_id = 'badbalance'")

	var batch []*request
	add := func(w actors.Write) {
		batch = append(batch, &request{Reply: pending.Waiting(ctx), w: w})
	}
	for _, id := range []string{"good1", "good2", "badbalance"} {
		accts[id].deposit(t, "next", "1.00")
		add(accts[id].write())
	}
	stale := accts["stale"]
	stale.deposit(t, "next", "1.00")
	w := stale.write()
	w.Expected, w.Events[0].Seq = 1, 2
	add(w)
	late := accts["latebet"]
	if collide {
		dup := accts["dupkey"]
		dup.deposit(t, "next", "1.00")
		w = dup.write()
		w.Events[0].TxID = "seed"
		add(w)
		ev := late.deposit(t, "next", "1.00")
		ev.Kind, ev.TxID, ev.RoundID = wallet.KindBet, "ghost", "r1"
		ev.BalanceAfter = late.st.Balance().Sub(ev.Amount).Sub(ev.Amount)
		add(actors.Write{PlayerID: late.id, Expected: late.stored, Events: []wallet.Event{ev}})
	}
	add(actors.Write{PlayerID: "exists", Create: &actors.Wallet{PlayerID: "exists", Currency: late.cur}})
	newbie := newAcct(t, "newbie", "KWD")
	newbie.deposit(t, "d1", "1.005")
	add(newbie.write())

	wr := s.writers[0]
	before := commits.Load()
	// The writer goroutine is idle (waiting on its empty queue), so the
	// test may drive its batch directly: one statement for all of them.
	wr.commit(batch)
	if n := commits.Load() - before; n != 1 {
		t.Fatalf("%d commits, want 1", n)
	}
	want := map[string]string{
		"good1": "ok", "good2": "ok", "newbie": "ok",
		"stale": "fenced", "exists": "fenced",
		"dupkey": "keys [seed]", "latebet": "keys [ghost]",
		"badbalance": "error",
	}
	for _, r := range batch {
		err := <-r.Done()
		var ke *actors.KeyExistsError
		got := "error"
		switch {
		case err == nil:
			got = "ok"
		case errors.Is(err, actors.ErrFenced):
			got = "fenced"
		case errors.As(err, &ke):
			got = fmt.Sprintf("keys %v", ke.Keys)
		}
		if got != want[r.w.PlayerID] {
			t.Errorf("%s: %v, want %s", r.w.PlayerID, err, want[r.w.PlayerID])
		}
	}
	for _, id := range []string{"good1", "good2", "newbie"} {
		l, err := s.Load(ctx, id)
		if err != nil || len(l.Tail) == 0 || l.Tail[len(l.Tail)-1].TxID != map[bool]string{true: "d1", false: "next"}[id == "newbie"] {
			t.Errorf("%s: not written: %+v %v", id, l, err)
		}
	}
	for _, id := range []string{"stale", "dupkey", "latebet", "badbalance"} {
		l, err := s.Load(ctx, id)
		if err != nil || len(l.Tail) != 2 {
			t.Errorf("%s: refused write left %d events (%v)", id, len(l.Tail), err)
		}
	}
}

// TestRetryAfterUniqueViolation: a row another process inserts behind the
// batch statement's snapshot fails the statement with a unique violation;
// the rerun refuses only that wallet.
func TestRetryAfterUniqueViolation(t *testing.T) {
	s, dsn := openTest(t, Options{CommitTimeout: 20 * time.Second})
	ctx := testCtx(t)
	x, y := newAcct(t, "x", "EUR"), newAcct(t, "y", "EUR")
	for _, a := range []*acct{x, y} {
		a.deposit(t, "d1", "5.00")
		mustAppend(t, s, a.write())
	}
	// "Another process" holds an uncommitted journal row at x's next seq.
	other := sqlConn(t, dsn)
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO journal (player_id, seq, tx_id, kind, amount, balance_after, created_at)
		VALUES ('x', 2, 'intruder', 'deposit', 1, 6, now())`); err != nil {
		t.Fatal(err)
	}
	x.deposit(t, "d2", "1.00")
	y.deposit(t, "d2", "1.00")
	wx, wy := x.write(), y.write()
	errs := make(chan error, 2)
	for _, w := range []actors.Write{wx, wy} {
		go func() { errs <- s.Append(ctx, w) }()
	}
	// Wait until the batch statement blocks on the intruder's index entry,
	// then commit the intruder.
	watch := sqlConn(t, dsn)
	waitFor(t, 10*time.Second, "batch statement waiting on the intruder", func() bool {
		var n int
		err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'WITH w AS%'`).Scan(&n)
		return err == nil && n > 0
	})
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var got []error
	for range 2 {
		got = append(got, <-errs)
	}
	fenced := slices.IndexFunc(got, func(err error) bool { return errors.Is(err, actors.ErrFenced) })
	ok := slices.IndexFunc(got, func(err error) bool { return err == nil })
	if fenced < 0 || ok < 0 {
		t.Fatalf("appends: %v, want one ErrFenced (x) and one success (y)", got)
	}
	l, err := s.Load(ctx, "y")
	if err != nil || len(l.Tail) != 2 {
		t.Fatalf("y: %+v %v", l, err)
	}
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFencingRace: two activations of one wallet (in one process, and in
// two processes) race to write every version with the same Expected. Each
// version is won exactly once, the losers are fenced and reload, and the
// journal ends contiguous with every acknowledged write in it.
func TestFencingRace(t *testing.T) {
	for _, procs := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d processes", procs), func(t *testing.T) {
			s, dsn := openTest(t, Options{})
			stores := []*Store{s, s}
			if procs == 2 {
				stores[1] = openOn(t, dsn, Options{})
			}
			ctx := testCtx(t)
			seed := newAcct(t, "hot", "EUR")
			seed.deposit(t, "seed", "1000.00")
			mustAppend(t, s, seed.write())

			const target = 300
			type win struct {
				seq uint64
				tx  string
			}
			wins := make([][]win, 2)
			fenced := make([]int, 2)
			errs := make(chan error, 2)
			var wg sync.WaitGroup
			for i := range 2 {
				wg.Go(func() {
					a := newAcct(t, "hot", "EUR")
					st := stores[i]
					if err := a.reload(ctx, st); err != nil {
						errs <- err
						return
					}
					for n := 0; a.stored < target; n++ {
						tx := fmt.Sprintf("a%d-%d", i, n)
						_, ev, err := a.st.Apply(wallet.Command{Kind: wallet.KindDeposit, TxID: tx, Amount: "1.00"}, time.Now())
						if err != nil || ev == nil {
							errs <- fmt.Errorf("apply: %v", err)
							return
						}
						a.pending = append(a.pending, *ev)
						w := a.write()
						err = st.Append(ctx, w)
						switch {
						case err == nil:
							wins[i] = append(wins[i], win{w.Version(), tx})
						case errors.Is(err, actors.ErrFenced):
							fenced[i]++
							if err := a.reload(ctx, st); err != nil {
								errs <- err
								return
							}
						default:
							errs <- fmt.Errorf("activation %d: %w", i, err)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if len(wins[0])+len(wins[1]) != target-1 {
				t.Fatalf("%d + %d acknowledged writes, want %d", len(wins[0]), len(wins[1]), target-1)
			}
			h, err := s.History(ctx, "hot", 0, 2*target)
			if err != nil {
				t.Fatal(err)
			}
			if len(h) != target {
				t.Fatalf("journal holds %d events, want %d", len(h), target)
			}
			bySeq := make(map[uint64]string)
			for i, ev := range h {
				if ev.Seq != uint64(target-i) {
					t.Fatalf("history position %d holds seq %d: a gap or a duplicate", i, ev.Seq)
				}
				bySeq[ev.Seq] = ev.TxID
			}
			for _, ws := range wins {
				for _, w := range ws {
					if bySeq[w.seq] != w.tx {
						t.Errorf("acknowledged %s at %d, journal holds %q", w.tx, w.seq, bySeq[w.seq])
					}
				}
			}
			if problems, err := s.Verify(ctx); err != nil || len(problems) > 0 {
				t.Fatalf("verify: %v %v", problems, err)
			}
			t.Logf("wins %d/%d, fenced %d/%d", len(wins[0]), len(wins[1]), fenced[0], fenced[1])
			if fenced[0]+fenced[1] == 0 {
				t.Error("no write was fenced: the activations never raced")
			}
		})
	}
}

// TestKeyExists: a duplicate tx_id, and a bet arriving after its tombstone
// left memory (a fresh activation from a snapshot), are refused by the
// journal with the key named, and nothing of the write is kept.
func TestKeyExists(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := testCtx(t)
	a := newAcct(t, "keys", "EUR")
	a.deposit(t, "d1", "10.00")
	a.apply(t, wallet.Command{Kind: wallet.KindRollback, TxID: "rb1", Ref: "late"})
	w := a.write()
	sn := a.st.Snapshot()
	w.Snapshot = &sn
	mustAppend(t, s, w)

	// A new activation knows only the snapshot: no tombstone, no tx_ids.
	fresh := newAcct(t, "keys", "EUR")
	if err := fresh.reload(ctx, s); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cmd wallet.Command
		key string
	}{
		{wallet.Command{Kind: wallet.KindDeposit, TxID: "d1", Amount: "1.00"}, "d1"},
		{wallet.Command{Kind: wallet.KindBet, TxID: "late", RoundID: "r1", Amount: "1.00"}, "late"},
	} {
		if err := fresh.reload(ctx, s); err != nil {
			t.Fatal(err)
		}
		fresh.apply(t, tc.cmd) // the domain cannot know: it asks the store
		fresh.deposit(t, "other-"+tc.key, "1.00")
		err := s.Append(ctx, fresh.write())
		var ke *actors.KeyExistsError
		if !errors.As(err, &ke) || !slices.Equal(ke.Keys, []string{tc.key}) {
			t.Fatalf("%s %s: %v, want KeyExistsError naming %s", tc.cmd.Kind, tc.cmd.TxID, err, tc.key)
		}
		l, err := s.Load(ctx, "keys")
		if err != nil || l.Snapshot.Version != 2 || len(l.Tail) != 0 {
			t.Fatalf("refused write changed the wallet: %+v %v", l, err)
		}
		// The wallet recalls the key and decides right.
		evs, err := s.Lookup(ctx, "keys", ke.Keys)
		if err != nil || len(evs) != 1 {
			t.Fatalf("lookup %v: %v %v", ke.Keys, evs, err)
		}
	}
}

// TestCloseFlushes: writes queued when Close starts are committed, and
// Append after Close fails at once.
func TestCloseFlushes(t *testing.T) {
	s, dsn := openTest(t, Options{})
	const n = 500
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		a := newAcct(t, fmt.Sprintf("w%03d", i), "EUR")
		a.deposit(t, "d1", "1.00")
		w := a.write()
		wg.Go(func() { errs[i] = s.Append(context.Background(), w) })
	}
	// Let them queue, then close under them.
	c := sqlConn(t, dsn)
	waitFor(t, 10*time.Second, "appends to queue", func() bool { return len(s.writers[0].queue) > 0 || countWallets(t, c) > 0 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	acked := 0
	for _, err := range errs {
		if err == nil {
			acked++
		} else if !errors.Is(err, ErrClosed) {
			t.Errorf("append during close: %v, want success or ErrClosed", err)
		}
	}
	if got := countWallets(t, c); got != acked {
		t.Fatalf("%d wallets in the store, %d appends acknowledged", got, acked)
	}
	if err := s.Append(context.Background(), actors.Write{PlayerID: "late", Create: &actors.Wallet{PlayerID: "late", Currency: wallet.Currency{Code: "EUR", Minor: 2}}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
}

func countWallets(t testing.TB, c *pgx.Conn) int {
	t.Helper()
	var n int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM wallets").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
