package actors

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walletd/walletd/internal/logbuf"
	"github.com/walletd/walletd/wallet"
)

var eur, _ = wallet.LookupCurrency("EUR")

func newEngine(t testing.TB, st Store, cfg Config) *Engine {
	t.Helper()
	e := NewEngine(st, cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return e
}

func mustOpen(t testing.TB, e *Engine, id string) {
	t.Helper()
	if _, _, err := e.Open(context.Background(), id, eur); err != nil {
		t.Fatalf("open %s: %v", id, err)
	}
}

func mustApply(t testing.TB, e *Engine, id string, cmd wallet.Command) wallet.Result {
	t.Helper()
	res, err := e.Apply(context.Background(), id, cmd)
	if err != nil {
		t.Fatalf("apply %+v: %v", cmd, err)
	}
	return res
}

func deposit(tx, amount string) wallet.Command {
	return wallet.Command{Kind: wallet.KindDeposit, TxID: tx, Amount: amount}
}

func bet(tx, round, amount string) wallet.Command {
	return wallet.Command{Kind: wallet.KindBet, TxID: tx, RoundID: round, GameID: "g1", Amount: amount}
}

// eventually polls cond instead of sleeping a fixed time.
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

func TestOpenGetApply(t *testing.T) {
	st := newMemStore()
	e := newEngine(t, st, Config{})
	ctx := context.Background()

	if _, err := e.Get(ctx, "p1"); wallet.ErrorCode(err) != wallet.CodeWalletNotFound {
		t.Fatalf("get of a missing wallet: %v", err)
	}
	if _, err := e.Apply(ctx, "p1", deposit("d1", "1")); wallet.ErrorCode(err) != wallet.CodeWalletNotFound {
		t.Fatalf("deposit to a missing wallet: %v", err)
	}
	v, created, err := e.Open(ctx, "p1", eur)
	if err != nil || !created || v.Balance.String() != "0.00" || v.Version != 0 {
		t.Fatalf("open: %+v %v %v", v, created, err)
	}
	if _, created, err = e.Open(ctx, "p1", eur); err != nil || created {
		t.Fatalf("second open: created=%v err=%v", created, err)
	}
	jpy, _ := wallet.LookupCurrency("JPY")
	if _, _, err = e.Open(ctx, "p1", jpy); wallet.ErrorCode(err) != wallet.CodeCurrencyMismatch {
		t.Fatalf("open in another currency: %v", err)
	}
	mustApply(t, e, "p1", deposit("d1", "100.00"))
	res := mustApply(t, e, "p1", bet("b1", "r1", "12.5"))
	if res.Balance.String() != "87.50" || res.Version != 2 || res.Duplicate {
		t.Fatalf("bet result: %+v", res)
	}
	again := mustApply(t, e, "p1", bet("b1", "r1", "12.50"))
	if !again.Duplicate || again.Version != 2 || again.Balance.String() != "87.50" {
		t.Fatalf("retry: %+v", again)
	}
	if _, err := e.Apply(ctx, "p1", bet("b1", "r1", "13")); wallet.ErrorCode(err) != wallet.CodeTxConflict {
		t.Fatalf("conflict: %v", err)
	}
	v, err = e.Get(ctx, "p1")
	if err != nil || v.Balance.String() != "87.50" || v.Version != 2 {
		t.Fatalf("get: %+v %v", v, err)
	}
	if got := len(st.journal("p1")); got != 2 {
		t.Fatalf("journal has %d events, want 2", got)
	}
}

// Hundreds of callers on one wallet and on many wallets, and one tx_id raced
// from many goroutines: exact balances, contiguous versions, one application.
func TestConcurrency(t *testing.T) {
	st := newMemStore()
	st.delay = 200 * time.Microsecond // a commit takes time, so batches form
	e := newEngine(t, st, Config{})
	ctx := context.Background()
	const wallets, callers, betsEach = 20, 300, 10
	for w := 0; w < wallets; w++ {
		id := fmt.Sprintf("w%d", w)
		mustOpen(t, e, id)
		mustApply(t, e, id, deposit("seed", "100000.00"))
	}
	mustOpen(t, e, "hot")
	mustApply(t, e, "hot", deposit("seed", "100000.00"))

	var wg sync.WaitGroup
	var dups, applied atomic.Int64
	for c := 0; c < callers; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < betsEach; i++ {
				if _, err := e.Apply(ctx, "hot", bet(fmt.Sprintf("hot-%d-%d", c, i), "r", "0.01")); err != nil {
					t.Errorf("hot bet: %v", err)
				}
				id := fmt.Sprintf("w%d", (c+i)%wallets)
				if _, err := e.Apply(ctx, id, bet(fmt.Sprintf("b-%d-%d", c, i), "r", "1.00")); err != nil {
					t.Errorf("bet: %v", err)
				}
			}
			// Every caller also races the same tx_id on the hot wallet.
			res, err := e.Apply(ctx, "hot", deposit("raced", "5.00"))
			switch {
			case err != nil:
				t.Errorf("raced deposit: %v", err)
			case res.Duplicate:
				dups.Add(1)
			default:
				applied.Add(1)
			}
		}(c)
	}
	wg.Wait()
	if applied.Load() != 1 || dups.Load() != callers-1 {
		t.Fatalf("raced tx_id applied %d times, %d duplicates", applied.Load(), dups.Load())
	}
	hot, _ := e.Get(ctx, "hot")
	// 100000 - 3000 × 0.01 + 5
	if hot.Balance.String() != "99975.00" || hot.Version != 1+callers*betsEach+1 {
		t.Fatalf("hot wallet: %+v", hot)
	}
	total := 0
	for w := 0; w < wallets; w++ {
		id := fmt.Sprintf("w%d", w)
		v, _ := e.Get(ctx, id)
		n := int(v.Version) - 1
		total += n
		want := wallet.MinorUnits(10000000-int64(n)*100, eur)
		if v.Balance.Cmp(want) != 0 {
			t.Fatalf("%s: balance %s after %d bets, want %s", id, v.Balance, n, want)
		}
		checkJournal(t, st.journal(id), v)
	}
	if total != callers*betsEach {
		t.Fatalf("%d bets on the wallets, want %d", total, callers*betsEach)
	}
	checkJournal(t, st.journal("hot"), hot)
}

