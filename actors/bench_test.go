package actors_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/persistence/sqlite"
	"github.com/walletd/walletd/wallet"
)

// Durable bets per second through wallet actors and the embedded store
// (fsync on every group commit), for one hot wallet and for 10,000 wallets,
// at 50 and 200 concurrent callers:
//
//	go test -run '^$' -bench BenchmarkDurableBets -benchtime 20000x ./actors/
func BenchmarkDurableBets(b *testing.B) {
	for _, wallets := range []int{1, 10_000} {
		for _, callers := range []int{50, 200} {
			b.Run(fmt.Sprintf("wallets=%d/callers=%d", wallets, callers), func(b *testing.B) {
				benchBets(b, wallets, callers)
			})
		}
	}
}

func benchBets(b *testing.B, wallets, callers int) {
	st, err := sqlite.Open(b.TempDir(), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	e := actors.NewEngine(st, actors.Config{})
	defer e.Close(context.Background())
	ctx := context.Background()
	eur, _ := wallet.LookupCurrency("EUR")
	ids := make([]string, wallets)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for i := range ids {
		ids[i] = fmt.Sprintf("player-%d", i)
		wg.Add(1)
		sem <- struct{}{}
		go func(id string) {
			defer wg.Done()
			defer func() { <-sem }()
			if _, _, err := e.Open(ctx, id, eur); err != nil {
				b.Error(err)
			}
			if _, err := e.Apply(ctx, id, wallet.Command{Kind: wallet.KindDeposit, TxID: "seed", Amount: "100000000"}); err != nil {
				b.Error(err)
			}
		}(ids[i])
	}
	wg.Wait()

	var next atomic.Int64
	var lat sync.Mutex
	var latencies []time.Duration
	b.ResetTimer()
	start := time.Now()
	for c := 0; c < callers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					break
				}
				id := ids[int(n)%wallets]
				t0 := time.Now()
				_, err := e.Apply(ctx, id, wallet.Command{Kind: wallet.KindBet, TxID: fmt.Sprintf("bet-%d", n), RoundID: "r", GameID: "g", Amount: "0.01"})
				mine = append(mine, time.Since(t0))
				if err != nil {
					b.Error(err)
					return
				}
			}
			lat.Lock()
			latencies = append(latencies, mine...)
			lat.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "bets/s")
	p50, p99 := percentiles(latencies)
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)*50/100], s[min(len(s)-1, len(s)*99/100)]
}

// Memory per idle, active wallet: activate N wallets (loaded, not yet
// passivated) and divide the heap growth by N.
//
//	go test -run '^$' -bench BenchmarkIdleWalletMemory -benchtime 1x ./actors/
func BenchmarkIdleWalletMemory(b *testing.B) {
	const n = 20_000
	dir := b.TempDir()
	st, err := sqlite.Open(dir, sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	eur, _ := wallet.LookupCurrency("EUR")
	{
		// Create the wallets with one transaction each, then drop the engine
		// so the measured one loads them from the store like after a restart.
		e := actors.NewEngine(st, actors.Config{})
		var wg sync.WaitGroup
		sem := make(chan struct{}, 256)
		for i := 0; i < n; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func(id string) {
				defer wg.Done()
				defer func() { <-sem }()
				_, _, _ = e.Open(ctx, id, eur)
				_, _ = e.Apply(ctx, id, wallet.Command{Kind: wallet.KindDeposit, TxID: "d1", Amount: "10"})
			}(fmt.Sprintf("player-%d", i))
		}
		wg.Wait()
		_ = e.Close(ctx)
	}
	for i := 0; i < b.N; i++ {
		e := actors.NewEngine(st, actors.Config{IdleTimeout: time.Hour})
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for j := 0; j < n; j++ {
			if _, err := e.Get(ctx, fmt.Sprintf("player-%d", j)); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if e.Active() != n {
			b.Fatalf("%d active wallets, want %d", e.Active(), n)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/wallet")
		_ = e.Close(ctx)
	}
}
