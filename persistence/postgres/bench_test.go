package postgres

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/wallet"
)

// commitStats collects what OnCommit reports.
type commitStats struct {
	mu      sync.Mutex
	batches int
	writes  int
	events  int
	took    []time.Duration
}

func (c *commitStats) hook(writes, events int, took time.Duration, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batches++
	c.writes += writes
	c.events += events
	c.took = append(c.took, took)
}

func (c *commitStats) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batches, c.writes, c.events, c.took = 0, 0, 0, nil
}

// report adds the batch metrics of the run to b.
func (c *commitStats) report(b *testing.B, elapsed time.Duration, events int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
	if c.batches == 0 {
		return
	}
	sort.Slice(c.took, func(i, j int) bool { return c.took[i] < c.took[j] })
	var sum time.Duration
	for _, d := range c.took {
		sum += d
	}
	b.ReportMetric(float64(c.writes)/float64(c.batches), "writes/batch")
	b.ReportMetric(float64(c.events)/float64(c.batches), "events/batch")
	b.ReportMetric(float64(sum.Microseconds())/float64(c.batches)/1000, "commit-ms")
	b.ReportMetric(float64(c.took[len(c.took)*99/100].Microseconds())/1000, "p99-commit-ms")
}

// benchWallet is a wallet a benchmark writes deposits to directly (the
// domain is not what is measured). Owned by one goroutine at a time.
type benchWallet struct {
	id      string
	version uint64
	balance wallet.Amount
}

var eur = wallet.Currency{Code: "EUR", Minor: 2}

// deposits returns n deposit events following w, and advances w.
func (w *benchWallet) deposits(n int, at time.Time) []wallet.Event {
	one := wallet.MinorUnits(100, eur)
	evs := make([]wallet.Event, n)
	for i := range evs {
		w.version++
		w.balance = w.balance.Add(one)
		evs[i] = wallet.Event{Seq: w.version, TxID: fmt.Sprintf("t%d", w.version), Kind: wallet.KindDeposit, Amount: one, BalanceAfter: w.balance, At: at}
	}
	return evs
}

// createWallets creates n wallets with 64 concurrent appenders.
func createWallets(b *testing.B, s *Store, n int) []*benchWallet {
	ws := make([]*benchWallet, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 64 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				w := &benchWallet{id: fmt.Sprintf("p%05d", i), balance: wallet.Zero(eur)}
				ws[i] = w
				if err := s.Append(context.Background(), actors.Write{PlayerID: w.id, Create: &actors.Wallet{PlayerID: w.id, Currency: eur, CreatedAt: time.Now()}}); err != nil {
					failed.Store(err)
				}
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatalf("create: %v", err)
	}
	return ws
}

// BenchmarkAppend measures committed events per second through one store
// (default options: one writer, batches up to 2048).
//
//   - spread: 10,000 wallets, C concurrent appenders, each owning a slice of
//     the wallets and appending one deposit at a time, as C busy actors would.
//   - hot: one wallet, C concurrent callers; one goroutine plays its actor,
//     keeping one write in flight and folding what arrived meanwhile into
//     the next write (sequential writes of that wallet).
func BenchmarkAppend(b *testing.B) {
	for _, tc := range []struct{ appenders, writers int }{{1, 1}, {64, 1}, {1024, 1}, {1024, 2}} {
		b.Run(fmt.Sprintf("spread/wallets=10000/appenders=%d/writers=%d", tc.appenders, tc.writers), func(b *testing.B) {
			var stats commitStats
			s, _ := openTest(b, Options{Writers: tc.writers, OnCommit: stats.hook})
			ws := createWallets(b, s, 10_000)
			b.Run("run", func(b *testing.B) { benchSpread(b, s, &stats, ws, tc.appenders) })
		})
	}
	for _, callers := range []int{1, 64, 1024} {
		b.Run(fmt.Sprintf("hot/wallets=1/callers=%d", callers), func(b *testing.B) {
			var stats commitStats
			s, _ := openTest(b, Options{OnCommit: stats.hook})
			ws := createWallets(b, s, 1)
			b.Run("run", func(b *testing.B) { benchHot(b, s, &stats, ws[0], callers) })
		})
	}
}

func benchSpread(b *testing.B, s *Store, stats *commitStats, ws []*benchWallet, appenders int) {
	stats.reset()
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ResetTimer()
	start := time.Now()
	for g := range appenders {
		// Appender g owns wallets g, g+appenders, ...: one write in flight
		// per wallet, as its actor would keep.
		var own []*benchWallet
		for i := g; i < len(ws); i += appenders {
			own = append(own, ws[i])
		}
		wg.Go(func() {
			for n := 0; left.Add(-1) >= 0; n++ {
				w := own[n%len(own)]
				evs := w.deposits(1, time.Now())
				if err := s.Append(context.Background(), actors.Write{PlayerID: w.id, Expected: w.version - 1, Events: evs}); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatalf("append: %v", err)
	}
	stats.report(b, elapsed, b.N)
}

func benchHot(b *testing.B, s *Store, stats *commitStats, w *benchWallet, callers int) {
	stats.reset()
	type call struct{ done chan error }
	calls := make(chan call, callers)
	actorDone := make(chan struct{})
	// The actor: one write in flight, whatever arrived meanwhile goes into
	// the next one.
	go func() {
		defer close(actorDone)
		var pending []call
		for c := range calls {
			pending = append(pending[:0], c)
		drain:
			for len(pending) < 1024 {
				select {
				case c, ok := <-calls:
					if !ok {
						break drain
					}
					pending = append(pending, c)
				default:
					break drain
				}
			}
			evs := w.deposits(len(pending), time.Now())
			err := s.Append(context.Background(), actors.Write{PlayerID: w.id, Expected: w.version - uint64(len(evs)), Events: evs})
			for _, c := range pending {
				c.done <- err
			}
		}
	}()

	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ResetTimer()
	start := time.Now()
	for range callers {
		wg.Go(func() {
			done := make(chan error, 1)
			for left.Add(-1) >= 0 {
				calls <- call{done}
				if err := <-done; err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(calls)
	<-actorDone
	if err := failed.Load(); err != nil {
		b.Fatalf("append: %v", err)
	}
	stats.report(b, elapsed, b.N)
}