// checkJournal: versions contiguous, every balance_after follows, ends at v.
func checkJournal(t *testing.T, evs []wallet.Event, v View) {
	t.Helper()
	st, err := wallet.Rebuild(v.Currency, nil, evs, wallet.DefaultLimits)
	if err != nil {
		t.Fatalf("%s: journal does not replay: %v", v.PlayerID, err)
	}
	if st.Version() != v.Version || st.Balance().Cmp(v.Balance) != 0 {
		t.Fatalf("%s: journal gives v%d %s, wallet says v%d %s", v.PlayerID, st.Version(), st.Balance(), v.Version, v.Balance)
	}
}

// A failed commit answers UNAVAILABLE, acknowledges nothing of what rested on
// it, and leaves memory equal to the store; a retry then succeeds once.
func TestFailedCommitReloads(t *testing.T) {
	st := newMemStore()
	e := newEngine(t, st, Config{})
	ctx := context.Background()
	mustOpen(t, e, "p1")
	mustApply(t, e, "p1", deposit("d1", "10.00"))

	st.set(func(s *memStore) { s.failNext = 1; s.delay = 20 * time.Millisecond })
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = e.Apply(ctx, "p1", bet(fmt.Sprintf("b%d", i), "r1", "1.00"))
		}(i)
	}
	wg.Wait()
	st.set(func(s *memStore) { s.delay = 0 })
	failed := 0
	for _, err := range errs {
		if err != nil {
			if wallet.ErrorCode(err) != wallet.CodeUnavailable {
				t.Fatalf("a failed commit must answer UNAVAILABLE, got %v", err)
			}
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("the injected failure failed no request")
	}
	v, err := e.Get(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	checkJournal(t, st.journal("p1"), v)
	if want := wallet.MinorUnits(1000-int64(5-failed)*100, eur); v.Balance.Cmp(want) != 0 {
		t.Fatalf("balance %s, want %s (%d bets failed)", v.Balance, want, failed)
	}
	// The failed ones can be retried and apply exactly once.
	for i := range errs {
		mustApply(t, e, "p1", bet(fmt.Sprintf("b%d", i), "r1", "1.00"))
	}
	v, _ = e.Get(ctx, "p1")
	if v.Balance.String() != "5.00" || v.Version != 6 {
		t.Fatalf("after retries: %+v", v)
	}
}

// Keys that left memory are answered from the store: a retry of an old
// tx_id is a duplicate (the store refuses the write, the wallet recalls the
// key and decides again), a win for an old bet finds it, a late bet after an
// old tombstone is refused.
func TestKeysBeyondMemory(t *testing.T) {
	st := newMemStore()
	var logs logbuf.Buffer
	e := newEngine(t, st, Config{Limits: wallet.Limits{Retention: time.Hour, MaxKeys: 2},
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	ctx := context.Background()
	mustOpen(t, e, "p1")
	mustApply(t, e, "p1", deposit("d1", "100.00"))
	mustApply(t, e, "p1", bet("old-bet", "r1", "10.00"))
	mustApply(t, e, "p1", wallet.Command{Kind: wallet.KindRollback, TxID: "rb1", Ref: "never-seen"})
	for i := 0; i < 5; i++ {
		mustApply(t, e, "p1", deposit(fmt.Sprintf("fill%d", i), "1.00"))
	}
	// d1 left memory long ago.
	res := mustApply(t, e, "p1", deposit("d1", "100.00"))
	if !res.Duplicate || res.Version != 1 {
		t.Fatalf("retry of an old deposit: %+v", res)
	}
	if _, err := e.Apply(ctx, "p1", deposit("d1", "99.00")); wallet.ErrorCode(err) != wallet.CodeTxConflict {
		t.Fatalf("conflicting reuse of an old tx_id: %v", err)
	}
	win := mustApply(t, e, "p1", wallet.Command{Kind: wallet.KindWin, TxID: "w1", Amount: "20.00", Ref: "old-bet"})
	if win.Duplicate || len(win.Settled) != 1 {
		t.Fatalf("win for an old bet: %+v", win)
	}
	if _, err := e.Apply(ctx, "p1", wallet.Command{Kind: wallet.KindWin, TxID: "w2", Amount: "1.00", Ref: "old-bet"}); wallet.ErrorCode(err) != wallet.CodeBetAlreadySettled {
		t.Fatalf("second win for an old bet: %v", err)
	}
	if _, err := e.Apply(ctx, "p1", bet("never-seen", "r2", "1.00")); wallet.ErrorCode(err) != wallet.CodeBetRolledBack {
		t.Fatalf("bet after an old tombstone: %v", err)
	}
	v, _ := e.Get(ctx, "p1")
	if v.Balance.String() != "115.00" {
		t.Fatalf("balance %s, want 115.00", v.Balance)
	}
	checkJournal(t, st.journal("p1"), v)
	// Finding an old key is how this works, not a fault: no warning.
	if out := logs.String(); strings.Contains(out, `"level":"WARN"`) || !strings.Contains(out, "the journal already holds a key") {
		t.Fatalf("logs of retries from beyond memory, want info lines and no warning:\n%s", out)
	}
}

func TestPassivationAndReactivation(t *testing.T) {
	st := newMemStore()
	e := newEngine(t, st, Config{IdleTimeout: 30 * time.Millisecond, SnapshotEvery: 3})
	ctx := context.Background()
	mustOpen(t, e, "p1")
	for i := 0; i < 7; i++ {
		mustApply(t, e, "p1", deposit(fmt.Sprintf("d%d", i), "1.00"))
	}
	eventually(t, "passivation", func() bool { return e.Active() == 0 })
	v, err := e.Get(ctx, "p1")
	if err != nil || v.Balance.String() != "7.00" || v.Version != 7 {
		t.Fatalf("after reactivation: %+v %v", v, err)
	}
	st.mu.Lock()
	snap := st.wallets["p1"].snap
	st.mu.Unlock()
	if snap == nil || snap.Version != 6 {
		t.Fatalf("want a snapshot at version 6, got %+v", snap)
	}
	res := mustApply(t, e, "p1", deposit("d0", "1.00"))
	if !res.Duplicate || res.Version != 1 {
		t.Fatalf("retry after reactivation: %+v", res)
	}
}

func TestOverloadIsRefused(t *testing.T) {
	st := newMemStore()
	e := newEngine(t, st, Config{MaxPerWallet: 8})
	ctx := context.Background()
	mustOpen(t, e, "p1")
	st.set(func(s *memStore) { s.delay = 50 * time.Millisecond })
	var wg sync.WaitGroup
	var refused, ok atomic.Int64
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := e.Apply(ctx, "p1", deposit(fmt.Sprintf("d%d", i), "1.00"))
			switch wallet.ErrorCode(err) {
			case "":
				ok.Add(1)
			case wallet.CodeUnavailable:
				refused.Add(1)
			default:
				t.Errorf("unexpected: %v", err)
			}
		}(i)
	}
	wg.Wait()
	if refused.Load() == 0 || ok.Load() == 0 {
		t.Fatalf("ok=%d refused=%d: want both", ok.Load(), refused.Load())
	}
	st.set(func(s *memStore) { s.delay = 0 })
	v, _ := e.Get(ctx, "p1")
	if v.Version != uint64(ok.Load()) {
		t.Fatalf("version %d, but %d deposits were acknowledged", v.Version, ok.Load())
	}
}

func TestCloseRefusesAndLeaksNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	st := newMemStore()
	e := NewEngine(st, Config{})
	for i := 0; i < 50; i++ {
		mustOpen(t, e, fmt.Sprintf("p%d", i))
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Get(context.Background(), "p1"); wallet.ErrorCode(err) != wallet.CodeUnavailable {
		t.Fatalf("after close: %v", err)
	}
	eventually(t, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= before+2 })
}

