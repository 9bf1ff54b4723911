package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/wallet"
)

// epoch is where the builders' clocks start: sub-millisecond digits on
// purpose, so stores that round times show it.
var epoch = time.Date(2025, 3, 1, 12, 0, 0, 123_456_789, time.UTC)

// builder makes one wallet's journal with the real wallet domain, so every
// event the suite writes is one the domain could have produced, with
// consistent balances. It is not safe for concurrent use.
type builder struct {
	t       testing.TB
	id      string
	cur     wallet.Currency
	st      *wallet.State
	created time.Time
	clock   time.Time
	stored  uint64         // the store's version: Expected of the next write
	pending []wallet.Event // applied, not yet taken by a write
	all     []wallet.Event // every event applied, in seq order
}

func newBuilder(t testing.TB, id, currency string) *builder {
	t.Helper()
	c, ok := wallet.LookupCurrency(currency)
	if !ok {
		t.Fatalf("unknown currency %s", currency)
	}
	return &builder{t: t, id: id, cur: c, st: wallet.New(c, wallet.DefaultLimits), created: epoch, clock: epoch}
}

// apply runs cmd through the domain; it must produce an event.
func (b *builder) apply(cmd wallet.Command) wallet.Event {
	b.t.Helper()
	b.clock = b.clock.Add(1500 * time.Microsecond)
	_, ev, err := b.st.Apply(cmd, b.clock)
	if err != nil {
		b.t.Fatalf("%s: apply %+v: %v", b.id, cmd, err)
	}
	if ev == nil {
		b.t.Fatalf("%s: apply %+v journaled nothing", b.id, cmd)
	}
	b.pending = append(b.pending, *ev)
	b.all = append(b.all, *ev)
	return *ev
}

func (b *builder) deposit(tx, amount string) wallet.Event {
	b.t.Helper()
	return b.apply(wallet.Command{Kind: wallet.KindDeposit, TxID: tx, Amount: amount})
}

func (b *builder) withdraw(tx, amount string) wallet.Event {
	b.t.Helper()
	return b.apply(wallet.Command{Kind: wallet.KindWithdraw, TxID: tx, Amount: amount})
}

func (b *builder) bet(tx, round, game, amount string) wallet.Event {
	b.t.Helper()
	return b.apply(wallet.Command{Kind: wallet.KindBet, TxID: tx, RoundID: round, GameID: game, Amount: amount})
}

// win settles bet ref if set, else every open bet of round.
func (b *builder) win(tx, round, ref, amount string) wallet.Event {
	b.t.Helper()
	return b.apply(wallet.Command{Kind: wallet.KindWin, TxID: tx, RoundID: round, Ref: ref, Amount: amount})
}

func (b *builder) rollback(tx, ref string) wallet.Event {
	b.t.Helper()
	return b.apply(wallet.Command{Kind: wallet.KindRollback, TxID: tx, Ref: ref})
}

// create takes the pending events into the write that creates the wallet.
func (b *builder) create() actors.Write {
	b.t.Helper()
	if b.stored != 0 {
		b.t.Fatalf("%s: create of a wallet already written", b.id)
	}
	w := b.next(false)
	w.Create = &actors.Wallet{PlayerID: b.id, Currency: b.cur, CreatedAt: b.created}
	return w
}

// next takes the pending events into the next write, with a snapshot of
// the state after them if asked. The builder assumes the write will commit.
func (b *builder) next(snapshot bool) actors.Write {
	w := actors.Write{PlayerID: b.id, Expected: b.stored, Events: b.pending}
	if snapshot {
		sn := b.st.Snapshot()
		w.Snapshot = &sn
	}
	b.pending, b.stored = nil, w.Version()
	return w
}

// mustAppend appends w and fails the test unless it commits.
func mustAppend(t testing.TB, ctx context.Context, s actors.Store, w actors.Write) {
	t.Helper()
	if err := s.Append(ctx, w); err != nil {
		t.Fatalf("append to %s at %d (%d events): %v", w.PlayerID, w.Expected, len(w.Events), err)
	}
}

// fakeEvent is a deposit the domain did not make, for writes the store must
// refuse before it looks at balances.
func fakeEvent(seq uint64, tx string, c wallet.Currency) wallet.Event {
	return wallet.Event{
		Seq: seq, TxID: tx, Kind: wallet.KindDeposit,
		Amount: wallet.MinorUnits(100, c), BalanceAfter: wallet.MinorUnits(100*int64(seq), c), At: epoch,
	}
}

// testCtx bounds every store call of a test, so a hung store fails the test
// instead of stalling the run.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// sameTime: stores keep at least milliseconds (Postgres keeps microseconds
// and rounds, SQLite nanoseconds).
func sameTime(a, b time.Time) bool {
	d := a.Sub(b)
	return d < time.Millisecond && d > -time.Millisecond
}

