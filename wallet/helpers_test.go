package wallet

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"
)

// t0 is the clock of the tests: a fixed UTC instant, so events, snapshots and
// results compare exactly.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func dep(tx, amount string) Command { return Command{Kind: KindDeposit, TxID: tx, Amount: amount} }
func wd(tx, amount string) Command  { return Command{Kind: KindWithdraw, TxID: tx, Amount: amount} }
func bet(tx, round, amount string) Command {
	return Command{Kind: KindBet, TxID: tx, RoundID: round, GameID: "g1", Amount: amount}
}
func win(tx, amount, round, betTx string) Command {
	return Command{Kind: KindWin, TxID: tx, Amount: amount, RoundID: round, Ref: betTx}
}
func rb(tx, betTx string) Command { return Command{Kind: KindRollback, TxID: tx, Ref: betTx} }

// view is everything observable about a state that a refusal must not change
// and a rebuild must reproduce.
type view struct {
	Balance  string
	Version  uint64
	Snapshot Snapshot
}

func viewOf(s *State) view {
	return view{Balance: s.Balance().String(), Version: s.Version(), Snapshot: s.Snapshot()}
}

func sameView(t testing.TB, what string, got, want *State) {
	t.Helper()
	if g, w := viewOf(got), viewOf(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, g, w)
	}
}

// sumEvents is the balance a journal adds up to: credits minus debits.
func sumEvents(c Currency, evs []Event) Amount {
	sum := Zero(c)
	for _, ev := range evs {
		if ev.Kind.credits() {
			sum = sum.Add(ev.Amount)
		} else {
			sum = sum.Sub(ev.Amount)
		}
	}
	return sum
}

// store is one wallet's journal with the semantics of actors.Store: unique
// tx_ids and bet keys, the latest snapshot, and Lookup.
type store struct {
	c      Currency
	events []Event
	snap   *Snapshot
}

// lookup follows the Store contract: the events whose tx_id or ref is one of
// ids, plus, for each bet among them, the wins of its round after it.
func (st *store) lookup(ids []string) []Event {
	var out []Event
	for _, ev := range st.events {
		if slices.Contains(ids, ev.TxID) || (ev.Ref != "" && slices.Contains(ids, ev.Ref)) {
			out = append(out, ev)
		}
	}
	for _, b := range slices.Clone(out) {
		if b.Kind != KindBet {
			continue
		}
		for _, ev := range st.events {
			if ev.Kind == KindWin && ev.RoundID == b.RoundID && ev.Seq > b.Seq &&
				!slices.ContainsFunc(out, func(o Event) bool { return o.Seq == ev.Seq }) {
				out = append(out, ev)
			}
		}
	}
	return out
}

// taken returns the keys of ev the journal already holds: what makes a store
// refuse the write with KeyExistsError.
func (st *store) taken(ev Event) []string {
	var keys []string
	for _, old := range st.events {
		if old.TxID == ev.TxID {
			keys = append(keys, ev.TxID)
		}
		if k := ev.BetKey(); k != "" && old.BetKey() == k {
			keys = append(keys, k)
		}
	}
	return keys
}

func (st *store) load(l Limits) (*State, error) {
	var tail []Event
	if st.snap == nil {
		tail = st.events
	} else {
		tail = st.events[st.snap.Version:]
	}
	return Rebuild(st.c, st.snap, tail, l)
}

// driver runs a State the way walletd's actor does: a NeedLookup is answered
// by a store lookup and Recall; a write the store refuses because one of its
// keys is taken (a retry of a transaction that left memory) makes it reload
// the wallet from the store, recall the keys and decide again. It snapshots
// every snapEvery events, so reloads start from a snapshot.
type driver struct {
	t         testing.TB
	s         *State
	st        *store
	l         Limits
	snapEvery int

	lookups, reloads int
}

func newDriver(t testing.TB, c Currency, l Limits, snapEvery int) *driver {
	return &driver{t: t, s: New(c, l), st: &store{c: c}, l: l, snapEvery: snapEvery}
}

func (d *driver) apply(cmd Command, now time.Time) (Result, *Event, error) {
	d.t.Helper()
	for range 8 {
		res, ev, err := d.s.Apply(cmd, now)
		var need *NeedLookup
		if errors.As(err, &need) {
			if len(need.IDs) == 0 {
				d.t.Fatalf("%+v: NeedLookup without ids", cmd)
			}
			d.lookups++
			d.s.Recall(need.IDs, d.st.lookup(need.IDs))
			continue
		}
		if ev == nil {
			return res, ev, err
		}
		if keys := d.st.taken(*ev); len(keys) > 0 {
			// The write is refused: memory must go back to what is durable.
			d.reloads++
			s, err := d.st.load(d.l)
			if err != nil {
				d.t.Fatalf("reload: %v", err)
			}
			s.Recall(keys, d.st.lookup(keys))
			d.s = s
			continue
		}
		d.st.events = append(d.st.events, *ev)
		if d.snapEvery > 0 && len(d.st.events)%d.snapEvery == 0 {
			sn := d.s.Snapshot()
			d.st.snap = &sn
		}
		return res, ev, err
	}
	d.t.Fatalf("%+v: no answer after 8 lookups or reloads", cmd)
	return Result{}, nil, nil
}

// resultView and eventView are Result and Event with amounts as text, so
// they compare with == semantics regardless of the decimals' internals.
type resultView struct {
	TxID, Kind, Amount, Balance string
	Version                     uint64
	Duplicate                   bool
	Outcome                     Outcome
	Settled                     []string
	At                          time.Time
}

func resultOf(r Result) resultView {
	return resultView{string(r.TxID), string(r.Kind), r.Amount.String(), r.Balance.String(), r.Version, r.Duplicate, r.Outcome, r.Settled, r.At}
}

type eventView struct {
	Seq                                                uint64
	TxID, Kind, Amount, BalanceAfter, Round, Game, Ref string
	Settles                                            []string
	Tombstone                                          bool
	At                                                 time.Time
}

func eventOf(e Event) eventView {
	return eventView{e.Seq, e.TxID, string(e.Kind), e.Amount.String(), e.BalanceAfter.String(), e.RoundID, e.GameID, e.Ref, e.Settles, e.Tombstone, e.At}
}

// sameAnswer checks that two wallets answered a command alike. Settled of a
// round win is left out: a wallet with limited memory lists only the bets it
// still holds (the others are settled all the same, see betFate).
func sameAnswer(t testing.TB, i int, cmd Command, gr Result, gev *Event, gerr error, wr Result, wev *Event, werr error) {
	t.Helper()
	if ErrorCode(gerr) != ErrorCode(werr) {
		t.Fatalf("step %d %+v: error %v, want %v", i, cmd, gerr, werr)
	}
	g, w := resultOf(gr), resultOf(wr)
	roundWin := cmd.Kind == KindWin && cmd.Ref == ""
	if roundWin {
		g.Settled, w.Settled = nil, nil
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("step %d %+v:\n got  %+v\n want %+v", i, cmd, g, w)
	}
	if (gev == nil) != (wev == nil) {
		t.Fatalf("step %d %+v: event %+v, want %+v", i, cmd, gev, wev)
	}
	if gev != nil {
		g, w := eventOf(*gev), eventOf(*wev)
		if roundWin {
			g.Settles, w.Settles = nil, nil
		}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("step %d %+v: event\n got  %+v\n want %+v", i, cmd, g, w)
		}
	}
}