// Many concurrent retries of transactions older than the activation's
// snapshot: each write that reuses an old key is refused by the store and
// the wallet reloads; every reload must remember all keys recalled so far,
// or the retries keep failing each other until they run out of tries.
func TestConcurrentOldRetriesAfterReactivation(t *testing.T) {
	st := newMemStore()
	first := NewEngine(st, Config{SnapshotEvery: 10})
	mustOpen(t, first, "p1")
	for i := 0; i < 120; i++ {
		mustApply(t, first, "p1", deposit(fmt.Sprintf("d%d", i), "1.00"))
	}
	if err := first.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, st, Config{SnapshotEvery: 10}) // activates from the snapshot at 120
	var wg sync.WaitGroup
	var failed atomic.Int64
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; i < 120; i += 16 {
				res, err := e.Apply(context.Background(), "p1", deposit(fmt.Sprintf("d%d", i), "1.00"))
				if err != nil || !res.Duplicate || res.Version != uint64(i+1) {
					failed.Add(1)
					t.Logf("retry of d%d: %+v %v", i, res, err)
				}
			}
		}(g)
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of 120 retries were not answered as duplicates", failed.Load())
	}
	if v, _ := e.Get(context.Background(), "p1"); v.Version != 120 || v.Balance.String() != "120.00" {
		t.Fatalf("retries changed the wallet: %+v", v)
	}
}

