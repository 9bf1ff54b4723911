// Package storetest is the conformance suite of actors.Store: every store
// (persistence/sqlite, persistence/postgres) runs Run, and RunDurability
// when it can be reopened. The suite writes journals made by the real wallet
// domain, so balances are always consistent.
//
// Beyond the interface comments, the suite pins these choices so that all
// stores behave alike:
//   - Load, Lookup and History of an unknown wallet return ErrNotFound
//     (errors.Is).
//   - Lookup and History return events in seq order and newest first
//     respectively, each event at most once.
//   - Times round-trip to within a millisecond; amounts exactly.
//   - Close is idempotent, and every method after it returns an error.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/wallet"
)

// Run runs the conformance suite. open must return a fresh, empty store;
// the suite closes it when the test ends (Close must tolerate a second call,
// as the close tests close it themselves).
//
// A store that also implements actors.AsyncAppender runs the suite a second
// time with every Append made through AppendAsync, which must answer alike.
func Run(t *testing.T, open func(t *testing.T) actors.Store) {
	run(t, open)
	probe := open(t)
	_, async := probe.(actors.AsyncAppender)
	_ = probe.Close()
	if !async {
		return
	}
	t.Run("ThroughAppendAsync", func(t *testing.T) {
		run(t, func(t *testing.T) actors.Store { return newAsyncStore(t, open(t)) })
	})
	t.Run("AppendAsyncPastDeadline", func(t *testing.T) {
		s := open(t)
		t.Cleanup(func() { _ = s.Close() })
		testPastDeadline(t, s)
	})
}

func run(t *testing.T, open func(t *testing.T) actors.Store) {
	fresh := func(t *testing.T) actors.Store {
		t.Helper()
		s := open(t)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}

	t.Run("CreateAndLoad", func(t *testing.T) { testCreateAndLoad(t, fresh(t)) })
	t.Run("CreateTwiceIsFenced", func(t *testing.T) { testCreateTwice(t, fresh(t)) })
	t.Run("EventsRoundTrip", func(t *testing.T) { testRoundTrip(t, fresh(t)) })
	t.Run("SnapshotAndTail", func(t *testing.T) { testSnapshotAndTail(t, fresh(t)) })
	t.Run("Fencing", func(t *testing.T) { testFencing(t, fresh(t)) })
	t.Run("DuplicateKeys", func(t *testing.T) { testDuplicateKeys(t, fresh(t)) })
	t.Run("InvalidWrite", func(t *testing.T) { testInvalidWrite(t, fresh(t)) })
	t.Run("FailureIsolatedInBatch", func(t *testing.T) { testFailureIsolated(t, fresh(t)) })
	t.Run("Lookup", func(t *testing.T) { testLookup(t, fresh(t)) })
	t.Run("History", func(t *testing.T) { testHistory(t, fresh(t)) })
	t.Run("UnknownWallet", func(t *testing.T) { testUnknownWallet(t, fresh(t)) })
	t.Run("ConcurrentAppenders", func(t *testing.T) { testConcurrent(t, fresh(t)) })
	t.Run("Ready", func(t *testing.T) {
		if err := fresh(t).Ready(testCtx(t)); err != nil {
			t.Fatalf("ready: %v", err)
		}
	})
	t.Run("Close", func(t *testing.T) { testClose(t, fresh(t)) })
	t.Run("CloseWhileAppending", func(t *testing.T) { testCloseWhileAppending(t, fresh(t)) })
}

func testCreateAndLoad(t *testing.T, s actors.Store) {
	ctx := testCtx(t)
	for _, code := range []string{"EUR", "JPY", "KWD"} {
		b := newBuilder(t, "create-"+code, code)
		mustAppend(t, ctx, s, b.create())
		l := checkLoaded(t, ctx, s, b)
		if l.Snapshot != nil || len(l.Tail) != 0 {
			t.Errorf("%s: new wallet loads snapshot %v and %d events, want none", b.id, l.Snapshot, len(l.Tail))
		}
	}
	// A create may carry the wallet's first events (and a snapshot).
	b := newBuilder(t, "create-with-events", "EUR")
	b.deposit("d1", "10.00")
	b.bet("b1", "r1", "g1", "2.50")
	w := b.create()
	sn := b.st.Snapshot()
	w.Snapshot = &sn
	mustAppend(t, ctx, s, w)
	l := checkLoaded(t, ctx, s, b)
	checkSnapshot(t, l.Snapshot, sn)
}

