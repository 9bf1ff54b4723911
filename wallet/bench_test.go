package wallet

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// warmWallet returns a wallet with n transactions of history (deposits,
// bets, wins by bet and by round, rollbacks) and plenty of money.
func warmWallet(b *testing.B, n int) (*State, []Event) {
	b.Helper()
	s := New(eur, DefaultLimits)
	var journal []Event
	do := func(cmd Command) {
		_, ev, err := s.Apply(cmd, t0)
		if err != nil {
			b.Fatal(err)
		}
		if ev != nil {
			journal = append(journal, *ev)
		}
	}
	do(dep("seed", "100000000"))
	for i := 0; len(journal) < n; i++ {
		id := strconv.Itoa(i)
		switch i % 5 {
		case 0, 1:
			do(bet("b"+id, "r"+strconv.Itoa(i/5), "1.50"))
		case 2:
			do(win("w"+id, "2.25", "", "b"+strconv.Itoa(i-2)))
		case 3:
			do(rb("x"+id, "b"+strconv.Itoa(i-2)))
		case 4:
			do(win("w"+id, "0", "r"+strconv.Itoa(i/5), ""))
		}
	}
	return s, journal
}

// BenchmarkApplyBet: one new bet (parse, checks, event, journal record) on a
// wallet with 10,000 transactions in memory.
func BenchmarkApplyBet(b *testing.B) {
	s, _ := warmWallet(b, 10_000)
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = "bench-" + strconv.Itoa(i)
	}
	cmd := Command{Kind: KindBet, GameID: "g1", Amount: "0.10"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		cmd.TxID, cmd.RoundID = ids[i], ids[i]
		if _, ev, err := s.Apply(cmd, t0); err != nil || ev == nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyBetOneRound: bets that never settle, all in one round (a
// provider that keys rounds by session): past MaxKeys every bet evicts an
// open bet of that round.
func BenchmarkApplyBetOneRound(b *testing.B) {
	s := New(eur, Limits{Retention: DefaultLimits.Retention, MaxKeys: 20_000})
	if _, _, err := s.Apply(dep("seed", "100000000"), t0); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, 40_000+b.N)
	for i := range ids {
		ids[i] = "bench-" + strconv.Itoa(i)
	}
	cmd := Command{Kind: KindBet, RoundID: "session", GameID: "g1", Amount: "0.01"}
	for _, id := range ids[:40_000] {
		cmd.TxID = id
		if _, _, err := s.Apply(cmd, t0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for _, id := range ids[40_000:] {
		cmd.TxID = id
		if _, ev, err := s.Apply(cmd, t0); err != nil || ev == nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyDuplicate: a retry answered from memory.
func BenchmarkApplyDuplicate(b *testing.B) {
	s, _ := warmWallet(b, 10_000)
	cmd := bet("dup", "r-dup", "0.10")
	if _, _, err := s.Apply(cmd, t0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if res, _, err := s.Apply(cmd, t0); err != nil || !res.Duplicate {
			b.Fatal(err)
		}
	}
}

// BenchmarkReplay: activation of a wallet from a journal of 10,000 events,
// reported per event too.
func BenchmarkReplay(b *testing.B) {
	_, journal := warmWallet(b, 10_000)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := Rebuild(eur, nil, journal, DefaultLimits); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*len(journal)), "ns/event")
}

// BenchmarkApplyManyWallets: a bet and the win that settles it on one of
// 10,000 wallets with some history each, picked at random, as the actors
// of a busy server apply them: each wallet's state is cold in the CPU's
// caches when its turn comes. Reported per transaction.
func BenchmarkApplyManyWallets(b *testing.B) {
	const wallets = 10_000
	states := make([]*State, wallets)
	for i := range states {
		states[i], _ = warmWallet(b, 40)
	}
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = "mw-" + strconv.Itoa(i)
	}
	pick := uint64(1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		pick = pick*6364136223846793005 + 1442695040888963407
		s := states[pick>>33%wallets]
		if _, ev, err := s.Apply(bet(ids[i], ids[i], "0.10"), t0); err != nil || ev == nil {
			b.Fatal(err)
		}
		if _, ev, err := s.Apply(win("w"+ids[i], "0.20", ids[i], ids[i]), t0); err != nil || ev == nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/tx")
}

// BenchmarkRememberedKeyMemory: the heap one wallet holds per transaction it
// remembers for retries (docs/operations.md sizes memory with it), and what
// those keys cost each collection: 50,000 bets, each settled by a win of
// the same round, with 24-byte ids made fresh per command as a decoded
// request's are, until the wallet holds 100,000 keys (the default MaxKeys).
// Reported per key, after a collection.
//
//	go test -run '^$' -bench BenchmarkRememberedKeyMemory -benchtime 1x ./wallet/
func BenchmarkRememberedKeyMemory(b *testing.B) {
	const pairs = 50_000
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s := New(eur, DefaultLimits)
		if _, _, err := s.Apply(dep("seed", "100000000"), t0); err != nil {
			b.Fatal(err)
		}
		for i := range pairs {
			id, round := fmt.Sprintf("b-%022d", i), fmt.Sprintf("r-%022d", i)
			if _, ev, err := s.Apply(bet(id, round, "1.50"), t0); err != nil || ev == nil {
				b.Fatal(err)
			}
			// The win's ids are strings of their own, as they are when
			// they come in another request.
			w := win(fmt.Sprintf("w-%022d", i), "2.25", fmt.Sprintf("r-%022d", i), fmt.Sprintf("b-%022d", i))
			if _, ev, err := s.Apply(w, t0); err != nil || ev == nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(2*pairs), "B/key")
		// What the remembered keys cost each collection: a full cycle with
		// little else alive is mostly marking them.
		start := time.Now()
		runtime.GC()
		b.ReportMetric(float64(time.Since(start).Nanoseconds())/(2*pairs), "gc-ns/key")
		runtime.KeepAlive(s)
	}
}