// snapCounter counts the snapshots the engine writes.
type snapCounter struct {
	nopObserver
	n atomic.Int64
}

func (c *snapCounter) Snapshotted() { c.n.Add(1) }

// A wallet's snapshots come every SnapshotEvery events, or, when it holds
// many open bets, every twice as many events as its last snapshot had open
// bets; either way a reactivation rebuilds the same wallet.
func TestSnapshotSpacingFollowsOpenBets(t *testing.T) {
	for _, tc := range []struct {
		name      string
		settle    bool // every bet is won at once, so no bet stays open
		snapshots int64
	}{
		// 300 bets and 300 wins, a snapshot every 10 events.
		{"settled bets", true, 60},
		// 300 open bets: snapshots at 10, 30, 90 and 270 events.
		{"open bets", false, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newMemStore()
			var obs snapCounter
			e := NewEngine(st, Config{SnapshotEvery: 10, Observer: &obs})
			mustOpen(t, e, "p1")
			mustApply(t, e, "p1", deposit("d", "1000.00"))
			obs.n.Store(0)
			for i := range 300 {
				id := fmt.Sprintf("b%d", i)
				mustApply(t, e, "p1", bet(id, "r"+id, "1.00"))
				if tc.settle {
					mustApply(t, e, "p1", wallet.Command{Kind: wallet.KindWin, TxID: "w" + id, Ref: id, RoundID: "r" + id, Amount: "0.50"})
				}
			}
			if got := obs.n.Load(); got != tc.snapshots {
				t.Errorf("%d snapshots, want %d", got, tc.snapshots)
			}
			before, err := e.Get(context.Background(), "p1")
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			again := newEngine(t, st, Config{SnapshotEvery: 10})
			after, err := again.Get(context.Background(), "p1")
			if err != nil || after.Version != before.Version || after.Balance.Cmp(before.Balance) != 0 {
				t.Fatalf("reactivated %+v %v, want %+v", after, err, before)
			}
			// An open bet from before the last snapshot still settles.
			if !tc.settle {
				mustApply(t, again, "p1", wallet.Command{Kind: wallet.KindWin, TxID: "w0", Ref: "b0", RoundID: "rb0", Amount: "2.00"})
			}
		})
	}
}