// eventDiff describes how got differs from want, "" when they are equal.
func eventDiff(got, want wallet.Event) string {
	var d []string
	check := func(field string, g, w any) {
		if g != w {
			d = append(d, fmt.Sprintf("%s %v, want %v", field, g, w))
		}
	}
	check("seq", got.Seq, want.Seq)
	check("tx_id", got.TxID, want.TxID)
	check("kind", got.Kind, want.Kind)
	check("amount", got.Amount.String(), want.Amount.String())
	check("balance_after", got.BalanceAfter.String(), want.BalanceAfter.String())
	check("round", got.RoundID, want.RoundID)
	check("game", got.GameID, want.GameID)
	check("ref", got.Ref, want.Ref)
	check("settles", strings.Join(got.Settles, ","), strings.Join(want.Settles, ","))
	check("settles count", len(got.Settles), len(want.Settles))
	check("tombstone", got.Tombstone, want.Tombstone)
	if !sameTime(got.At, want.At) {
		d = append(d, fmt.Sprintf("at %v, want %v", got.At, want.At))
	}
	return strings.Join(d, "; ")
}

// checkEvents fails unless got equals want, event by event.
func checkEvents(t testing.TB, what string, got, want []wallet.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events %v, want %d %v", what, len(got), seqs(got), len(want), seqs(want))
	}
	for i := range want {
		if d := eventDiff(got[i], want[i]); d != "" {
			t.Errorf("%s: event %d (seq %d): %s", what, i, want[i].Seq, d)
		}
	}
}

func seqs(evs []wallet.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Seq
	}
	return out
}

// bySeq picks events of all by their seqs.
func bySeq(all []wallet.Event, want ...uint64) []wallet.Event {
	var out []wallet.Event
	for _, s := range want {
		i := slices.IndexFunc(all, func(ev wallet.Event) bool { return ev.Seq == s })
		out = append(out, all[i])
	}
	return out
}

func reversed(evs []wallet.Event) []wallet.Event {
	out := slices.Clone(evs)
	slices.Reverse(out)
	return out
}

// checkSnapshot fails unless got is the snapshot want.
func checkSnapshot(t testing.TB, got *wallet.Snapshot, want wallet.Snapshot) {
	t.Helper()
	if got == nil {
		t.Fatalf("no snapshot, want one at version %d", want.Version)
	}
	if got.Currency != want.Currency || got.Version != want.Version || got.Balance != want.Balance {
		t.Fatalf("snapshot %s %d %s, want %s %d %s", got.Currency, got.Version, got.Balance, want.Currency, want.Version, want.Balance)
	}
	if len(got.OpenBets) != len(want.OpenBets) {
		t.Fatalf("snapshot has %d open bets, want %d", len(got.OpenBets), len(want.OpenBets))
	}
	for i, w := range want.OpenBets {
		g := got.OpenBets[i]
		if g.TxID != w.TxID || g.Seq != w.Seq || g.Amount != w.Amount || g.Round != w.Round || !sameTime(g.At, w.At) {
			t.Errorf("snapshot open bet %d: %+v, want %+v", i, g, w)
		}
	}
}

// checkLoaded loads b's wallet and fails unless the store holds exactly
// what b wrote: a rebuild from the snapshot and tail equals b's state.
func checkLoaded(t testing.TB, ctx context.Context, s actors.Store, b *builder) actors.Loaded {
	t.Helper()
	l, err := s.Load(ctx, b.id)
	if err != nil {
		t.Fatalf("load %s: %v", b.id, err)
	}
	if l.Wallet.PlayerID != b.id || l.Wallet.Currency != b.cur || !sameTime(l.Wallet.CreatedAt, b.created) {
		t.Errorf("load %s: wallet %+v, want %s in %s created %v", b.id, l.Wallet, b.id, b.cur.Code, b.created)
	}
	from := uint64(0)
	if l.Snapshot != nil {
		from = l.Snapshot.Version
	}
	written := b.all[:b.stored]
	checkEvents(t, "load "+b.id+" tail", l.Tail, written[from:])
	st, err := wallet.Rebuild(b.cur, l.Snapshot, l.Tail, wallet.DefaultLimits)
	if err != nil {
		t.Fatalf("load %s: rebuild: %v", b.id, err)
	}
	if st.Version() != b.stored || (b.stored == b.st.Version() && st.Balance().Cmp(b.st.Balance()) != 0) {
		t.Errorf("load %s: rebuilt version %d balance %s, want %d %s", b.id, st.Version(), st.Balance(), b.stored, b.st.Balance())
	}
	return l
}