func testCreateTwice(t *testing.T, s actors.Store) {
	ctx := testCtx(t)
	b := newBuilder(t, "twice", "EUR")
	first := b.create()
	mustAppend(t, ctx, s, first)

	again := newBuilder(t, "twice", "JPY")
	again.deposit("d1", "500")
	for _, w := range []actors.Write{first, again.create()} {
		if err := s.Append(ctx, w); !errors.Is(err, actors.ErrFenced) {
			t.Fatalf("second create (%d events): %v, want ErrFenced", len(w.Events), err)
		}
	}
	checkLoaded(t, ctx, s, b) // still EUR, no events
}

func testRoundTrip(t *testing.T, s actors.Store) {
	ctx := testCtx(t)
	for _, tc := range []struct{ code, amount, small string }{
		{"EUR", "12.50", "0.01"},
		{"JPY", "1000", "1"},
		{"KWD", "1.005", "0.001"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			b := newBuilder(t, "rt-"+tc.code, tc.code)
			d1 := b.deposit("d1", tc.amount)
			b.deposit("d2", tc.amount)
			mustAppend(t, ctx, s, b.create())

			b.bet("b1", "r1", "g1", tc.small)
			b.win("w1", "r1", "b1", tc.amount) // settles b1 by reference
			mustAppend(t, ctx, s, b.next(false))

			b.bet("b2", "r2", "g2", tc.small)
			b.bet("b3", "r2", "g2", "0")    // zero-stake bet
			b.win("w2", "r2", "", tc.small) // settles the round: b2, b3
			b.rollback("rb1", "ghost")      // tombstone: ghost never arrived
			b.bet("b4", "r4", "g1", tc.small)
			b.rollback("rb2", "b4") // refund
			b.withdraw("x1", tc.small)
			mustAppend(t, ctx, s, b.next(false))

			if d1.Amount.String() != tc.amount {
				t.Fatalf("builder made %s of %q", d1.Amount, tc.amount)
			}
			l := checkLoaded(t, ctx, s, b)
			if got := l.Tail[0].Amount.String(); got != tc.amount {
				t.Errorf("amount %s came back as %s", tc.amount, got)
			}
			if ev := l.Tail[6]; ev.TxID != "w2" || !slices.Equal(ev.Settles, []string{"b2", "b3"}) {
				t.Errorf("round win %s settles %v, want w2 settling [b2 b3]", ev.TxID, ev.Settles)
			}
			if ev := l.Tail[7]; !ev.Tombstone || ev.Ref != "ghost" {
				t.Errorf("tombstone came back as %+v", ev)
			}
			h, err := s.History(ctx, b.id, 0, 100)
			if err != nil {
				t.Fatalf("history: %v", err)
			}
			checkEvents(t, "history", h, reversed(b.all))
		})
	}
}

func testSnapshotAndTail(t *testing.T, s actors.Store) {
	ctx := testCtx(t)
	b := newBuilder(t, "snap", "EUR")
	b.deposit("d1", "100.00")
	mustAppend(t, ctx, s, b.create())
	b.bet("b1", "r1", "g", "10.00")
	b.bet("b2", "r2", "g", "5.00") // stays open: the snapshot carries it
	b.win("w1", "r1", "", "1.00")
	b.deposit("d2", "0.01")
	w := b.next(true)
	mustAppend(t, ctx, s, w)
	first := *w.Snapshot

	b.bet("b3", "r3", "g", "1.00")
	mustAppend(t, ctx, s, b.next(false))
	b.withdraw("x1", "2.00")
	b.win("w2", "r2", "b2", "7.00")
	mustAppend(t, ctx, s, b.next(false))

	l := checkLoaded(t, ctx, s, b)
	checkSnapshot(t, l.Snapshot, first)
	if len(l.Tail) != 3 || l.Tail[0].Seq != first.Version+1 {
		t.Fatalf("tail %v after a snapshot at %d, want the 3 events after it", seqs(l.Tail), first.Version)
	}
	full, err := wallet.Rebuild(b.cur, nil, b.all, wallet.DefaultLimits)
	if err != nil {
		t.Fatalf("full replay: %v", err)
	}
	part, err := wallet.Rebuild(b.cur, l.Snapshot, l.Tail, wallet.DefaultLimits)
	if err != nil {
		t.Fatalf("rebuild from snapshot: %v", err)
	}
	if full.Version() != part.Version() || full.Balance().Cmp(part.Balance()) != 0 {
		t.Fatalf("snapshot+tail gives %d %s, full replay %d %s", part.Version(), part.Balance(), full.Version(), full.Balance())
	}
	checkSnapshot(t, ptr(part.Snapshot()), full.Snapshot())

	// A write of a snapshot alone (no events) replaces the snapshot.
	w = b.next(true)
	mustAppend(t, ctx, s, w)
	l = checkLoaded(t, ctx, s, b)
	checkSnapshot(t, l.Snapshot, *w.Snapshot)
	if len(l.Tail) != 0 {
		t.Fatalf("tail %v after a snapshot at the wallet's version", seqs(l.Tail))
	}
}

