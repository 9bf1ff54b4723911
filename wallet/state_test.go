package wallet

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// step is one request of a scenario and the exact answer it must get.
type step struct {
	cmd  Command
	code Code // a refusal with this code; "" = success

	// On success:
	out     Outcome  // "" = OutcomeApplied
	amt     string   // Result.Amount
	bal     string   // balance after the request (Result.Balance)
	ver     uint64   // Result.Version
	settled []string // Result.Settled
}

// runSteps applies steps to a new wallet in currency c, checking every
// answer exactly, that refusals and no-op outcomes change nothing, that
// versions are contiguous, and at the end that the journal rebuilds the
// wallet. It returns the wallet and its journal.
func runSteps(t *testing.T, c Currency, steps []step) (*State, []Event) {
	t.Helper()
	s := New(c, DefaultLimits)
	var journal []Event
	for i, st := range steps {
		now := t0.Add(time.Duration(i) * time.Minute)
		before := viewOf(s)
		res, ev, err := s.Apply(st.cmd, now)
		if st.code != "" {
			if ErrorCode(err) != st.code {
				t.Fatalf("step %d %+v: got %v (%+v), want %s", i, st.cmd, err, res, st.code)
			}
			if ev != nil || !reflect.DeepEqual(resultOf(res), resultOf(Result{})) {
				t.Fatalf("step %d: a refusal returned %+v, %+v", i, res, ev)
			}
			if after := viewOf(s); !reflect.DeepEqual(before, after) {
				t.Fatalf("step %d: refusal changed the wallet\n before %+v\n after  %+v", i, before, after)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d %+v: %v", i, st.cmd, err)
		}
		out := st.out
		if out == "" {
			out = OutcomeApplied
		}
		if res.Outcome != out || res.Duplicate != (out == OutcomeDuplicate) {
			t.Fatalf("step %d %+v: outcome %s duplicate %v, want %s", i, st.cmd, res.Outcome, res.Duplicate, out)
		}
		if res.TxID != st.cmd.TxID || res.Kind != st.cmd.Kind {
			t.Fatalf("step %d: result names %s %s", i, res.Kind, res.TxID)
		}
		if res.Amount.String() != st.amt || res.Balance.String() != st.bal || res.Version != st.ver {
			t.Fatalf("step %d %+v: amount %s balance %s version %d, want %s %s %d", i, st.cmd, res.Amount, res.Balance, res.Version, st.amt, st.bal, st.ver)
		}
		if s.Balance().String() != st.bal {
			t.Fatalf("step %d: wallet balance %s, result says %s", i, s.Balance(), st.bal)
		}
		if !slices.Equal(res.Settled, st.settled) {
			t.Fatalf("step %d %+v: settled %q, want %q", i, st.cmd, res.Settled, st.settled)
		}
		journaled := out == OutcomeApplied || out == OutcomeTombstoned
		if (ev != nil) != journaled {
			t.Fatalf("step %d: outcome %s with event %+v", i, out, ev)
		}
		if !journaled {
			if after := viewOf(s); !reflect.DeepEqual(before, after) {
				t.Fatalf("step %d: %s changed the wallet\n before %+v\n after  %+v", i, out, before, after)
			}
			if out == OutcomeDuplicate && !res.At.Before(now) {
				t.Fatalf("step %d: a duplicate answers with the original time, got %v", i, res.At)
			}
			continue
		}
		if ev.Seq != before.Version+1 || ev.Seq != res.Version || s.Version() != ev.Seq {
			t.Fatalf("step %d: event seq %d, version before %d, result %d, wallet %d", i, ev.Seq, before.Version, res.Version, s.Version())
		}
		if ev.TxID != st.cmd.TxID || ev.Kind != st.cmd.Kind || ev.Amount.String() != st.amt || ev.BalanceAfter.String() != st.bal ||
			!ev.At.Equal(now) || ev.Tombstone != (out == OutcomeTombstoned) || ev.Ref != st.cmd.Ref {
			t.Fatalf("step %d: event %+v does not match the request %+v / result %+v", i, eventOf(*ev), st.cmd, resultOf(res))
		}
		if ev.Kind == KindWin && !slices.Equal(ev.Settles, st.settled) {
			t.Fatalf("step %d: event settles %q, want %q", i, ev.Settles, st.settled)
		}
		journal = append(journal, *ev)
	}
	if sum := sumEvents(c, journal); sum.Cmp(s.Balance()) != 0 {
		t.Fatalf("journal sums to %s, wallet holds %s", sum, s.Balance())
	}
	re, err := Rebuild(c, nil, journal, DefaultLimits)
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	sameView(t, "rebuilt from the journal", re, s)
	return s, journal
}

func TestApplyRules(t *testing.T) {
	tests := []struct {
		name  string
		c     Currency
		steps []step
	}{
		{"deposit and withdraw", eur, []step{
			{cmd: dep("d1", "10"), amt: "10.00", bal: "10.00", ver: 1},
			{cmd: dep("d2", "0"), code: CodeInvalidAmount},
			{cmd: dep("d2", "0.00"), code: CodeInvalidAmount},
			{cmd: wd("w1", "0"), code: CodeInvalidAmount},
			{cmd: wd("w1", "10.01"), code: CodeInsufficientFunds},
			{cmd: wd("w1", "4.5"), amt: "4.50", bal: "5.50", ver: 2},
			{cmd: wd("w2", "5.51"), code: CodeInsufficientFunds},
			{cmd: wd("w2", "5.50"), amt: "5.50", bal: "0.00", ver: 3},
			{cmd: wd("w3", "0.01"), code: CodeInsufficientFunds},
			{cmd: dep("d3", "0.01"), amt: "0.01", bal: "0.01", ver: 4},
		}},
		{"bets", eur, []step{
			{cmd: bet("b0", "r1", "0"), amt: "0.00", bal: "0.00", ver: 1}, // a free round on an empty wallet
			{cmd: bet("b1", "r1", "0.01"), code: CodeInsufficientFunds},
			{cmd: dep("d1", "5"), amt: "5.00", bal: "5.00", ver: 2},
			{cmd: bet("b1", "r1", "5.01"), code: CodeInsufficientFunds},
			{cmd: bet("b1", "r1", "5"), amt: "5.00", bal: "0.00", ver: 3},
			{cmd: bet("b2", "r1", "0.00"), amt: "0.00", bal: "0.00", ver: 4},
			{cmd: bet("b3", "r2", "0.01"), code: CodeInsufficientFunds},
		}},
		{"win naming its bet", eur, []step{
			{cmd: dep("d1", "10"), amt: "10.00", bal: "10.00", ver: 1},
			{cmd: bet("b1", "r1", "2"), amt: "2.00", bal: "8.00", ver: 2},
			{cmd: bet("b2", "r1", "3"), amt: "3.00", bal: "5.00", ver: 3},
			{cmd: win("w1", "7.5", "r1", "b1"), amt: "7.50", bal: "12.50", ver: 4, settled: []string{"b1"}},
			{cmd: win("w2", "1", "r1", "b1"), code: CodeBetAlreadySettled},
			{cmd: win("w2", "1", "", "b1"), code: CodeBetAlreadySettled},
			{cmd: rb("x1", "b1"), code: CodeBetAlreadySettled},
			{cmd: win("w2", "1", "", "nope"), code: CodeBetNotFound},
			{cmd: win("w2", "1", "", "d1"), code: CodeBadRequest},                                       // names a deposit
			{cmd: win("w2", "1", "r9", "b2"), code: CodeBadRequest},                                     // b2 is in r1
			{cmd: win("w2", "0", "", "b2"), amt: "0.00", bal: "12.50", ver: 5, settled: []string{"b2"}}, // a lost bet settles with 0
			{cmd: win("w3", "1", "", "b2"), code: CodeBetAlreadySettled},
			{cmd: rb("x1", "b2"), code: CodeBetAlreadySettled},
			{cmd: win("w2", "0", "", "b2"), out: OutcomeDuplicate, amt: "0.00", bal: "12.50", ver: 5},
		}},
		{"win of a rolled back bet", eur, []step{
			{cmd: dep("d1", "10"), amt: "10.00", bal: "10.00", ver: 1},
			{cmd: bet("b1", "r1", "4"), amt: "4.00", bal: "6.00", ver: 2},
			{cmd: rb("x1", "b1"), amt: "4.00", bal: "10.00", ver: 3, settled: []string{"b1"}},
			{cmd: win("w1", "8", "r1", "b1"), code: CodeBetRolledBack},
			{cmd: win("w1", "8", "", "b1"), code: CodeBetRolledBack},
			{cmd: win("w1", "8", "r1", ""), amt: "8.00", bal: "18.00", ver: 4, settled: nil}, // the round has no open bet left
		}},
		{"round win settles every open bet of its round", eur, []step{
			{cmd: dep("d1", "10"), amt: "10.00", bal: "10.00", ver: 1},
			{cmd: bet("b1", "r1", "1"), amt: "1.00", bal: "9.00", ver: 2},
			{cmd: bet("b2", "r2", "1"), amt: "1.00", bal: "8.00", ver: 3},
			{cmd: bet("b3", "r1", "1"), amt: "1.00", bal: "7.00", ver: 4},
			{cmd: bet("b4", "r1", "1"), amt: "1.00", bal: "6.00", ver: 5},
			{cmd: rb("x3", "b3"), amt: "1.00", bal: "7.00", ver: 6, settled: []string{"b3"}}, // the middle one of r1
			{cmd: win("w1", "5", "r1", ""), amt: "5.00", bal: "12.00", ver: 7, settled: []string{"b1", "b4"}},
			{cmd: win("w2", "1", "", "b1"), code: CodeBetAlreadySettled},
			{cmd: win("w2", "1", "", "b4"), code: CodeBetAlreadySettled},
			{cmd: win("w2", "1", "", "b3"), code: CodeBetRolledBack},
			{cmd: rb("x4", "b4"), code: CodeBetAlreadySettled},
			{cmd: rb("x2", "b2"), amt: "1.00", bal: "13.00", ver: 8, settled: []string{"b2"}}, // r2 was not touched
			{cmd: win("w3", "2", "r1", ""), amt: "2.00", bal: "15.00", ver: 9},                // nothing open: a plain credit
			{cmd: bet("b5", "r1", "1"), amt: "1.00", bal: "14.00", ver: 10},                   // a round goes on after a win
			{cmd: win("w4", "0", "r1", ""), amt: "0.00", bal: "14.00", ver: 11, settled: []string{"b5"}},
		}},
		{"win with neither bet nor round is a plain credit", eur, []step{
			{cmd: bet("b1", "r1", "0"), amt: "0.00", bal: "0.00", ver: 1},
			{cmd: win("jackpot", "1000000", "", ""), amt: "1000000.00", bal: "1000000.00", ver: 2},
			{cmd: win("w0", "0", "", ""), amt: "0.00", bal: "1000000.00", ver: 3},
			{cmd: win("w1", "1", "", "b1"), amt: "1.00", bal: "1000001.00", ver: 4, settled: []string{"b1"}}, // b1 was still open
		}},
		{"rollback", eur, []step{
			{cmd: dep("d1", "10"), amt: "10.00", bal: "10.00", ver: 1},
			{cmd: bet("b1", "r1", "2.5"), amt: "2.50", bal: "7.50", ver: 2},
			{cmd: rb("x1", "b1"), amt: "2.50", bal: "10.00", ver: 3, settled: []string{"b1"}},
			{cmd: rb("x1", "b1"), out: OutcomeDuplicate, amt: "2.50", bal: "10.00", ver: 3},
			{cmd: rb("x2", "b1"), out: OutcomeAlreadyRolledBack, amt: "0.00", bal: "10.00", ver: 3, settled: []string{"b1"}},
			{cmd: rb("x2", "b1"), out: OutcomeAlreadyRolledBack, amt: "0.00", bal: "10.00", ver: 3, settled: []string{"b1"}},
			{cmd: dep("x2", "1"), amt: "1.00", bal: "11.00", ver: 4}, // x2 was never recorded
			{cmd: rb("x3", "d1"), code: CodeBadRequest},              // not a bet
			{cmd: rb("x3", "x1"), code: CodeBadRequest},              // a rollback is not a bet either
			{cmd: bet("b1", "r1", "2.5"), out: OutcomeDuplicate, amt: "2.50", bal: "11.00", ver: 2},
		}},
		{"rollback before the bet leaves a tombstone", eur, []step{
			{cmd: dep("d1", "10"), amt: "10.00", bal: "10.00", ver: 1},
			{cmd: Command{Kind: KindRollback, TxID: "x1", Ref: "b1", RoundID: "r1"}, out: OutcomeTombstoned, amt: "0.00", bal: "10.00", ver: 2},
			{cmd: bet("b1", "r1", "3"), code: CodeBetRolledBack},
			{cmd: bet("b1", "r1", "300"), code: CodeBetRolledBack}, // the tombstone wins over the funds check
			{cmd: win("w1", "3", "", "b1"), code: CodeBetRolledBack},
			{cmd: win("w1", "3", "r1", "b1"), code: CodeBetRolledBack},
			{cmd: rb("x2", "b1"), out: OutcomeAlreadyRolledBack, amt: "0.00", bal: "10.00", ver: 2, settled: []string{"b1"}},
			{cmd: Command{Kind: KindRollback, TxID: "x1", Ref: "b1", RoundID: "r1"}, out: OutcomeDuplicate, amt: "0.00", bal: "10.00", ver: 2},
			{cmd: rb("x1", "b1"), out: OutcomeDuplicate, amt: "0.00", bal: "10.00", ver: 2}, // a rollback's round is not part of its identity
			{cmd: rb("x1", "b2"), code: CodeTxConflict},
			{cmd: bet("b2", "r1", "3"), amt: "3.00", bal: "7.00", ver: 3},
			{cmd: win("w1", "0", "r1", ""), amt: "0.00", bal: "7.00", ver: 4, settled: []string{"b2"}},
		}},
		{"idempotency", eur, []step{
			{cmd: dep("d1", "10"), amt: "10.00", bal: "10.00", ver: 1},
			{cmd: dep("d1", "10"), out: OutcomeDuplicate, amt: "10.00", bal: "10.00", ver: 1},
			{cmd: dep("d1", "10.00"), out: OutcomeDuplicate, amt: "10.00", bal: "10.00", ver: 1},
			{cmd: Command{Kind: KindDeposit, TxID: "d1", Amount: "10.000000", ExtraZeros: true}, out: OutcomeDuplicate, amt: "10.00", bal: "10.00", ver: 1},
			{cmd: Command{Kind: KindDeposit, TxID: "d1", Amount: "10", Currency: "EUR"}, out: OutcomeDuplicate, amt: "10.00", bal: "10.00", ver: 1},
			{cmd: dep("d1", "10.01"), code: CodeTxConflict},
			{cmd: dep("d1", "0"), code: CodeTxConflict},
			{cmd: wd("d1", "10"), code: CodeTxConflict},
			{cmd: bet("d1", "r1", "10"), code: CodeTxConflict},
			{cmd: win("d1", "10", "", ""), code: CodeTxConflict},
			{cmd: Command{Kind: KindDeposit, TxID: "d1", Amount: "10", RoundID: "r1"}, code: CodeTxConflict},
			{cmd: dep("d1", "1.234"), code: CodeInvalidAmount}, // malformed before anything else
			{cmd: bet("b1", "r1", "4"), amt: "4.00", bal: "6.00", ver: 2},
			{cmd: dep("d2", "1"), amt: "1.00", bal: "7.00", ver: 3},
			{cmd: dep("d1", "10"), out: OutcomeDuplicate, amt: "10.00", bal: "7.00", ver: 1}, // original version, current balance
			{cmd: bet("b1", "r1", "4"), out: OutcomeDuplicate, amt: "4.00", bal: "7.00", ver: 2},
			{cmd: Command{Kind: KindBet, TxID: "b1", RoundID: "r1", GameID: "other", Amount: "4"}, out: OutcomeDuplicate, amt: "4.00", bal: "7.00", ver: 2},
			{cmd: bet("b1", "r2", "4"), code: CodeTxConflict},
			{cmd: bet("b1", "r1", "5"), code: CodeTxConflict},
			{cmd: win("w1", "1", "r1", "b1"), amt: "1.00", bal: "8.00", ver: 4, settled: []string{"b1"}},
			{cmd: win("w1", "1", "r1", "b1"), out: OutcomeDuplicate, amt: "1.00", bal: "8.00", ver: 4},
			{cmd: win("w1", "1", "", "b1"), code: CodeTxConflict},
			{cmd: win("w1", "1", "r1", ""), code: CodeTxConflict},
			{cmd: win("w1", "2", "r1", "b1"), code: CodeTxConflict},
			{cmd: rb("w1", "b1"), code: CodeTxConflict},
			{cmd: bet("b2", "r1", "2"), amt: "2.00", bal: "6.00", ver: 5},
			{cmd: rb("x1", "b2"), amt: "2.00", bal: "8.00", ver: 6, settled: []string{"b2"}},
			{cmd: Command{Kind: KindRollback, TxID: "x1", Ref: "b2", Amount: "garbage"}, out: OutcomeDuplicate, amt: "2.00", bal: "8.00", ver: 6},
			{cmd: rb("x1", "b1"), code: CodeTxConflict},
			{cmd: dep("x1", "2"), code: CodeTxConflict},
		}},
		{"a refused request is not recorded", eur, []step{
			{cmd: bet("b1", "r1", "5"), code: CodeInsufficientFunds},
			{cmd: dep("d1", "5"), amt: "5.00", bal: "5.00", ver: 1},
			{cmd: bet("b1", "r1", "5"), amt: "5.00", bal: "0.00", ver: 2}, // the same tx_id, evaluated afresh
			{cmd: wd("w1", "1"), code: CodeInsufficientFunds},
			{cmd: dep("w1", "1"), amt: "1.00", bal: "1.00", ver: 3}, // another kind is no conflict: w1 was never applied
			{cmd: win("w2", "1", "", "b9"), code: CodeBetNotFound},
			{cmd: bet("b9", "r1", "1"), amt: "1.00", bal: "0.00", ver: 4},
			{cmd: win("w2", "1", "", "b9"), amt: "1.00", bal: "1.00", ver: 5, settled: []string{"b9"}},
		}},
		{"currency", eur, []step{
			{cmd: Command{Kind: KindDeposit, TxID: "d1", Amount: "1", Currency: "USD"}, code: CodeCurrencyMismatch},
			{cmd: Command{Kind: KindDeposit, TxID: "d1", Amount: "1", Currency: "eur"}, code: CodeCurrencyMismatch},
			{cmd: Command{Kind: KindDeposit, TxID: "d1", Amount: "1", Currency: "EUR"}, amt: "1.00", bal: "1.00", ver: 1},
			{cmd: Command{Kind: KindBet, TxID: "b1", RoundID: "r1", Amount: "1", Currency: "JPY"}, code: CodeCurrencyMismatch},
			{cmd: Command{Kind: KindDeposit, TxID: "d1", Amount: "1", Currency: "USD"}, code: CodeCurrencyMismatch}, // even for a retry
		}},
		{"ids", eur, []step{
			{cmd: dep("", "1"), code: CodeBadRequest},
			{cmd: dep("a b", "1"), code: CodeBadRequest},
			{cmd: dep("tx/1", "1"), code: CodeBadRequest},
			{cmd: dep(strings.Repeat("t", 129), "1"), code: CodeBadRequest},
			{cmd: dep("é", "1"), code: CodeBadRequest},
			{cmd: Command{Kind: "refund", TxID: "t1", Amount: "1"}, code: CodeBadRequest},
			{cmd: Command{Kind: "", TxID: "t1", Amount: "1"}, code: CodeBadRequest},
			{cmd: bet("b1", "", "1"), code: CodeBadRequest},
			{cmd: bet("b1", "r 1", "1"), code: CodeBadRequest},
			{cmd: Command{Kind: KindBet, TxID: "b1", RoundID: "r1", GameID: "g#1", Amount: "0"}, code: CodeBadRequest},
			{cmd: win("w1", "1", "r 1", ""), code: CodeBadRequest},
			{cmd: win("w1", "1", "", "b 1"), code: CodeBadRequest},
			{cmd: rb("x1", ""), code: CodeBadRequest},
			{cmd: rb("x1", "x1"), code: CodeBadRequest},
			{cmd: win("w1", "1", "", "w1"), code: CodeBadRequest},
			{cmd: Command{Kind: KindDeposit, TxID: "d1", Amount: "1", Ref: "b1"}, code: CodeBadRequest},
			{cmd: Command{Kind: KindBet, TxID: "b1", RoundID: "r1", Amount: "0", Ref: "b0"}, code: CodeBadRequest},
			{cmd: dep("d1", ""), code: CodeInvalidAmount},
			{cmd: dep("d1", "-1"), code: CodeInvalidAmount},
			{cmd: dep("d1", "1e3"), code: CodeInvalidAmount},
			{cmd: dep(strings.Repeat("t", 128), "1"), amt: "1.00", bal: "1.00", ver: 1},
			{cmd: dep("A-z.0_9:@", "1"), amt: "1.00", bal: "2.00", ver: 2},
		}},
		{"exact EUR", eur, []step{
			{cmd: dep("d1", "0.1"), amt: "0.10", bal: "0.10", ver: 1},
			{cmd: dep("d2", "0.2"), amt: "0.20", bal: "0.30", ver: 2},
			{cmd: wd("w1", "0.3"), amt: "0.30", bal: "0.00", ver: 3},
			{cmd: dep("d3", "999999999999999999.99"), amt: "999999999999999999.99", bal: "999999999999999999.99", ver: 4},
			{cmd: dep("d4", "0.01"), amt: "0.01", bal: "1000000000000000000.00", ver: 5},
			{cmd: wd("w2", "999999999999999999.99"), amt: "999999999999999999.99", bal: "0.01", ver: 6},
			{cmd: dep("d5", "1.005"), code: CodeInvalidAmount},
			{cmd: Command{Kind: KindDeposit, TxID: "d5", Amount: "1.005", ExtraZeros: true}, code: CodeInvalidAmount},
			{cmd: Command{Kind: KindDeposit, TxID: "d5", Amount: "63727092.340000", ExtraZeros: true}, amt: "63727092.34", bal: "63727092.35", ver: 7},
		}},
		{"exact JPY", jpy, []step{
			{cmd: dep("d1", "1000"), amt: "1000", bal: "1000", ver: 1},
			{cmd: dep("d2", "1.5"), code: CodeInvalidAmount},
			{cmd: dep("d2", "1.0"), code: CodeInvalidAmount},
			{cmd: Command{Kind: KindDeposit, TxID: "d2", Amount: "1.000000", ExtraZeros: true}, amt: "1", bal: "1001", ver: 2},
			{cmd: bet("b1", "r1", "1001"), amt: "1001", bal: "0", ver: 3},
			{cmd: win("w1", "333", "", "b1"), amt: "333", bal: "333", ver: 4, settled: []string{"b1"}},
		}},
		{"exact KWD", kwd, []step{
			{cmd: dep("d1", "0.001"), amt: "0.001", bal: "0.001", ver: 1},
			{cmd: dep("d2", "1.5"), amt: "1.500", bal: "1.501", ver: 2},
			{cmd: dep("d3", "1.0005"), code: CodeInvalidAmount},
			{cmd: bet("b1", "r1", "1.502"), code: CodeInsufficientFunds},
			{cmd: bet("b1", "r1", "1.501"), amt: "1.501", bal: "0.000", ver: 3},
			{cmd: rb("x1", "b1"), amt: "1.501", bal: "1.501", ver: 4, settled: []string{"b1"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runSteps(t, tt.c, tt.steps) })
	}
}

func TestVersionsAreContiguous(t *testing.T) {
	s := New(eur, DefaultLimits)
	want := uint64(0)
	cmds := []Command{
		dep("d1", "10"), dep("d1", "10"), wd("w1", "100"), bet("b1", "r1", "1"), rb("x1", "b1"), rb("x2", "b1"),
		rb("x3", "b9"), bet("b9", "r1", "1"), win("w1", "1", "r1", ""), win("w2", "1", "", "b1"), dep("d2", "1"),
	}
	for i, cmd := range cmds {
		_, ev, _ := s.Apply(cmd, t0)
		if ev != nil {
			want++
			if ev.Seq != want {
				t.Fatalf("command %d: seq %d, want %d", i, ev.Seq, want)
			}
		}
		if s.Version() != want {
			t.Fatalf("command %d: version %d, want %d", i, s.Version(), want)
		}
	}
	if want != 6 { // d1, b1, x1, x3, w1, d2
		t.Fatalf("%d events, want 6", want)
	}
}

func TestLargeBalanceSurvivesSnapshotAndJournal(t *testing.T) {
	// Each amount has at most 18 integer digits, but a balance may grow past
	// them; what the wallet writes it must be able to read back.
	s := New(jpy, DefaultLimits)
	var journal []Event
	for _, tx := range []string{"d1", "d2", "d3"} {
		_, ev, err := s.Apply(dep(tx, strings.Repeat("9", 18)), t0)
		if err != nil {
			t.Fatal(err)
		}
		journal = append(journal, *ev)
	}
	if got := s.Balance().String(); got != "2999999999999999997" {
		t.Fatalf("balance %s", got)
	}
	for _, ev := range journal {
		if back, err := ParseStored(ev.BalanceAfter.String(), jpy); err != nil || back.Cmp(ev.BalanceAfter) != 0 {
			t.Fatalf("balance_after %s does not read back: %v", ev.BalanceAfter, err)
		}
	}
	sn := s.Snapshot()
	b, err := json.Marshal(sn)
	if err != nil {
		t.Fatal(err)
	}
	var back Snapshot
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	re, err := FromSnapshot(back, DefaultLimits)
	if err != nil {
		t.Fatalf("a snapshot the wallet wrote does not load: %v", err)
	}
	sameView(t, "from snapshot", re, s)
}

func TestBalanceLimit(t *testing.T) {
	s := New(jpy, DefaultLimits)
	max18 := strings.Repeat("9", 18)
	for i := range 2000 {
		_, _, err := s.Apply(dep("d"+string(rune('a'+i%26))+strings.Repeat("x", i/26), max18), t0)
		if err != nil {
			if ErrorCode(err) != CodeInvalidAmount {
				t.Fatalf("deposit %d: %v", i, err)
			}
			// 10^21 would have 22 digits: the balance stops just below.
			if s.Balance().tooLarge() || len(s.Balance().String()) != 21 {
				t.Fatalf("balance %s", s.Balance())
			}
			return
		}
	}
	t.Fatal("the balance grew without bound")
}

func TestReplayRefusesWhatDoesNotFollow(t *testing.T) {
	s := New(eur, DefaultLimits)
	_, ev1, _ := s.Apply(dep("d1", "10"), t0)
	_, ev2, _ := s.Apply(bet("b1", "r1", "4"), t0)
	_, ev3, _ := s.Apply(rb("x1", "b9"), t0) // a tombstone
	good := []Event{*ev1, *ev2, *ev3}

	mod := func(i int, f func(*Event)) []Event {
		evs := slices.Clone(good)
		f(&evs[i])
		return evs
	}
	tests := []struct {
		name string
		evs  []Event
	}{
		{"gap", []Event{*ev1, *ev3}},
		{"starts late", []Event{*ev2, *ev3}},
		{"repeats", []Event{*ev1, *ev1}},
		{"seq 0", mod(0, func(e *Event) { e.Seq = 0 })},
		{"balance disagrees", mod(1, func(e *Event) { e.BalanceAfter = MinorUnits(700, eur) })},
		{"amount disagrees", mod(1, func(e *Event) { e.Amount = MinorUnits(300, eur) })},
		{"kind flipped", mod(1, func(e *Event) { e.Kind = KindDeposit })},
		{"unknown kind", mod(1, func(e *Event) { e.Kind = "refund" })},
		{"negative balance", []Event{{Seq: 1, TxID: "w1", Kind: KindWithdraw, Amount: MinorUnits(100, eur), BalanceAfter: MinorUnits(-100, eur)}}},
		{"negative amount", []Event{{Seq: 1, TxID: "d1", Kind: KindDeposit, Amount: MinorUnits(-100, eur), BalanceAfter: MinorUnits(-100, eur)}}},
		{"another currency's digits", []Event{{Seq: 1, TxID: "d1", Kind: KindDeposit, Amount: MinorUnits(1000, kwd), BalanceAfter: MinorUnits(1000, kwd)}}},
		{"zero value amounts", []Event{{Seq: 1, TxID: "d1", Kind: KindDeposit}}},
		{"tx_id twice", mod(1, func(e *Event) { e.TxID = "d1"; e.Kind = KindDeposit; e.BalanceAfter = MinorUnits(1400, eur) })},
		{"tombstone with money", mod(2, func(e *Event) { e.Amount = MinorUnits(100, eur); e.BalanceAfter = MinorUnits(700, eur) })},
		{"tombstone on a win", mod(2, func(e *Event) { e.Kind = KindWin })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Rebuild(eur, nil, tt.evs, DefaultLimits); err == nil {
				t.Fatal("Rebuild accepted a journal that does not follow")
			}
			// Replay refuses the bad event and leaves the state as it was.
			s := New(eur, DefaultLimits)
			for _, ev := range tt.evs {
				before := viewOf(s)
				if err := s.Replay(ev); err != nil {
					if after := viewOf(s); !reflect.DeepEqual(before, after) {
						t.Fatalf("a refused replay changed the state: %+v → %+v", before, after)
					}
					return
				}
			}
			t.Fatal("no event was refused")
		})
	}
	// A bet after its own tombstone is not a journal a store can hold.
	_, err := Rebuild(eur, nil, []Event{*ev1, {Seq: 2, TxID: "x1", Kind: KindRollback, Ref: "b1", Tombstone: true, Amount: Zero(eur), BalanceAfter: MinorUnits(1000, eur)},
		{Seq: 3, TxID: "b1", Kind: KindBet, RoundID: "r1", Amount: MinorUnits(100, eur), BalanceAfter: MinorUnits(900, eur)}}, DefaultLimits)
	if err == nil {
		t.Fatal("a bet after its tombstone replayed")
	}
	// The good journal replays.
	re, err := Rebuild(eur, nil, good, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	sameView(t, "rebuilt", re, s)
}

// history is a journal with every kind of event, in EUR, and the wallet
// that wrote it.
func history(t *testing.T) (*State, []Event) {
	t.Helper()
	s := New(eur, DefaultLimits)
	var journal []Event
	cmds := []Command{
		dep("d1", "100"), bet("b1", "r1", "10"), bet("b2", "r1", "5"), bet("b3", "r2", "1"),
		win("w1", "30", "", "b1"), rb("x9", "b9"), bet("b4", "r3", "2"), win("w2", "3", "r1", ""),
		rb("x3", "b3"), bet("b5", "r4", "0"), wd("wd1", "50"), bet("b6", "r4", "7"), win("w3", "1", "r9", ""),
		dep("d2", "0.01"), bet("b7", "r5", "0.01"),
	}
	for i, cmd := range cmds {
		_, ev, err := s.Apply(cmd, t0.Add(time.Duration(i)*time.Second))
		if err != nil || ev == nil {
			t.Fatalf("history %d %+v: %v", i, cmd, err)
		}
		journal = append(journal, *ev)
	}
	return s, journal
}

func TestSnapshotPlusTailEqualsFullReplay(t *testing.T) {
	s, journal := history(t)
	if got := s.Snapshot(); got.Balance != "60.00" || got.Version != 15 {
		t.Fatalf("snapshot %+v", got)
	}
	wantOpen := []SnapshotBet{
		{TxID: "b4", Seq: 7, Amount: "2.00", Round: "r3", At: t0.Add(6 * time.Second)},
		{TxID: "b5", Seq: 10, Amount: "0.00", Round: "r4", At: t0.Add(9 * time.Second)},
		{TxID: "b6", Seq: 12, Amount: "7.00", Round: "r4", At: t0.Add(11 * time.Second)},
		{TxID: "b7", Seq: 15, Amount: "0.01", Round: "r5", At: t0.Add(14 * time.Second)},
	}
	if got := s.Snapshot().OpenBets; !reflect.DeepEqual(got, wantOpen) {
		t.Fatalf("open bets\n got  %+v\n want %+v", got, wantOpen)
	}
	full, err := Rebuild(eur, nil, journal, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	sameView(t, "full replay", full, s)

	for k := 0; k <= len(journal); k++ {
		part, err := Rebuild(eur, nil, journal[:k], DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		sn := part.Snapshot()
		// Through JSON, as a store keeps it.
		b, err := json.Marshal(sn)
		if err != nil {
			t.Fatal(err)
		}
		var stored Snapshot
		if err := json.Unmarshal(b, &stored); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(stored, sn) {
			t.Fatalf("snapshot at %d does not survive JSON:\n %+v\n %+v", k, stored, sn)
		}
		re, err := Rebuild(eur, &stored, journal[k:], DefaultLimits)
		if err != nil {
			t.Fatalf("snapshot at %d + tail: %v", k, err)
		}
		sameView(t, "snapshot + tail", re, s)
		if k > 0 && re.Complete() {
			t.Fatalf("a wallet from a snapshot at %d cannot know the keys before it", k)
		}
		// Both answer the open bets alike.
		for _, cmd := range []Command{win("q1", "1", "", "b4"), rb("q2", "b6"), win("q3", "1", "r4", "")} {
			r1, e1, err1 := full.clone(t, journal).Apply(cmd, t0.Add(time.Hour))
			r2, e2, err2 := re.clone(t, journal).Apply(cmd, t0.Add(time.Hour))
			sameAnswer(t, k, cmd, r2, e2, err2, r1, e1, err1)
		}
		// A tail that does not start right after the snapshot is refused.
		if k+1 < len(journal) {
			if _, err := Rebuild(eur, &stored, journal[k+1:], DefaultLimits); err == nil {
				t.Fatalf("snapshot at %d accepted a tail with a gap", k)
			}
		}
	}
}

// clone copies a state through its snapshot and the journal after it (the
// tests need a throw-away copy to try commands on).
func (s *State) clone(t *testing.T, journal []Event) *State {
	t.Helper()
	sn := s.Snapshot()
	c, err := FromSnapshot(sn, s.limits)
	if err != nil {
		t.Fatal(err)
	}
	// Keep the keys the original has: replay the journal into a fresh wallet
	// when the original is complete.
	if s.Complete() {
		if c, err = Rebuild(s.currency, nil, journal[:s.version], s.limits); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestFromSnapshotRefusesBadSnapshots(t *testing.T) {
	ok := Snapshot{Currency: "EUR", Version: 5, Balance: "10.00", OpenBets: []SnapshotBet{{TxID: "b1", Seq: 2, Amount: "1.00", Round: "r1", At: t0}}}
	if _, err := FromSnapshot(ok, DefaultLimits); err != nil {
		t.Fatalf("good snapshot: %v", err)
	}
	bad := map[string]func(*Snapshot){
		"unknown currency":  func(s *Snapshot) { s.Currency = "XXX" },
		"negative balance":  func(s *Snapshot) { s.Balance = "-1.00" },
		"malformed balance": func(s *Snapshot) { s.Balance = "1e3" },
		"too many digits":   func(s *Snapshot) { s.Balance = "1.001" },
		"bet after version": func(s *Snapshot) { s.OpenBets[0].Seq = 6 },
		"bet at seq 0":      func(s *Snapshot) { s.OpenBets[0].Seq = 0 },
		"bet amount":        func(s *Snapshot) { s.OpenBets[0].Amount = "x" },
		"negative bet":      func(s *Snapshot) { s.OpenBets[0].Amount = "-1.00" },
		"bet id":            func(s *Snapshot) { s.OpenBets[0].TxID = "" },
		"bet round":         func(s *Snapshot) { s.OpenBets[0].Round = "" },
		"bet twice":         func(s *Snapshot) { s.OpenBets = append(s.OpenBets, s.OpenBets[0]) },
	}
	for name, f := range bad {
		sn := ok
		sn.OpenBets = slices.Clone(ok.OpenBets)
		f(&sn)
		if _, err := FromSnapshot(sn, DefaultLimits); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := Rebuild(jpy, &ok, nil, DefaultLimits); err == nil {
		t.Error("Rebuild of a JPY wallet accepted a EUR snapshot")
	}
}

func TestEvictionByCountAndAge(t *testing.T) {
	l := Limits{Retention: time.Hour, MaxKeys: 3}
	s := New(eur, l)
	for i, tx := range []string{"d1", "d2", "d3", "d4"} {
		if _, _, err := s.Apply(dep(tx, "1"), t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
		if !s.Complete() {
			t.Fatalf("after %s: keys are forgotten only when a request comes and more than 3 are held", tx)
		}
	}
	if len(s.recs) != 4 {
		t.Fatalf("%d keys", len(s.recs))
	}
	// The next request forgets d1.
	if _, _, err := s.Apply(dep("d5", "1"), t0.Add(4*time.Second)); err != nil {
		t.Fatal(err)
	}
	if s.Complete() {
		t.Fatal("d1 was forgotten: the wallet is not complete")
	}
	if _, ok := s.recs["d1"]; ok || len(s.recs) != 4 {
		t.Fatalf("keys %v", keys(s.recs))
	}
	// A retry of d1 is no longer answered from memory: the wallet applies it
	// and the store refuses the write (its tx_id is taken).
	_, ev, err := s.Apply(dep("d1", "1"), t0.Add(5*time.Second))
	if err != nil || ev == nil || ev.TxID != "d1" {
		t.Fatalf("retry of a forgotten key: %v %+v", err, ev)
	}

	// Age: everything older than the retention goes, however few keys.
	s = New(eur, l)
	s.Apply(dep("d1", "1"), t0)
	s.Apply(dep("d2", "1"), t0.Add(30*time.Minute))
	s.Apply(bet("b1", "r1", "1"), t0.Add(59*time.Minute))
	if !s.Complete() {
		t.Fatal("nothing is an hour old yet")
	}
	s.Apply(dep("d3", "1"), t0.Add(time.Hour+time.Second))
	if s.Complete() || len(s.recs) != 3 || s.recs["d1"] != nil {
		t.Fatalf("after an hour: keys %v", keys(s.recs))
	}
	s.Apply(dep("d4", "1"), t0.Add(3*time.Hour))
	if len(s.recs) != 1 || s.recs["d4"] == nil || len(s.rounds) != 0 {
		t.Fatalf("after three hours: keys %v, rounds %v", keys(s.recs), s.rounds)
	}
	// Tombstones are keys too.
	s = New(eur, l)
	s.Apply(rb("x1", "b1"), t0)
	if len(s.tombs) != 1 {
		t.Fatal("no tombstone")
	}
	s.Apply(dep("d1", "1"), t0.Add(2*time.Hour))
	if len(s.tombs) != 0 || len(s.recs) != 1 {
		t.Fatalf("tombstone kept past retention: %v %v", s.tombs, keys(s.recs))
	}
	// Memory stays bounded however long the wallet lives.
	d := newDriver(t, eur, l, 100)
	for i := range 3000 {
		tx := "t" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + itoa(i)
		var cmd Command
		switch i % 4 {
		case 0:
			cmd = dep(tx, "1")
		case 1:
			cmd = bet(tx, "r"+itoa(i%13), "1")
		case 2:
			cmd = rb(tx, "never"+itoa(i))
		case 3:
			cmd = win(tx, "1", "r"+itoa(i%11), "")
		}
		if _, _, err := d.apply(cmd, t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatalf("%d: %v", i, err)
		}
	}
	s = d.s
	if d.lookups < 700 {
		t.Fatalf("only %d lookups", d.lookups)
	}
	if len(s.recs) > 4 || len(s.tombs) > 4 || len(s.fifo) > 200 || len(s.rounds) > 4 {
		t.Fatalf("memory grows: %d recs, %d tombs, %d fifo, %d rounds", len(s.recs), len(s.tombs), len(s.fifo), len(s.rounds))
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestNeedLookupAndRecall is the walk-through: a win naming a bet that left
// memory asks for a lookup, and after Recall it gets the complete wallet's answer.
func TestNeedLookupAndRecall(t *testing.T) {
	l := Limits{Retention: time.Hour, MaxKeys: 3}
	limited, complete := New(eur, l), New(eur, DefaultLimits)
	st := &store{c: eur}
	apply := func(cmd Command, now time.Time) {
		t.Helper()
		_, ev, err := complete.Apply(cmd, now)
		if err != nil {
			t.Fatal(err)
		}
		_, ev2, err := limited.Apply(cmd, now)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(eventOf(*ev), eventOf(*ev2)) {
			t.Fatalf("events differ: %+v %+v", eventOf(*ev), eventOf(*ev2))
		}
		st.events = append(st.events, *ev)
	}
	apply(dep("d1", "100"), t0)
	apply(bet("b1", "r1", "10"), t0)
	apply(bet("b2", "r2", "5"), t0)
	apply(win("w2", "8", "", "b2"), t0)
	for _, tx := range []string{"d2", "d3", "d4"} {
		apply(dep(tx, "1"), t0.Add(time.Minute))
	}

	cmd := win("w1", "25", "r1", "b1")
	now := t0.Add(2 * time.Minute)
	wantRes, wantEv, wantErr := complete.Apply(cmd, now)
	if wantErr != nil || wantRes.Balance.String() != "121.00" || !slices.Equal(wantRes.Settled, []string{"b1"}) {
		t.Fatalf("complete wallet: %+v %v", wantRes, wantErr)
	}
	_, ev, err := limited.Apply(cmd, now)
	var need *NeedLookup
	if !errors.As(err, &need) || ev != nil {
		t.Fatalf("limited wallet: %v %+v, want NeedLookup", err, ev)
	}
	if !slices.Equal(need.IDs, []string{"b1", "w1"}) {
		t.Fatalf("lookup of %q, want b1 and the request's own tx_id", need.IDs)
	}
	if ErrorCode(err) != CodeInternal || IsBusiness(err) {
		t.Fatal("a NeedLookup is not an answer")
	}
	if limited.Version() != 7 || limited.Balance().String() != "96.00" {
		t.Fatal("a NeedLookup changed the wallet")
	}
	limited.Recall(need.IDs, st.lookup(need.IDs))
	res, ev, err := limited.Apply(cmd, now)
	sameAnswer(t, 0, cmd, res, ev, err, wantRes, wantEv, wantErr)
	st.events = append(st.events, *ev)

	// ask answers a command on both wallets, the limited one with as many
	// lookups as it needs, and returns how many it needed.
	ask := func(cmd Command, now time.Time, code Code) int {
		t.Helper()
		wr, wev, werr := complete.Apply(cmd, now)
		n := 0
		for {
			gr, gev, gerr := limited.Apply(cmd, now)
			if errors.As(gerr, &need) {
				if n++; n > 2 {
					t.Fatalf("%+v: lookups without end", cmd)
				}
				limited.Recall(need.IDs, st.lookup(need.IDs))
				continue
			}
			sameAnswer(t, 0, cmd, gr, gev, gerr, wr, wev, werr)
			if ErrorCode(gerr) != code {
				t.Fatalf("%+v: %v, want %s", cmd, gerr, code)
			}
			if gev != nil {
				st.events = append(st.events, *gev)
			}
			return n
		}
	}
	// The bet it settled is settled for good: a second win is refused, by
	// both (the limited wallet checks that w3 is not an old tx_id).
	if n := ask(win("w3", "25", "", "b1"), t0.Add(3*time.Minute), CodeBetAlreadySettled); n != 1 {
		t.Fatalf("%d lookups", n)
	}
	// A win naming b2, settled before it left memory, is refused after a lookup.
	if n := ask(win("w4", "1", "", "b2"), t0.Add(4*time.Minute), CodeBetAlreadySettled); n != 1 {
		t.Fatalf("%d lookups", n)
	}
	// Asked again, it needs no second lookup: the answer is in memory now.
	if n := ask(win("w4", "1", "", "b2"), t0.Add(4*time.Minute), CodeBetAlreadySettled); n != 0 {
		t.Fatalf("%d lookups", n)
	}
	// A bet the store has never seen: BET_NOT_FOUND after the lookup.
	if n := ask(win("w5", "1", "", "zz"), t0.Add(5*time.Minute), CodeBetNotFound); n != 1 {
		t.Fatalf("%d lookups", n)
	}
	// A forgotten win retried: a duplicate with its original version.
	for _, tx := range []string{"d5", "d6", "d7", "d8"} {
		ask(dep(tx, "1"), t0.Add(6*time.Minute), "")
	}
	if _, ok := limited.recs["w1"]; ok {
		t.Fatal("w1 is still in memory")
	}
	if n := ask(win("w1", "25", "r1", "b1"), t0.Add(7*time.Minute), ""); n != 1 {
		t.Fatalf("%d lookups", n)
	}
}

// TestLimitedWalletAnswersLikeCompleteWallet runs scenarios through a wallet
// that remembers 3 keys for an hour (driven like the actor drives it) and a
// complete one; every answer must be the same.
func TestLimitedWalletAnswersLikeCompleteWallet(t *testing.T) {
	pad := []Command{dep("p1", "1"), dep("p2", "1"), dep("p3", "1"), dep("p4", "1")}
	seq := func(parts ...[]Command) []Command { return slices.Concat(parts...) }
	tests := []struct {
		name string
		cmds []Command
	}{
		{"win of a forgotten open bet", seq([]Command{dep("d1", "50"), bet("b1", "r1", "5")}, pad, []Command{win("w1", "9", "", "b1")})},
		{"second win of a forgotten bet", seq([]Command{dep("d1", "50"), bet("b1", "r1", "5"), win("w1", "9", "", "b1")}, pad, []Command{win("w2", "9", "", "b1"), rb("x1", "b1")})},
		{"win after a forgotten rollback", seq([]Command{dep("d1", "50"), bet("b1", "r1", "5"), rb("x1", "b1")}, pad, []Command{win("w1", "9", "", "b1"), rb("x2", "b1")})},
		{"bet after a forgotten tombstone", seq([]Command{dep("d1", "50"), rb("x1", "b1")}, pad, []Command{bet("b1", "r1", "5"), win("w1", "9", "", "b1"), rb("x2", "b1")})},
		{"bet after a forgotten tombstone, without funds", seq([]Command{rb("x1", "b1")}, pad, []Command{bet("b1", "r1", "500"), bet("b1", "r1", "1")})},
		{"rollback of a forgotten unknown bet", seq([]Command{dep("d1", "50")}, pad, []Command{rb("x1", "b1"), bet("b1", "r1", "1"), rb("x1", "b1")})},
		{"round win after the bet was forgotten", seq([]Command{dep("d1", "50"), bet("b1", "r1", "5")}, pad, []Command{win("w1", "9", "r1", ""), win("w2", "9", "", "b1"), rb("x1", "b1")})},
		{"recalled open bet, then its round wins", seq([]Command{dep("d1", "50"), bet("b1", "r1", "5"), bet("b0", "r1", "1")}, pad,
			[]Command{win("w1", "9", "r2", "b1"), win("w2", "9", "r1", ""), win("w3", "1", "", "b1"), rb("x1", "b1"), win("w4", "1", "", "b0")})},
		{"retry of a forgotten deposit", seq([]Command{dep("d1", "50")}, pad, []Command{dep("d1", "50"), dep("d1", "51"), wd("d1", "50")})},
		{"retry of a forgotten withdraw without funds", seq([]Command{dep("d1", "50"), wd("w1", "50")}, pad, []Command{wd("w1", "50"), wd("w1", "50")})},
		{"retry of a forgotten bet without funds", seq([]Command{dep("d1", "5"), bet("b1", "r1", "5")}, pad, []Command{wd("w", "4"), bet("b1", "r1", "5"), bet("b1", "r2", "5")})},
		{"retry of a forgotten win", seq([]Command{dep("d1", "50"), bet("b1", "r1", "5"), win("w1", "9", "", "b1")}, pad, []Command{win("w1", "9", "", "b1"), win("w1", "8", "", "b1")})},
		{"retry of a forgotten rollback", seq([]Command{dep("d1", "50"), bet("b1", "r1", "5"), rb("x1", "b1")}, pad, []Command{rb("x1", "b1"), rb("x2", "b1"), rb("x1", "b2")})},
		{"retry of a forgotten tombstone", seq([]Command{rb("x1", "b1")}, pad, []Command{rb("x1", "b1"), rb("x2", "b1"), bet("b1", "r", "0")})},
		{"retry of a rollback whose bet was recalled", seq([]Command{dep("d1", "50"), bet("b1", "r1", "5")}, pad, []Command{rb("x1", "b1")}, pad, []Command{rb("x1", "b1"), win("w1", "1", "", "b1"), rb("x1", "b1")})},
		{"tx_id of a forgotten deposit reused for a zero deposit", seq([]Command{dep("d1", "50")}, pad, []Command{dep("d1", "0"), wd("d1", "0")})},
		// Found by FuzzApply (testdata/fuzz/FuzzApply/crash-*):
		{"win naming a bet whose tombstone was made after a lookup", seq([]Command{dep("d1", "50")}, pad, []Command{rb("x1", "b1")}, pad, []Command{win("w1", "1", "", "b1"), bet("b1", "r1", "1")})},
		{"refused bet whose tombstone was made after a lookup", seq([]Command{dep("d1", "1")}, pad, []Command{rb("x1", "b1")}, pad, []Command{bet("b1", "r1", "500"), bet("b1", "r1", "1")})},
		{"tombstoned id reused by a deposit", seq([]Command{rb("x1", "b1"), wd("b1", "0"), dep("b1", "1")}, pad, []Command{rb("x2", "b1"), win("w1", "1", "", "b1"), bet("b1", "r1", "1")})},
		{"bet named by its round win then by a rollback", seq([]Command{dep("d1", "50"), bet("b1", "r1", "5"), bet("b2", "r1", "5")}, pad, []Command{rb("x2", "b2")}, pad, []Command{win("w1", "1", "r1", ""), rb("x1", "b1"), win("w2", "1", "", "b2")})},
	}
	for _, tt := range tests {
		for _, snapEvery := range []int{0, 1, 2, 5} {
			t.Run(tt.name+"/snap"+itoa(snapEvery), func(t *testing.T) {
				d := newDriver(t, eur, Limits{Retention: time.Hour, MaxKeys: 3}, snapEvery)
				c := New(eur, DefaultLimits)
				var cj []Event
				for i, cmd := range tt.cmds {
					now := t0.Add(time.Duration(i) * time.Minute)
					wr, wev, werr := c.Apply(cmd, now)
					gr, gev, gerr := d.apply(cmd, now)
					sameAnswer(t, i, cmd, gr, gev, gerr, wr, wev, werr)
					if wev != nil {
						cj = append(cj, *wev)
					}
				}
				if d.lookups+d.reloads == 0 {
					t.Fatal("the scenario never reached the store: it tests nothing")
				}
				// Both journals rebuild the same wallet, however their round
				// wins listed the bets they settled.
				a, err := Rebuild(eur, nil, d.st.events, DefaultLimits)
				if err != nil {
					t.Fatal(err)
				}
				b, err := Rebuild(eur, nil, cj, DefaultLimits)
				if err != nil {
					t.Fatal(err)
				}
				sameView(t, "journal of the limited wallet", a, b)
				sameView(t, "complete wallet", b, c)
			})
		}
	}
}

func TestRecallIsBounded(t *testing.T) {
	d := newDriver(t, eur, Limits{Retention: time.Hour, MaxKeys: 1}, 0)
	for i := range 1200 {
		if _, _, err := d.apply(bet("b"+itoa(i), "r"+itoa(i), "0"), t0); err != nil {
			t.Fatal(err)
		}
		if _, _, err := d.apply(rb("x"+itoa(i), "t"+itoa(i)), t0); err != nil { // tombstones
			t.Fatal(err)
		}
	}
	s, st := d.s, d.st
	for i := range 1200 {
		ids := []string{"b" + itoa(i), "t" + itoa(i), "nope" + itoa(i)}
		s.Recall(ids, st.lookup(ids))
	}
	if len(s.recs) > 2*maxRecalled || len(s.tombs) > 2*maxRecalled || len(s.absent) > 2*maxRecalled || len(s.noTx) > 2*maxRecalled || len(s.rounds) > 2*maxRecalled {
		t.Fatalf("recall grows without bound: %d recs, %d tombs, %d absent, %d noTx, %d rounds", len(s.recs), len(s.tombs), len(s.absent), len(s.noTx), len(s.rounds))
	}
	// What was recalled last still answers.
	if _, _, err := s.Apply(bet("b1199", "r1199", "0"), t0); err != nil {
		t.Fatalf("recalled bet: %v", err)
	}
	if _, _, err := s.Apply(bet("t1199", "r", "0"), t0); ErrorCode(err) != CodeBetRolledBack {
		t.Fatalf("recalled tombstone: %v", err)
	}
}

func TestEventBetKey(t *testing.T) {
	for _, tt := range []struct {
		ev   Event
		want string
	}{
		{Event{Kind: KindBet, TxID: "b1"}, "b1"},
		{Event{Kind: KindRollback, TxID: "x1", Ref: "b1", Tombstone: true}, "b1"},
		{Event{Kind: KindRollback, TxID: "x1", Ref: "b1"}, ""},
		{Event{Kind: KindWin, TxID: "w1", Ref: "b1"}, ""},
		{Event{Kind: KindDeposit, TxID: "d1"}, ""},
	} {
		if got := tt.ev.BetKey(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.ev, got, tt.want)
		}
	}
}

func TestNewDefaultsAndAccessors(t *testing.T) {
	s := New(kwd, Limits{})
	if s.limits != DefaultLimits || s.Currency() != kwd || s.Balance().String() != "0.000" || s.Version() != 0 || !s.Complete() {
		t.Fatalf("new wallet: %+v", s)
	}
	if sn := s.Snapshot(); !reflect.DeepEqual(sn, Snapshot{Currency: "KWD", Version: 0, Balance: "0.000"}) {
		t.Fatalf("empty snapshot %+v", sn)
	}
	for _, k := range []Kind{KindDeposit, KindWithdraw, KindBet, KindWin, KindRollback} {
		if !k.Valid() {
			t.Errorf("%s invalid", k)
		}
	}
	if Kind("Deposit").Valid() || Kind("").Valid() {
		t.Error("unknown kinds are valid")
	}
}

// Every successful answer names the wallet's currency (adapters format
// amounts with it), including a duplicate and an answer that changes nothing.
func TestResultCarriesCurrency(t *testing.T) {
	kwd, _ := LookupCurrency("KWD")
	s := New(kwd, DefaultLimits)
	now := time.Now()
	for _, cmd := range []Command{
		{Kind: KindDeposit, TxID: "d1", Amount: "1.000"},
		{Kind: KindDeposit, TxID: "d1", Amount: "1.000"}, // duplicate
		{Kind: KindRollback, TxID: "r1", Ref: "b9"},      // tombstone
		{Kind: KindRollback, TxID: "r2", Ref: "b9"},      // changes nothing
	} {
		res, _, err := s.Apply(cmd, now)
		if err != nil || res.Currency != kwd {
			t.Fatalf("%+v: currency %+v, err %v", cmd, res.Currency, err)
		}
	}
	if res, _, err := s.Apply(Command{Kind: KindWithdraw, TxID: "w1", Amount: "5"}, now); err == nil || res.Currency != (Currency{}) {
		t.Fatalf("a refusal: %+v %v", res, err)
	}
}

// A retry is answered with what the wallet remembers in its compact record:
// the original kind, amount, version and time (to the nanosecond, in UTC,
// whatever location the clock gave), and a record of a kind the store
// should never hold matches no command instead of panicking.
func TestRetryAnswersFromCompactRecord(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	for _, tc := range []struct {
		name string
		at   time.Time
	}{
		{"utc", t0},
		{"nanoseconds", t0.Add(123456789 * time.Nanosecond)},
		{"other location", t0.In(berlin)},
		{"zero time", time.Time{}},
		{"before 1970", time.Date(1969, 7, 20, 20, 17, 40, 0, time.UTC)},
		{"year 2300", time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(eur, DefaultLimits)
			if _, _, err := s.Apply(dep("d1", "10.00"), tc.at); err != nil {
				t.Fatal(err)
			}
			first, _, err := s.Apply(bet("b1", "r1", "2.50"), tc.at)
			if err != nil {
				t.Fatal(err)
			}
			again, ev, err := s.Apply(bet("b1", "r1", "2.50"), tc.at.Add(time.Hour))
			if err != nil || ev != nil || !again.Duplicate {
				t.Fatalf("retry: %+v %v %v", again, ev, err)
			}
			if again.Kind != KindBet || again.Amount.String() != "2.50" || again.Version != first.Version {
				t.Fatalf("retry answered %+v, first %+v", again, first)
			}
			if tc.at.Year() > 2262 {
				return // beyond int64 nanoseconds the time saturates; the key is kept
			}
			if !again.At.Equal(first.At) {
				t.Fatalf("retry answered at %v, first at %v", again.At, first.At)
			}
			if !tc.at.IsZero() && again.At.Location() != time.UTC {
				t.Fatalf("retry's time in %v, want UTC", again.At.Location())
			}
			if _, _, err := s.Apply(win("b1", "2.50", "r1", ""), tc.at); ErrorCode(err) != CodeTxConflict {
				t.Fatalf("the bet's tx_id as a win: %v, want TX_CONFLICT", err)
			}
		})
	}

	// A journal event of no known kind, as only a damaged store could hand
	// Recall: its tx_id answers TX_CONFLICT, nothing is applied.
	s := New(eur, Limits{MaxKeys: 1})
	for _, c := range []Command{dep("d1", "10.00"), dep("d2", "1.00"), dep("d3", "1.00")} {
		if _, _, err := s.Apply(c, t0); err != nil {
			t.Fatal(err)
		}
	}
	// A refusal (a deposit of zero) of a key that may have left memory asks
	// the store first.
	_, _, err := s.Apply(dep("d1", "0"), t0)
	var need *NeedLookup
	if !errors.As(err, &need) {
		t.Fatalf("retry of an evicted key: %v, want NeedLookup", err)
	}
	odd := Event{Seq: 1, TxID: "d1", Kind: "transfer", Amount: mustAmount(t, "10.00"), BalanceAfter: mustAmount(t, "10.00"), At: t0}
	s.Recall(need.IDs, []Event{odd})
	before := viewOf(s)
	if _, _, err := s.Apply(dep("d1", "10.00"), t0); ErrorCode(err) != CodeTxConflict {
		t.Fatalf("retry of a key recalled with an unknown kind: %v, want TX_CONFLICT", err)
	}
	if !reflect.DeepEqual(viewOf(s), before) {
		t.Fatal("a refused retry changed the wallet")
	}
}

func mustAmount(t *testing.T, s string) Amount {
	t.Helper()
	a, err := ParseAmount(s, eur)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
