package actors_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/internal/pgtest"
	"github.com/walletd/walletd/persistence/postgres"
	"github.com/walletd/walletd/persistence/sqlite"
	"github.com/walletd/walletd/wallet"
)

// The engine over each real store: what the in-memory store cannot prove —
// that the real unique indexes and version fences give the engine its
// exactly-once guarantees.
var stores = []struct {
	name string
	open func(t *testing.T) actors.Store
}{
	{"sqlite", func(t *testing.T) actors.Store {
		st, err := sqlite.Open(t.TempDir(), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
	{"postgres", func(t *testing.T) actors.Store {
		dsn := pgtest.DSN(t)
		st, err := postgres.Open(context.Background(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}},
}

var eur, _ = wallet.LookupCurrency("EUR")

func engine(t *testing.T, st actors.Store, cfg actors.Config) *actors.Engine {
	e := actors.NewEngine(st, cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Close(ctx)
	})
	return e
}

func apply(t *testing.T, e *actors.Engine, id string, cmd wallet.Command) wallet.Result {
	t.Helper()
	res, err := e.Apply(context.Background(), id, cmd)
	if err != nil {
		t.Fatalf("%s %+v: %v", id, cmd, err)
	}
	return res
}

func TestEngineOnRealStores(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Run("concurrency", func(t *testing.T) { testConcurrency(t, s.open(t)) })
			t.Run("keys beyond memory", func(t *testing.T) { testKeysBeyondMemory(t, s.open(t)) })
			t.Run("two engines on one wallet", func(t *testing.T) { testTwoEngines(t, s.open(t)) })
		})
	}
}

// Hundreds of goroutines on one hot wallet and on many wallets, plus one
// tx_id raced from all of them: exact balances, contiguous journals.
func testConcurrency(t *testing.T, st actors.Store) {
	e := engine(t, st, actors.Config{})
	ctx := context.Background()
	const wallets, callers, each = 25, 250, 8
	ids := []string{"hot"}
	for i := 0; i < wallets; i++ {
		ids = append(ids, fmt.Sprintf("w%d", i))
	}
	for _, id := range ids {
		if _, _, err := e.Open(ctx, id, eur); err != nil {
			t.Fatal(err)
		}
		apply(t, e, id, wallet.Command{Kind: wallet.KindDeposit, TxID: "seed", Amount: "1000.00"})
	}
	var wg sync.WaitGroup
	var applied, dups atomic.Int64
	for c := 0; c < callers; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				for _, id := range []string{"hot", ids[1+(c+i)%wallets]} {
					_, err := e.Apply(ctx, id, wallet.Command{Kind: wallet.KindBet, TxID: fmt.Sprintf("b%d-%d", c, i), RoundID: "r", GameID: "g", Amount: "0.01"})
					if err != nil {
						t.Errorf("bet on %s: %v", id, err)
					}
				}
			}
			res, err := e.Apply(ctx, "hot", wallet.Command{Kind: wallet.KindWin, TxID: "jackpot", Amount: "7.77"})
			switch {
			case err != nil:
				t.Errorf("raced win: %v", err)
			case res.Duplicate:
				dups.Add(1)
			default:
				applied.Add(1)
			}
		}(c)
	}
	wg.Wait()
	if applied.Load() != 1 || dups.Load() != callers-1 {
		t.Fatalf("raced tx_id: %d applied, %d duplicates", applied.Load(), dups.Load())
	}
	total := 0
	for _, id := range ids {
		v, err := e.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		bets := int64(v.Version) - 1
		want := wallet.MinorUnits(100000-bets, eur)
		if id == "hot" {
			bets--
			want = wallet.MinorUnits(100000-bets+777, eur)
		} else {
			total += int(bets)
		}
		if v.Balance.Cmp(want) != 0 {
			t.Fatalf("%s: balance %s after %d bets, want %s", id, v.Balance, bets, want)
		}
		checkJournal(t, st, v)
	}
	if total != callers*each {
		t.Fatalf("%d bets on the wallets, want %d", total, callers*each)
	}
}

