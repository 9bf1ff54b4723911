package actors

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/walletd/walletd/wallet"
)

// BenchmarkEngineApply: the engine's own cost of one bet (actor hop, state
// machine, write hand-off, reply) over an instant in-memory store, from many
// goroutines on many wallets. The store is not what this measures.
//
//	go test -run '^$' -bench BenchmarkEngineApply -benchmem ./actors/
func BenchmarkEngineApply(b *testing.B) {
	st := newMemStore()
	st.noJournal = true
	e := newEngine(b, st, Config{})
	ctx := context.Background()
	const wallets = 1000
	for i := 0; i < wallets; i++ {
		id := "p" + strconv.Itoa(i)
		mustOpen(b, e, id)
		mustApply(b, e, id, deposit("seed", "1000000000"))
	}
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if _, err := e.Apply(ctx, "p"+strconv.Itoa(int(i%wallets)), wallet.Command{Kind: wallet.KindBet, TxID: "b" + strconv.FormatInt(i, 10), RoundID: "r", GameID: "g", Amount: "0.01"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
