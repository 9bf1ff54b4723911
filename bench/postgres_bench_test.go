package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/bench/naive"
	"github.com/walletd/walletd/internal/pgtest"
	"github.com/walletd/walletd/persistence/postgres"
	"github.com/walletd/walletd/wallet"
)

// BenchmarkPostgresVsNaive: durable bets/s and latency of walletd on
// Postgres and of the naive one-transaction-per-bet wallet, same workload,
// same database server, one hot wallet and 10,000 wallets, 50 and 200
// concurrent callers. Walletd also reports its mean group-commit batch
// (events per commit) and commit latency.
//
//	go test -run '^$' -bench BenchmarkPostgresVsNaive -benchtime 20000x ./bench/
func BenchmarkPostgresVsNaive(b *testing.B) {
	for _, wallets := range []int{1, 10_000} {
		for _, callers := range []int{50, 200} {
			for _, system := range []string{"walletd", "naive"} {
				b.Run(fmt.Sprintf("wallets=%d/callers=%d/%s", wallets, callers, system), func(b *testing.B) {
					dsn := pgtest.DSN(b)
					var bet func(ctx context.Context, wallet, tx string) error
					var setup func(ctx context.Context, id string) error
					var batches, events atomic.Int64
					var commitNanos atomic.Int64
					if system == "walletd" {
						st, err := postgres.Open(context.Background(), dsn, postgres.Options{Writers: benchWriters, OnCommit: func(writes, n int, took time.Duration, err error) {
							batches.Add(1)
							events.Add(int64(n))
							commitNanos.Add(int64(took))
						}})
						if err != nil {
							b.Fatal(err)
						}
						defer st.Close()
						e := actors.NewEngine(st, actors.Config{})
						defer e.Close(context.Background())
						eur, _ := wallet.LookupCurrency("EUR")
						setup = func(ctx context.Context, id string) error {
							if _, _, err := e.Open(ctx, id, eur); err != nil {
								return err
							}
							_, err := e.Apply(ctx, id, wallet.Command{Kind: wallet.KindDeposit, TxID: "seed", Amount: "100000000"})
							return err
						}
						bet = func(ctx context.Context, id, tx string) error {
							_, err := e.Apply(ctx, id, wallet.Command{Kind: wallet.KindBet, TxID: tx, RoundID: "r", GameID: "g", Amount: "0.01"})
							return err
						}
					} else {
						// The naive design gets as many connections as it can
						// use, up to what a 2-core Postgres sensibly serves.
						w, err := naive.Open(context.Background(), dsn, min(callers, 64))
						if err != nil {
							b.Fatal(err)
						}
						defer w.Close()
						setup = func(ctx context.Context, id string) error { return w.Create(ctx, id, "EUR", "100000000") }
						bet = func(ctx context.Context, id, tx string) error {
							_, err := w.Debit(ctx, id, tx, "bet", "0.01")
							return err
						}
					}
					res := drive(b, wallets, callers, setup, bet)
					b.ReportMetric(res.rate, "bets/s")
					b.ReportMetric(ms(res.p50), "p50-ms")
					b.ReportMetric(ms(res.p99), "p99-ms")
					if n := batches.Load(); n > 0 {
						b.ReportMetric(float64(events.Load())/float64(n), "events/commit")
						b.ReportMetric(ms(time.Duration(commitNanos.Load()/n)), "commit-ms")
					}
				})
			}
		}
	}
}

type driveResult struct {
	rate     float64
	p50, p99 time.Duration
}

// drive creates the wallets, then runs b.N bets from `callers` goroutines
// in a closed loop, spread round-robin over the wallets.
func drive(b *testing.B, wallets, callers int, setup func(context.Context, string) error, bet func(context.Context, string, string) error) driveResult {
	ctx := context.Background()
	ids := make([]string, wallets)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range ids {
		ids[i] = fmt.Sprintf("player-%d", i)
		wg.Add(1)
		sem <- struct{}{}
		go func(id string) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := setup(ctx, id); err != nil {
				b.Error(err)
			}
		}(ids[i])
	}
	wg.Wait()
	var next atomic.Int64
	lat := make([][]time.Duration, callers)
	b.ResetTimer()
	start := time.Now()
	for c := 0; c < callers; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				t0 := time.Now()
				if err := bet(ctx, ids[int(n)%wallets], fmt.Sprintf("bet-%d", n)); err != nil {
					b.Error(err)
					return
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return driveResult{}
	}
	return driveResult{
		rate: float64(len(all)) / elapsed.Seconds(),
		p50:  all[len(all)/2],
		p99:  all[min(len(all)-1, len(all)*99/100)],
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

var benchWriters = 1
