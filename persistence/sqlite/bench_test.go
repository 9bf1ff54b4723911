package sqlite

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/wallet"
)

// benchWallets is how many wallets the append benchmarks spread over.
const benchWallets = 10_000

// BenchmarkAppend measures group-commit throughput: appenders goroutines,
// each owning an equal share of the wallets and keeping at most one write
// in flight per wallet (as an actor does), append writes of eventsPerWrite
// deposits made by the wallet domain. One op is one event.
//
// Metrics: events/s; writes/batch, the mean number of writes per commit
// (per fsync); commit-µs/write, the writer's time from BEGIN to the end of
// COMMIT divided by the writes, which is what bounds throughput when the
// writer is saturated; cpu-µs/event, the whole process's CPU time (appenders
// and domain included) per event, which other processes on the machine
// barely disturb.
func BenchmarkAppend(b *testing.B) {
	for _, eventsPerWrite := range []int{1, 4} {
		for _, appenders := range []int{1, 64, 1024} {
			b.Run(fmt.Sprintf("appenders=%d/events=%d", appenders, eventsPerWrite), func(b *testing.B) {
				benchAppend(b, appenders, eventsPerWrite)
			})
		}
	}
}

func benchAppend(b *testing.B, appenders, eventsPerWrite int) {
	var writes, batches, busy atomic.Int64
	s, err := Open(b.TempDir(), Options{OnCommit: func(w, _ int, took time.Duration, err error) {
		if err == nil {
			writes.Add(int64(w))
			batches.Add(1)
			busy.Add(int64(took))
		}
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	eur, _ := wallet.LookupCurrency("EUR")

	// Create the wallets (many at a time, so setup is quick).
	states := make([]*wallet.State, benchWallets)
	var wg sync.WaitGroup
	var setupErr atomic.Value
	sem := make(chan struct{}, 256)
	for i := range states {
		states[i] = wallet.New(eur, wallet.DefaultLimits)
		id := fmt.Sprintf("player-%05d", i)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := s.Append(ctx, actors.Write{PlayerID: id, Create: &actors.Wallet{PlayerID: id, Currency: eur, CreatedAt: time.Now()}}); err != nil {
				setupErr.Store(err)
			}
		})
	}
	wg.Wait()
	if err := setupErr.Load(); err != nil {
		b.Fatal(err)
	}
	writes.Store(0)
	batches.Store(0)
	busy.Store(0)

	var next atomic.Int64 // events handed out so far
	total := int64(b.N)
	errs := make(chan error, appenders)
	b.ResetTimer()
	cpu0 := cpuTime(b)
	start := time.Now()
	for a := range appenders {
		wg.Go(func() {
			// Appender a owns wallets a, a+appenders, a+2×appenders, …
			var mine []int
			for i := a; i < benchWallets; i += appenders {
				mine = append(mine, i)
			}
			for k := 0; ; k++ {
				if next.Add(int64(eventsPerWrite))-int64(eventsPerWrite) >= total {
					return
				}
				i := mine[k%len(mine)]
				st := states[i]
				w := actors.Write{PlayerID: fmt.Sprintf("player-%05d", i), Expected: st.Version()}
				for e := range eventsPerWrite {
					_, ev, err := st.Apply(wallet.Command{Kind: wallet.KindDeposit, TxID: fmt.Sprintf("t%d-%d", k, e), Amount: "1.25"}, time.Now())
					if err != nil {
						errs <- err
						return
					}
					w.Events = append(w.Events, *ev)
				}
				if err := s.Append(ctx, w); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/event")
	if n := batches.Load(); n > 0 {
		b.ReportMetric(float64(writes.Load())/float64(n), "writes/batch")
		b.ReportMetric(float64(busy.Load())/1e3/float64(writes.Load()), "commit-µs/write")
	}
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
