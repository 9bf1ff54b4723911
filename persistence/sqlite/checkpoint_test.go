package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/wallet"
)

// TestWALStaysBounded: under continuous group commits the WAL file must not
// grow without bound (checkpoints that never complete would let it).
func TestWALStaysBounded(t *testing.T) {
	dir := t.TempDir()
	const limit = 1 << 20 // small, so a few seconds of writes pass it many times
	// A short checkpoint period: the WAL written within one period is not
	// the checkpointer's to bound, and a fast machine writes this test's
	// whole burst within one default period.
	s, err := Open(dir, Options{WALLimit: limit, checkpointEvery: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	eur, _ := wallet.LookupCurrency("EUR")
	const wallets, rounds = 64, 45
	var wg sync.WaitGroup
	var maxWAL int64
	var mu sync.Mutex
	for w := 0; w < wallets; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			id := fmt.Sprintf("p%d", w)
			st := wallet.New(eur, wallet.DefaultLimits)
			if err := s.Append(ctx, actors.Write{PlayerID: id, Create: &actors.Wallet{PlayerID: id, Currency: eur}}); err != nil {
				t.Error(err)
				return
			}
			for r := 0; r < rounds; r++ {
				wr := actors.Write{PlayerID: id, Expected: st.Version()}
				for i := 0; i < 8; i++ {
					_, ev, err := st.Apply(wallet.Command{Kind: wallet.KindDeposit, TxID: fmt.Sprintf("d%d-%d", r, i), Amount: "1"}, time.Now())
					if err != nil {
						t.Error(err)
						return
					}
					wr.Events = append(wr.Events, *ev)
				}
				if err := s.Append(ctx, wr); err != nil {
					t.Error(err)
					return
				}
				if fi, err := os.Stat(filepath.Join(dir, DBFile+"-wal")); err == nil {
					mu.Lock()
					maxWAL = max(maxWAL, fi.Size())
					mu.Unlock()
				}
			}
		}(w)
	}
	wg.Wait()
	db, _ := os.Stat(filepath.Join(dir, DBFile))
	t.Logf("largest WAL %d MB; database %d MB", maxWAL>>20, db.Size()>>20)
	// Without the writer's RESTART checkpoints this reached ~40 MB.
	if maxWAL > 16*limit {
		t.Fatalf("the WAL grew to %d MB ): checkpoints are not keeping up", maxWAL>>20)
	}
}