func ptr[T any](v T) *T { return &v }

func testFencing(t *testing.T, s actors.Store) {
	ctx := testCtx(t)
	b := newBuilder(t, "fence", "EUR")
	b.deposit("d1", "10.00")
	b.deposit("d2", "10.00")
	b.deposit("d3", "10.00")
	mustAppend(t, ctx, s, b.create())
	mustAppend(t, ctx, s, actors.Write{PlayerID: "other", Create: &actors.Wallet{PlayerID: "other", Currency: b.cur}})

	for _, tc := range []struct {
		name string
		w    actors.Write
	}{
		{"stale", actors.Write{PlayerID: b.id, Expected: 2, Events: []wallet.Event{fakeEvent(3, "new", b.cur)}}},
		{"much staler", actors.Write{PlayerID: b.id, Expected: 0, Events: []wallet.Event{fakeEvent(1, "new", b.cur)}}},
		{"ahead", actors.Write{PlayerID: b.id, Expected: 4, Events: []wallet.Event{fakeEvent(5, "new", b.cur)}}},
		{"stale snapshot only", actors.Write{PlayerID: b.id, Expected: 2, Snapshot: &wallet.Snapshot{Currency: "EUR", Version: 2, Balance: "20.00"}}},
		{"stale with a duplicate key", actors.Write{PlayerID: b.id, Expected: 1, Events: []wallet.Event{fakeEvent(2, "d1", b.cur)}}},
		{"no such wallet", actors.Write{PlayerID: "nobody", Expected: 0, Events: []wallet.Event{fakeEvent(1, "new", b.cur)}}},
		{"other wallet's version", actors.Write{PlayerID: "other", Expected: 3, Events: []wallet.Event{fakeEvent(4, "new", b.cur)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Append(ctx, tc.w); !errors.Is(err, actors.ErrFenced) {
				t.Fatalf("append: %v, want ErrFenced", err)
			}
			l := checkLoaded(t, ctx, s, b) // nothing of it written
			if l.Snapshot != nil {
				t.Fatalf("fenced write left a snapshot at %d", l.Snapshot.Version)
			}
		})
	}
	if _, err := s.Load(ctx, "nobody"); !errors.Is(err, actors.ErrNotFound) {
		t.Fatalf("a fenced write to no wallet created one: %v", err)
	}
	// The right version still goes through.
	b.deposit("d4", "1.00")
	mustAppend(t, ctx, s, b.next(false))
	checkLoaded(t, ctx, s, b)
}

func testDuplicateKeys(t *testing.T, s actors.Store) {
	ctx := testCtx(t)
	b := newBuilder(t, "dup", "EUR")
	b.deposit("d1", "10.00")
	b.bet("b1", "r1", "g", "1.00")
	b.rollback("rb1", "late") // tombstone: claims bet key "late"
	mustAppend(t, ctx, s, b.create())
	v := b.stored
	c := b.cur

	bet := func(seq uint64, tx string) wallet.Event {
		return wallet.Event{Seq: seq, TxID: tx, Kind: wallet.KindBet, Amount: wallet.MinorUnits(1, c), BalanceAfter: wallet.MinorUnits(1, c), RoundID: "r9", At: epoch}
	}
	tomb := func(seq uint64, tx, ref string) wallet.Event {
		return wallet.Event{Seq: seq, TxID: tx, Kind: wallet.KindRollback, Amount: wallet.Zero(c), BalanceAfter: wallet.MinorUnits(1, c), Ref: ref, Tombstone: true, At: epoch}
	}
	for _, tc := range []struct {
		name   string
		events []wallet.Event
		keys   []string
	}{
		{"tx_id of a deposit", []wallet.Event{fakeEvent(v+1, "fresh", c), fakeEvent(v+2, "d1", c)}, []string{"d1"}},
		{"tx_id of a bet", []wallet.Event{fakeEvent(v+1, "b1", c)}, []string{"b1"}},
		{"tx_id of a tombstone", []wallet.Event{fakeEvent(v+1, "rb1", c)}, []string{"rb1"}},
		{"bet after its tombstone", []wallet.Event{bet(v+1, "late")}, []string{"late"}},
		{"tombstone of a bet that exists", []wallet.Event{tomb(v+1, "rb2", "b1")}, []string{"b1"}},
		{"two keys", []wallet.Event{fakeEvent(v+1, "d1", c), bet(v+2, "late")}, []string{"d1", "late"}},
		{"within the write", []wallet.Event{fakeEvent(v+1, "twin", c), fakeEvent(v+2, "twin", c)}, []string{"twin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Append(ctx, actors.Write{PlayerID: b.id, Expected: v, Events: tc.events})
			var ke *actors.KeyExistsError
			if !errors.As(err, &ke) {
				t.Fatalf("append: %v, want *KeyExistsError", err)
			}
			for _, k := range tc.keys {
				if !slices.Contains(ke.Keys, k) {
					t.Errorf("keys %v do not name %s", ke.Keys, k)
				}
			}
			for _, k := range ke.Keys {
				if !slices.Contains(tc.keys, k) {
					t.Errorf("keys %v name %s, which is new", ke.Keys, k)
				}
			}
			checkLoaded(t, ctx, s, b)
		})
	}
	// Nothing of the refused writes was kept: their new keys are still free.
	b.deposit("fresh", "1.00")
	mustAppend(t, ctx, s, b.next(false))
	checkLoaded(t, ctx, s, b)
}

func testInvalidWrite(t *testing.T, s actors.Store) {
	ctx := testCtx(t)
	b := newBuilder(t, "invalid", "EUR")
	mustAppend(t, ctx, s, b.create())
	for _, tc := range []struct {
		name string
		w    actors.Write
	}{
		{"seq gap", actors.Write{PlayerID: b.id, Events: []wallet.Event{fakeEvent(2, "a", b.cur)}}},
		{"snapshot at the wrong version", actors.Write{PlayerID: b.id, Events: []wallet.Event{fakeEvent(1, "a", b.cur)}, Snapshot: &wallet.Snapshot{Currency: "EUR", Version: 3, Balance: "1.00"}}},
		{"create at a version", actors.Write{PlayerID: "new", Expected: 2, Create: &actors.Wallet{PlayerID: "new", Currency: b.cur}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Append(ctx, tc.w); err == nil || errors.Is(err, actors.ErrFenced) {
				t.Fatalf("append: %v, want a validation error", err)
			}
			checkLoaded(t, ctx, s, b)
		})
	}
}

// testFailureIsolated: refused writes share batches with good ones (many
// goroutines at once), and never make the good ones fail.
func testFailureIsolated(t *testing.T, s actors.Store) {
	ctx := testCtx(t)
	const good, rounds = 64, 10
	builders := make([]*builder, good)
	for i := range builders {
		builders[i] = newBuilder(t, fmt.Sprintf("iso-%02d", i), "EUR")
		mustAppend(t, ctx, s, builders[i].create())
	}
	bad := newBuilder(t, "iso-bad", "EUR")
	bad.deposit("d1", "5.00")
	mustAppend(t, ctx, s, bad.create())

	start := make(chan struct{})
	errs := make(chan error, good*rounds+2*rounds)
	var wg sync.WaitGroup
	for _, b := range builders {
		// Events are made up front: builders are not safe for concurrent use
		// and t.Fatal must not run off the test goroutine.
		var writes []actors.Write
		for r := range rounds {
			b.deposit(fmt.Sprintf("d%d", r), "1.00")
			writes = append(writes, b.next(false))
		}
		wg.Go(func() {
			<-start
			for _, w := range writes {
				if err := s.Append(ctx, w); err != nil {
					errs <- fmt.Errorf("good wallet %s at %d: %w", w.PlayerID, w.Expected, err)
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			<-start
			for r := range rounds {
				stale := actors.Write{PlayerID: bad.id, Expected: 0, Events: []wallet.Event{fakeEvent(1, fmt.Sprintf("s%d", r), bad.cur)}}
				if err := s.Append(ctx, stale); !errors.Is(err, actors.ErrFenced) {
					errs <- fmt.Errorf("stale write: %v, want ErrFenced", err)
				}
				dup := actors.Write{PlayerID: bad.id, Expected: 1, Events: []wallet.Event{fakeEvent(2, "d1", bad.cur)}}
				var ke *actors.KeyExistsError
				if err := s.Append(ctx, dup); !errors.As(err, &ke) {
					errs <- fmt.Errorf("duplicate write: %v, want *KeyExistsError", err)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, b := range append(builders, bad) {
		checkLoaded(t, ctx, s, b)
	}
}

func testLookup(t *testing.T, s actors.Store) {
	ctx := testCtx(t)
	b := newBuilder(t, "lookup", "EUR")
	b.deposit("d1", "100.00")       // 1
	b.bet("b1", "r1", "g", "10.00") // 2
	b.bet("b2", "r2", "g", "10.00") // 3
	b.win("w1", "r1", "", "5.00")   // 4: settles b1 by round
	mustAppend(t, ctx, s, b.create())
	b.bet("b3", "r1", "g", "10.00")  // 5: r1 again, after its win
	b.win("w2", "r1", "b3", "20.00") // 6: settles b3 by reference
	b.rollback("rb1", "b2")          // 7: refunds b2
	b.rollback("rb2", "ghost")       // 8: tombstone
	b.deposit("d2", "1.00")          // 9
	b.bet("b4", "r4", "g", "1.00")   // 10
	b.win("w4", "r4", "", "0")       // 11: a zero win still settles
	mustAppend(t, ctx, s, b.next(true))

	for _, tc := range []struct {
		name string
		ids  []string
		want []uint64
	}{
		{"bet and the later wins of its round", []string{"b1"}, []uint64{2, 4, 6}},
		{"not the round's wins before the bet", []string{"b3"}, []uint64{5, 6}},
		{"bet and its rollback", []string{"b2"}, []uint64{3, 7}},
		{"tombstone by its ref", []string{"ghost"}, []uint64{8}},
		{"a win is not expanded", []string{"d1", "w1"}, []uint64{1, 4}},
		{"each event once", []string{"b1", "b3", "w2"}, []uint64{2, 4, 5, 6}},
		{"zero win", []string{"b4"}, []uint64{10, 11}},
		{"rollback by tx_id", []string{"rb1"}, []uint64{7}},
		{"unknown id", []string{"nope"}, nil},
		{"no ids", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Lookup(ctx, b.id, tc.ids)
			if err != nil {
				t.Fatalf("lookup %v: %v", tc.ids, err)
			}
			checkEvents(t, fmt.Sprintf("lookup %v", tc.ids), got, bySeq(b.all, tc.want...))
		})
	}

	// What KeyExistsError and Lookup return is what the domain needs: a
	// wallet that knows only the snapshot (its keys left memory) decides as
	// a complete one would. This is the actor's loop in miniature.
	load := func() *wallet.State {
		l := checkLoaded(t, ctx, s, b)
		st, err := wallet.Rebuild(b.cur, l.Snapshot, l.Tail, wallet.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	recall := func(st *wallet.State, ids []string) {
		evs, err := s.Lookup(ctx, b.id, ids)
		if err != nil {
			t.Fatalf("lookup %v: %v", ids, err)
		}
		st.Recall(ids, evs)
	}
	for _, tc := range []struct {
		cmd  wallet.Command
		code wallet.Code
	}{
		{wallet.Command{Kind: wallet.KindWin, TxID: "w9", Ref: "b2", Amount: "1.00"}, wallet.CodeBetRolledBack},
		{wallet.Command{Kind: wallet.KindWin, TxID: "w8", Ref: "b1", Amount: "1.00"}, wallet.CodeBetAlreadySettled},
		{wallet.Command{Kind: wallet.KindBet, TxID: "ghost", RoundID: "r9", Amount: "1.00"}, wallet.CodeBetRolledBack},
		{wallet.Command{Kind: wallet.KindDeposit, TxID: "d1", Amount: "1.00"}, wallet.CodeTxConflict},
	} {
		st := load()
		var err error
		for range 4 {
			var ev *wallet.Event
			_, ev, err = st.Apply(tc.cmd, b.clock.Add(time.Second))
			var need *wallet.NeedLookup
			if errors.As(err, &need) {
				recall(st, need.IDs)
				continue
			}
			if ev == nil {
				break
			}
			err = s.Append(ctx, actors.Write{PlayerID: b.id, Expected: ev.Seq - 1, Events: []wallet.Event{*ev}})
			var ke *actors.KeyExistsError
			if !errors.As(err, &ke) {
				break
			}
			st = load() // the refused event is in memory: start again from the store
			recall(st, ke.Keys)
		}
		if wallet.ErrorCode(err) != tc.code {
			t.Errorf("%s %s of a wallet that forgot: %v, want %s", tc.cmd.Kind, tc.cmd.TxID, err, tc.code)
		}
	}
	checkLoaded(t, ctx, s, b)
}

func testHistory(t *testing.T, s actors.Store) {
	ctx := testCtx(t)
	b := newBuilder(t, "hist", "JPY")
	for i := range 25 {
		b.deposit(fmt.Sprintf("d%02d", i+1), fmt.Sprint(i+1))
		if i%7 == 6 {
			mustAppend(t, ctx, s, b.maybeCreate())
		}
	}
	mustAppend(t, ctx, s, b.maybeCreate())

	for _, tc := range []struct {
		before uint64
		limit  int
		want   []uint64
	}{
		{0, 10, []uint64{25, 24, 23, 22, 21, 20, 19, 18, 17, 16}},
		{16, 10, []uint64{15, 14, 13, 12, 11, 10, 9, 8, 7, 6}},
		{6, 10, []uint64{5, 4, 3, 2, 1}},
		{1, 10, nil},
		{30, 3, []uint64{25, 24, 23}},
		{0, 1, []uint64{25}},
		{0, 0, nil},
	} {
		t.Run(fmt.Sprintf("before %d limit %d", tc.before, tc.limit), func(t *testing.T) {
			got, err := s.History(ctx, b.id, tc.before, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			checkEvents(t, "history", got, bySeq(b.all, tc.want...))
		})
	}
	// Paging until the end visits every event once.
	var all []wallet.Event
	for before := uint64(0); ; {
		page, err := s.History(ctx, b.id, before, 4)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		before = page[len(page)-1].Seq
	}
	checkEvents(t, "paged history", all, reversed(b.all))
}

// maybeCreate is create for the first write, next after.
func (b *builder) maybeCreate() actors.Write {
	if b.stored == 0 && len(b.all) == len(b.pending) {
		return b.create()
	}
	return b.next(false)
}

func testUnknownWallet(t *testing.T, s actors.Store) {
	ctx := testCtx(t)
	if _, err := s.Load(ctx, "ghost-wallet"); !errors.Is(err, actors.ErrNotFound) {
		t.Errorf("load: %v, want ErrNotFound", err)
	}
	if _, err := s.History(ctx, "ghost-wallet", 0, 10); !errors.Is(err, actors.ErrNotFound) {
		t.Errorf("history: %v, want ErrNotFound", err)
	}
	if _, err := s.Lookup(ctx, "ghost-wallet", []string{"x"}); !errors.Is(err, actors.ErrNotFound) {
		t.Errorf("lookup: %v, want ErrNotFound", err)
	}
}

// testConcurrent: 100 wallets, each written by its own goroutine as its
// actor would (one write in flight), all at once; every balance must be exact.
func testConcurrent(t *testing.T, s actors.Store) {
	ctx := testCtx(t)
	const wallets, writes = 100, 20
	builders := make([]*builder, wallets)
	plans := make([][]actors.Write, wallets)
	for i := range builders {
		b := newBuilder(t, fmt.Sprintf("conc-%03d", i), []string{"EUR", "JPY", "KWD"}[i%3])
		builders[i] = b
		b.deposit("seed", "1000")
		plans[i] = append(plans[i], b.create())
		for w := range writes {
			// 1 to 3 events per write, a snapshot now and then.
			for e := range 1 + (i+w)%3 {
				tx := fmt.Sprintf("t%d-%d", w, e)
				switch (w + e) % 4 {
				case 0:
					b.deposit(tx, "3")
				case 1:
					b.bet(tx, "r"+tx, "g", "2")
				case 2:
					b.win(tx, fmt.Sprintf("rt%d-%d", w-1, e), "", "1") // may settle nothing
				default:
					b.withdraw(tx, "1")
				}
			}
			plans[i] = append(plans[i], b.next(w%7 == 6))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, wallets)
	for _, plan := range plans {
		wg.Go(func() {
			for _, w := range plan {
				if err := s.Append(ctx, w); err != nil {
					errs <- fmt.Errorf("%s at %d: %w", w.PlayerID, w.Expected, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, b := range builders {
		checkLoaded(t, ctx, s, b)
	}
}

func testClose(t *testing.T, s actors.Store) {
	ctx := testCtx(t)
	b := newBuilder(t, "closing", "EUR")
	b.deposit("d1", "1.00")
	mustAppend(t, ctx, s, b.create())
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	b.deposit("d2", "1.00")
	if err := s.Append(ctx, b.next(false)); err == nil {
		t.Error("append after close succeeded")
	}
	if _, err := s.Load(ctx, b.id); err == nil {
		t.Error("load after close succeeded")
	}
	if err := s.Ready(ctx); err == nil {
		t.Error("ready after close")
	}
}

// testCloseWhileAppending: Close during a burst of appends returns, and so
// does every Append (committed or refused, never stuck). RunDurability
// checks that the acknowledged ones were really kept.
func testCloseWhileAppending(t *testing.T, s actors.Store) {
	ctx := testCtx(t)
	const n = 200
	var wg sync.WaitGroup
	started := make(chan struct{}, n)
	for i := range n {
		b := newBuilder(t, fmt.Sprintf("cwa-%03d", i), "EUR")
		b.deposit("d1", "1.00")
		w := b.create()
		wg.Go(func() {
			started <- struct{}{}
			_ = s.Append(ctx, w)
		})
	}
	for range n / 2 {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("appends still blocked a minute after Close")
	}
}

// asyncStore is a store whose Append goes through its AppendAsync.
type asyncStore struct {
	actors.Store
	async actors.AsyncAppender
	twice *atomic.Int64 // done calls beyond the first, across all appends
}

func newAsyncStore(t *testing.T, s actors.Store) actors.Store {
	a := asyncStore{Store: s, async: s.(actors.AsyncAppender), twice: new(atomic.Int64)}
	t.Cleanup(func() {
		if n := a.twice.Load(); n > 0 {
			t.Errorf("AppendAsync called done more than once (%d extra calls)", n)
		}
	})
	return a
}

func (a asyncStore) Append(ctx context.Context, w actors.Write) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	ch := make(chan error, 1)
	var calls atomic.Int64
	taken := a.async.AppendAsync(w, deadline, func(err error) {
		if calls.Add(1) > 1 {
			a.twice.Add(1)
			return
		}
		ch <- err
	})
	if !taken {
		return a.Store.Append(ctx, w) // the queue was full
	}
	select {
	case err := <-ch:
		return err
	case <-time.After(2 * time.Minute):
		return errors.New("storetest: AppendAsync never called done")
	}
}

// testPastDeadline: a write whose deadline passed before a batch took it is
// answered with an error and not written.
func testPastDeadline(t *testing.T, s actors.Store) {
	ctx := testCtx(t)
	b := newBuilder(t, "late", "EUR")
	b.deposit("d1", "1.00")
	ch := make(chan error, 1)
	if !s.(actors.AsyncAppender).AppendAsync(b.create(), time.Now().Add(-time.Second), func(err error) { ch <- err }) {
		t.Fatal("an idle store's queue is full")
	}
	if err := <-ch; err == nil {
		t.Fatal("a write past its deadline was acknowledged")
	}
	if _, err := s.Load(ctx, b.id); !errors.Is(err, actors.ErrNotFound) {
		t.Fatalf("a write past its deadline was written: %v", err)
	}
}
