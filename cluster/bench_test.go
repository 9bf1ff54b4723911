package cluster

// Benchmarks (not timed tests) for docs/scaling.md:
//
//	go test -run '^$' -bench . -benchtime 3s ./cluster/
//
// BenchmarkApply: throughput of bets from many goroutines over 1,000
// wallets, through the local engine (single node) and through a cluster of
// 1 and 3 in-process members (each its own actor system, remoting port and
// automanaged port; calls spread over the members, so with 3 about two in
// three are forwarded). The store is instant (versions only), so what is
// measured is walletd's own cost; cpu-µs/op is the process's CPU per bet
// (all members together). In-process members share this machine's cores:
// 3 members here show the cost of forwarding, not the scale-out of 3
// machines; docs/scaling.md does that arithmetic.
//
// BenchmarkForward: one caller, one request at a time, to a wallet whose
// grain is on the calling member (local) or on another one (remote): the
// difference is the latency a forwarded request adds.

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/internal/config"
	"github.com/walletd/walletd/wallet"
)

// instantStore keeps what activation and fencing need, in memory, and
// costs next to nothing: the benchmarks measure walletd, not a store.
type instantStore struct {
	mu       sync.Mutex
	wallets  map[string]actors.Wallet
	versions map[string]uint64
}

func newInstantStore() *instantStore {
	return &instantStore{wallets: map[string]actors.Wallet{}, versions: map[string]uint64{}}
}

func (s *instantStore) Load(_ context.Context, id string) (actors.Loaded, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.wallets[id]
	if !ok {
		return actors.Loaded{}, actors.ErrNotFound
	}
	if s.versions[id] != 0 {
		return actors.Loaded{}, fmt.Errorf("instant store: %s has events it does not keep (reload after writes is not supported)", id)
	}
	return actors.Loaded{Wallet: w}, nil
}

func (s *instantStore) Append(_ context.Context, w actors.Write) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.Create != nil {
		if _, ok := s.wallets[w.PlayerID]; ok {
			return actors.ErrFenced
		}
		s.wallets[w.PlayerID] = *w.Create
	} else if s.versions[w.PlayerID] != w.Expected {
		return actors.ErrFenced
	}
	s.versions[w.PlayerID] = w.Version()
	return nil
}

func (s *instantStore) Lookup(context.Context, string, []string) ([]wallet.Event, error) {
	return nil, nil
}
func (s *instantStore) History(context.Context, string, uint64, int) ([]wallet.Event, error) {
	return nil, nil
}
func (s *instantStore) Ready(context.Context) error { return nil }
func (s *instantStore) Close() error                { return nil }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

const benchWallets = 1000

func BenchmarkApply(b *testing.B) {
	b.Run("local-engine", func(b *testing.B) {
		e := actors.NewEngine(newInstantStore(), actors.Config{})
		defer e.Close(context.Background())
		benchApply(b, []actors.Wallets{e})
	})
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("cluster-%d", n), func(b *testing.B) {
			ms := benchMembers(b, newInstantStore(), n)
			ws := make([]actors.Wallets, len(ms))
			for i, m := range ms {
				ws[i] = m
			}
			benchApply(b, ws)
		})
	}
}

func benchApply(b *testing.B, ws []actors.Wallets) {
	ctx := context.Background()
	eurc, _ := wallet.LookupCurrency("EUR")
	for i := 0; i < benchWallets; i++ {
		id := "p" + strconv.Itoa(i)
		if _, _, err := ws[i%len(ws)].Open(ctx, id, eurc); err != nil {
			b.Fatal(err)
		}
		if _, err := ws[(i+1)%len(ws)].Apply(ctx, id, wallet.Command{Kind: wallet.KindDeposit, TxID: "seed", Amount: "1000000000"}); err != nil {
			b.Fatal(err)
		}
	}
	var n atomic.Int64
	b.SetParallelism(16) // 32 callers on 2 cores: enough to keep the members busy
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			w := ws[int(i)%len(ws)]
			id := "p" + strconv.Itoa(int(i*7919)%benchWallets)
			if _, err := w.Apply(ctx, id, wallet.Command{Kind: wallet.KindBet, TxID: "b" + strconv.FormatInt(i, 10), RoundID: "r", GameID: "g", Amount: "0.01"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

func BenchmarkForward(b *testing.B) {
	ms := benchMembers(b, newInstantStore(), 2)
	ctx := context.Background()
	eurc, _ := wallet.LookupCurrency("EUR")
	// Find a wallet whose grain is on member 0 and one on member 1.
	ids := map[string]string{}
	for i := 0; len(ids) < 2 && i < 100; i++ {
		id := "f" + strconv.Itoa(i)
		if _, _, err := ms[0].Open(ctx, id, eurc); err != nil {
			b.Fatal(err)
		}
		if _, err := ms[0].Apply(ctx, id, wallet.Command{Kind: wallet.KindDeposit, TxID: "seed", Amount: "1000000000"}); err != nil {
			b.Fatal(err)
		}
		if t := ms[0].target(id); ids[t] == "" {
			ids[t] = id
		}
	}
	for _, target := range []string{"local", "remote"} {
		b.Run(target, func(b *testing.B) {
			id := ids[target]
			if id == "" {
				b.Skip("no wallet landed there")
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := ms[0].Apply(ctx, id, wallet.Command{Kind: wallet.KindBet, TxID: target + strconv.Itoa(i), RoundID: "r", GameID: "g", Amount: "0.01"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchMembers is startMembers for benchmarks.
func benchMembers(b *testing.B, st actors.Store, n int) []*Node {
	if raceEnabled {
		b.Skip("in-process cluster members: not under the race detector (see startMembers)")
	}
	var peers []string
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(b)
		peers = append(peers, fmt.Sprintf("127.0.0.1:%d", ports[i]))
	}
	nodes := make([]*Node, n)
	for i := range nodes {
		node, err := Start(context.Background(), benchConfig(ports[i], peers), st, actors.Config{}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		nodes[i] = node
		b.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			_ = node.Close(ctx)
		})
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, node := range nodes {
		for node.Ready(context.Background()) != nil || node.Members() != n {
			if time.Now().After(deadline) {
				b.Fatal("members not ready")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nodes
}

func benchConfig(port int, peers []string) config.Config {
	return config.Config{ClusterProvider: "automanaged", ClusterName: "bench", ClusterAddr: "127.0.0.1:0",
		ClusterPeerPort: port, ClusterPeers: peers}
}
