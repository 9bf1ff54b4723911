package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/wallet"
)

// RunDurability checks what must survive a restart. open returns a fresh,
// empty store; reopen closes the store it is given and opens the same
// storage again. The suite closes the stores it ends with.
func RunDurability(t *testing.T, open func(t *testing.T) actors.Store, reopen func(t *testing.T, s actors.Store) actors.Store) {
	t.Run("ReopenKeepsEverything", func(t *testing.T) { testReopen(t, open, reopen) })
	t.Run("CloseFlushesQueuedAppends", func(t *testing.T) { testCloseFlushes(t, open, reopen) })
}

func testReopen(t *testing.T, open func(t *testing.T) actors.Store, reopen func(t *testing.T, s actors.Store) actors.Store) {
	ctx := testCtx(t)
	s := open(t)
	var builders []*builder
	for i, code := range []string{"EUR", "JPY", "KWD"} {
		b := newBuilder(t, "durable-"+code, code)
		builders = append(builders, b)
		b.deposit("d1", []string{"12.50", "1000", "1.005"}[i])
		mustAppend(t, ctx, s, b.create())
		b.bet("b1", "r1", "g1", "1")
		b.rollback("rb1", "ghost")
		mustAppend(t, ctx, s, b.next(true))
		b.win("w1", "r1", "b1", "2")
		b.bet("b2", "r2", "g1", "1")
		mustAppend(t, ctx, s, b.next(false))
	}

	s = reopen(t, s)
	t.Cleanup(func() { _ = s.Close() })
	for _, b := range builders {
		l := checkLoaded(t, ctx, s, b)
		if l.Snapshot == nil || l.Snapshot.Version != 3 {
			t.Errorf("%s: snapshot %+v after reopen, want version 3", b.id, l.Snapshot)
		}
		h, err := s.History(ctx, b.id, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		checkEvents(t, "history after reopen", h, reversed(b.all))

		// Keys and versions are still enforced.
		dup := actors.Write{PlayerID: b.id, Expected: b.stored, Events: []wallet.Event{fakeEvent(b.stored+1, "d1", b.cur)}}
		var ke *actors.KeyExistsError
		if err := s.Append(ctx, dup); !errors.As(err, &ke) {
			t.Errorf("%s: duplicate after reopen: %v, want *KeyExistsError", b.id, err)
		}
		late := actors.Write{PlayerID: b.id, Expected: b.stored, Events: []wallet.Event{fakeEvent(b.stored+1, "ghost", b.cur)}}
		late.Events[0].Kind, late.Events[0].RoundID = wallet.KindBet, "r9"
		if err := s.Append(ctx, late); !errors.As(err, &ke) {
			t.Errorf("%s: bet after its tombstone, after reopen: %v, want *KeyExistsError", b.id, err)
		}
		stale := actors.Write{PlayerID: b.id, Expected: b.stored - 1, Events: []wallet.Event{fakeEvent(b.stored, "new", b.cur)}}
		if err := s.Append(ctx, stale); !errors.Is(err, actors.ErrFenced) {
			t.Errorf("%s: stale write after reopen: %v, want ErrFenced", b.id, err)
		}
		// And the wallet goes on where it was.
		b.deposit("d2", "3")
		mustAppend(t, ctx, s, b.next(false))
		checkLoaded(t, ctx, s, b)
	}
}

// testCloseFlushes: appends racing with Close either commit and survive the
// reopen, or fail; an acknowledged write is never lost.
func testCloseFlushes(t *testing.T, open func(t *testing.T) actors.Store, reopen func(t *testing.T, s actors.Store) actors.Store) {
	ctx := testCtx(t)
	first := open(t)
	const n = 300
	builders := make([]*builder, n)
	results := make([]error, n)
	started := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i := range builders {
		b := newBuilder(t, fmt.Sprintf("flush-%03d", i), "EUR")
		builders[i] = b
		b.deposit("d1", "1.00")
		b.deposit("d2", "2.00")
		w := b.create()
		wg.Go(func() {
			started <- struct{}{}
			results[i] = first.Append(ctx, w)
		})
	}
	for range n / 3 {
		<-started
	}
	s := reopen(t, first) // closes while appends are queued and arriving
	t.Cleanup(func() { _ = s.Close() })
	wg.Wait()

	acked := 0
	for i, b := range builders {
		l, err := s.Load(ctx, b.id)
		switch {
		case results[i] == nil:
			acked++
			checkLoaded(t, ctx, s, b)
		case errors.Is(err, actors.ErrNotFound):
			// Refused by the closing store, and not written: fine.
		case err != nil:
			t.Errorf("%s: load after reopen: %v", b.id, err)
		default:
			// Failed, but committed (a lost acknowledgement): allowed, and
			// then it must be whole.
			if len(l.Tail) != 2 {
				t.Errorf("%s: failed append (%v) left %d events", b.id, results[i], len(l.Tail))
			}
		}
	}
	if acked == 0 {
		t.Errorf("no append of %d committed before close", n)
	}
	t.Logf("%d of %d appends racing with close were acknowledged", acked, n)
}