// checkJournal replays the wallet's whole journal and compares it with v.
func checkJournal(t *testing.T, st actors.Store, v actors.View) {
	t.Helper()
	var evs []wallet.Event
	before := uint64(0)
	for {
		page, err := st.History(context.Background(), v.PlayerID, before, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		evs = append(evs, page...) // newest first, page after page
		before = page[len(page)-1].Seq
	}
	slices.Reverse(evs) // oldest first; Rebuild reports any gap
	state, err := wallet.Rebuild(v.Currency, nil, evs, wallet.DefaultLimits)
	if err != nil {
		t.Fatalf("%s: journal does not replay: %v", v.PlayerID, err)
	}
	if state.Version() != v.Version || state.Balance().Cmp(v.Balance) != 0 {
		t.Fatalf("%s: journal gives v%d %s, wallet says v%d %s", v.PlayerID, state.Version(), state.Balance(), v.Version, v.Balance)
	}
}

// Keys that left memory are answered through the real store's unique
// indexes: a retry is a duplicate, a reuse a conflict, a late bet after an
// old tombstone is refused, a win finds an old bet.
func testKeysBeyondMemory(t *testing.T, st actors.Store) {
	e := engine(t, st, actors.Config{Limits: wallet.Limits{Retention: time.Hour, MaxKeys: 2}})
	ctx := context.Background()
	if _, _, err := e.Open(ctx, "p1", eur); err != nil {
		t.Fatal(err)
	}
	apply(t, e, "p1", wallet.Command{Kind: wallet.KindDeposit, TxID: "d1", Amount: "100.00"})
	apply(t, e, "p1", wallet.Command{Kind: wallet.KindBet, TxID: "old-bet", RoundID: "r1", GameID: "g", Amount: "10.00"})
	apply(t, e, "p1", wallet.Command{Kind: wallet.KindRollback, TxID: "rb1", Ref: "never-seen"})
	for i := 0; i < 5; i++ {
		apply(t, e, "p1", wallet.Command{Kind: wallet.KindDeposit, TxID: fmt.Sprintf("fill%d", i), Amount: "1.00"})
	}
	if res := apply(t, e, "p1", wallet.Command{Kind: wallet.KindDeposit, TxID: "d1", Amount: "100.00"}); !res.Duplicate || res.Version != 1 {
		t.Fatalf("old retry: %+v", res)
	}
	if _, err := e.Apply(ctx, "p1", wallet.Command{Kind: wallet.KindDeposit, TxID: "d1", Amount: "1.00"}); wallet.ErrorCode(err) != wallet.CodeTxConflict {
		t.Fatalf("old reuse: %v", err)
	}
	if _, err := e.Apply(ctx, "p1", wallet.Command{Kind: wallet.KindBet, TxID: "never-seen", RoundID: "r2", GameID: "g", Amount: "1.00"}); wallet.ErrorCode(err) != wallet.CodeBetRolledBack {
		t.Fatalf("late bet after an old tombstone: %v", err)
	}
	apply(t, e, "p1", wallet.Command{Kind: wallet.KindWin, TxID: "w1", Ref: "old-bet", Amount: "20.00"})
	if _, err := e.Apply(ctx, "p1", wallet.Command{Kind: wallet.KindRollback, TxID: "rb2", Ref: "old-bet"}); wallet.ErrorCode(err) != wallet.CodeBetAlreadySettled {
		t.Fatalf("rollback of a settled old bet: %v", err)
	}
	v, _ := e.Get(ctx, "p1")
	if v.Balance.String() != "115.00" || v.Version != 9 {
		t.Fatalf("final: %+v", v)
	}
	checkJournal(t, st, v)
}

// Two engines (as two cluster members would be during a split) activate the
// same wallet on one store and both take bets: the store's fencing keeps the
// journal gapless, every tx_id applied once, the balance equal to its journal.
func testTwoEngines(t *testing.T, st actors.Store) {
	a := engine(t, st, actors.Config{})
	b := engine(t, st, actors.Config{})
	ctx := context.Background()
	if _, _, err := a.Open(ctx, "shared", eur); err != nil {
		t.Fatal(err)
	}
	apply(t, a, "shared", wallet.Command{Kind: wallet.KindDeposit, TxID: "seed", Amount: "1000.00"})
	var wg sync.WaitGroup
	var ok, unavailable atomic.Int64
	for g := 0; g < 40; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				e := a
				if (g+i)%2 == 1 {
					e = b
				}
				// Both engines also see the same tx_ids.
				_, err := e.Apply(ctx, "shared", wallet.Command{Kind: wallet.KindBet, TxID: fmt.Sprintf("b%d-%d", g%20, i), RoundID: "r", GameID: "g", Amount: "1.00"})
				switch wallet.ErrorCode(err) {
				case "":
					ok.Add(1)
				case wallet.CodeUnavailable:
					unavailable.Add(1)
				default:
					t.Errorf("bet: %v", err)
				}
			}
		}(g)
	}
	wg.Wait()
	// A stale activation learns of the other's writes only when its own next
	// write is fenced; reads in between may be stale (see the cluster notes).
	apply(t, a, "shared", wallet.Command{Kind: wallet.KindDeposit, TxID: "sync-a", Amount: "0.01"})
	apply(t, b, "shared", wallet.Command{Kind: wallet.KindDeposit, TxID: "sync-b", Amount: "0.01"})
	vb, err := b.Get(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	checkJournal(t, st, vb)
	// 200 distinct tx_ids (20 × 10), each at most once: 1000 − bets + 0.02.
	bets := int64(vb.Version) - 3
	if bets > 200 || vb.Balance.Cmp(wallet.MinorUnits(100000-bets*100+2, eur)) != 0 {
		t.Fatalf("balance %s at version %d: a tx_id was applied twice or money lost", vb.Balance, vb.Version)
	}
	t.Logf("two engines: %d acknowledged, %d refused UNAVAILABLE, %d distinct bets applied", ok.Load(), unavailable.Load(), bets)
}
