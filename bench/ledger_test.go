package bench

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// fakeServer is a Reader over wallets held in memory, with journals the
// test builds (correct or not).
type fakeServer struct {
	wallets map[string]*fakeWallet
}

type fakeWallet struct {
	state   WalletState
	journal []HistoryTx // oldest first
}

func (f *fakeServer) Wallet(_ context.Context, id string) (WalletState, error) {
	w, ok := f.wallets[id]
	if !ok {
		return WalletState{}, errors.New("no such wallet")
	}
	return w.state, nil
}

func (f *fakeServer) History(_ context.Context, id string, before uint64, limit int) ([]HistoryTx, error) {
	w := f.wallets[id]
	var out []HistoryTx
	for i := len(w.journal) - 1; i >= 0 && len(out) < limit; i-- {
		if before == 0 || w.journal[i].Seq < before {
			out = append(out, w.journal[i])
		}
	}
	return out, nil
}

// apply journals op like a correct server and returns its acknowledgement.
func (w *fakeWallet) apply(op Op) Reply {
	w.state.Version++
	if op.Kind.credits() {
		w.state.Balance += op.Amount
	} else {
		w.state.Balance -= op.Amount
	}
	w.journal = append(w.journal, HistoryTx{Seq: w.state.Version, TxID: op.TxID, Kind: op.Kind, Amount: op.Amount, BalanceAfter: w.state.Balance, Ref: op.Ref})
	return Reply{Status: 200, HasVersion: true, Version: w.state.Version, HasBalance: true, Balance: w.state.Balance}
}

func TestLedgerCheck(t *testing.T) {
	dep := Op{Wallet: "w", Kind: KindDeposit, TxID: "d1", Amount: 10_000}
	bet := Op{Wallet: "w", Kind: KindBet, TxID: "b1", RoundID: "b1", Amount: 250}
	win := Op{Wallet: "w", Kind: KindWin, TxID: "w1", Ref: "b1", Amount: 400}
	bet2 := Op{Wallet: "w", Kind: KindBet, TxID: "b2", RoundID: "b2", Amount: 100}
	rb := Op{Wallet: "w", Kind: KindRollback, TxID: "r1", Ref: "b2", Amount: 100}

	for _, tc := range []struct {
		name string
		// run sends operations to the wallet and records them on the tape
		// as the harness would, possibly breaking the server on the way.
		run  func(w *fakeWallet, tape *Tape)
		want []string // discrepancy kinds, sorted; empty: clean
	}{
		{"clean", func(w *fakeWallet, tape *Tape) {
			for _, op := range []Op{dep, bet, win, bet2, rb} {
				tape.Ack(op, w.apply(op))
			}
		}, nil},
		{"retry answered duplicate", func(w *fakeWallet, tape *Tape) {
			tape.Ack(dep, w.apply(dep))
			r := w.apply(bet)
			tape.Ack(bet, r)
			retry := bet
			retry.Retry = true
			tape.Ack(retry, Reply{Status: 200, HasVersion: true, Version: r.Version, Duplicate: true, HasBalance: true, Balance: w.state.Balance})
		}, nil},
		{"in doubt, landed", func(w *fakeWallet, tape *Tape) {
			tape.Ack(dep, w.apply(dep))
			w.apply(bet) // the reply was lost
			tape.Doubt(bet)
		}, nil},
		{"in doubt, never landed", func(w *fakeWallet, tape *Tape) {
			tape.Ack(dep, w.apply(dep))
			tape.Doubt(bet)
		}, nil},
		{"acknowledged but lost", func(w *fakeWallet, tape *Tape) {
			tape.Ack(dep, w.apply(dep))
			tape.Ack(bet, Reply{Status: 200, HasVersion: true, Version: 2, HasBalance: true, Balance: 9750})
		}, []string{"lost"}},
		{"applied twice", func(w *fakeWallet, tape *Tape) {
			tape.Ack(dep, w.apply(dep))
			tape.Ack(bet, w.apply(bet))
			retry := bet
			retry.Retry = true
			tape.Ack(retry, w.apply(bet)) // a retry applied again
		}, []string{"balance", "double", "double", "version"}},
		{"acknowledged with another version", func(w *fakeWallet, tape *Tape) {
			tape.Ack(dep, w.apply(dep))
			r := w.apply(bet)
			r.Version = 7
			tape.Ack(bet, r)
		}, []string{"version"}},
		{"acknowledged with another balance", func(w *fakeWallet, tape *Tape) {
			tape.Ack(dep, w.apply(dep))
			r := w.apply(bet)
			r.Balance++
			tape.Ack(bet, r)
		}, []string{"balance"}},
		{"gap in the versions", func(w *fakeWallet, tape *Tape) {
			tape.Ack(dep, w.apply(dep))
			w.state.Version++ // version 2 never journaled
			tape.Ack(bet, w.apply(bet))
		}, []string{"gap"}},
		{"balance that does not add up", func(w *fakeWallet, tape *Tape) {
			tape.Ack(dep, w.apply(dep))
			tape.Ack(bet, w.apply(bet))
			w.state.Balance += 1 // a cent from nowhere
		}, []string{"balance"}},
		{"journal entry with a wrong balance", func(w *fakeWallet, tape *Tape) {
			tape.Ack(dep, w.apply(dep))
			tape.Ack(bet, w.apply(bet))
			w.journal[1].BalanceAfter = 1
		}, []string{"balance", "balance", "balance"}},
		{"transaction nobody sent", func(w *fakeWallet, tape *Tape) {
			tape.Ack(dep, w.apply(dep))
			w.apply(Op{Wallet: "w", Kind: KindWin, TxID: "ghost", Amount: 1})
		}, []string{"unexpected"}},
		{"wrong amount applied", func(w *fakeWallet, tape *Tape) {
			tape.Ack(dep, w.apply(dep))
			big := bet
			big.Amount = 2500
			r := w.apply(big)
			tape.Ack(bet, Reply{Status: 200, HasVersion: true, Version: r.Version, HasBalance: true, Balance: r.Balance})
		}, []string{"amount"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &fakeServer{wallets: map[string]*fakeWallet{"w": {}, "idle": {}}}
			l := NewLedger()
			l.Add("w", "idle")
			var tape Tape
			tc.run(srv.wallets["w"], &tape)
			l.Append(&tape)
			rep := l.Check(context.Background(), srv, 4)
			var kinds []string
			for _, d := range rep.Discrepancies {
				kinds = append(kinds, d.Kind)
				if d.Wallet != "w" || d.Detail == "" {
					t.Errorf("discrepancy %+v", d)
				}
			}
			slices.Sort(kinds)
			if !slices.Equal(kinds, tc.want) {
				t.Fatalf("discrepancies %v, want kinds %v", rep.Discrepancies[:min(len(rep.Discrepancies), 10)], tc.want)
			}
			if rep.Wallets != 2 {
				t.Errorf("checked %d wallets", rep.Wallets)
			}
			// The next check starts from what the server reported: with
			// nothing new, it is clean.
			if again := l.Check(context.Background(), srv, 1); len(again.Discrepancies) != 0 {
				t.Errorf("second check: %v", again.Discrepancies)
			}
		})
	}
}

// Checks cover only what happened since the previous one, and a retry of a
// transaction confirmed by an earlier check is verified against the journal.
func TestLedgerIncremental(t *testing.T) {
	srv := &fakeServer{wallets: map[string]*fakeWallet{"w": {}}}
	w := srv.wallets["w"]
	l := NewLedger()
	var tape Tape
	for i := range 2500 { // more than two history pages
		op := Op{Wallet: "w", Kind: KindDeposit, TxID: "d" + strconv.Itoa(i), Amount: 1}
		tape.Ack(op, w.apply(op))
	}
	l.Append(&tape)
	if rep := l.Check(context.Background(), srv, 2); len(rep.Discrepancies) != 0 || rep.Transactions != 2500 {
		t.Fatalf("first check: %d transactions, %d discrepancies", rep.Transactions, len(rep.Discrepancies))
	}
	first := w.journal[0]
	tape = Tape{}
	op := Op{Wallet: "w", Kind: KindDeposit, TxID: first.TxID, Amount: 1, Retry: true}
	tape.Ack(op, Reply{Status: 200, HasVersion: true, Version: first.Seq, Duplicate: true})
	next := Op{Wallet: "w", Kind: KindBet, TxID: "b", RoundID: "b", Amount: 5}
	tape.Ack(next, w.apply(next))
	l.Append(&tape)
	if rep := l.Check(context.Background(), srv, 2); len(rep.Discrepancies) != 0 || rep.Transactions != 1 {
		t.Fatalf("second check: %d transactions, %v", rep.Transactions, rep.Discrepancies)
	}
	// A "duplicate" naming a version that holds another transaction.
	tape = Tape{}
	tape.Ack(Op{Wallet: "w", Kind: KindDeposit, TxID: "never", Amount: 1, Retry: true}, Reply{Status: 200, HasVersion: true, Version: 3, Duplicate: true})
	l.Append(&tape)
	rep := l.Check(context.Background(), srv, 2)
	if len(rep.Discrepancies) != 1 || rep.Discrepancies[0].Kind != "lost" || !strings.Contains(rep.Discrepancies[0].Detail, "never") {
		t.Fatalf("bogus duplicate: %v", rep.Discrepancies)
	}
}

func TestLedgerReadErrors(t *testing.T) {
	srv := &fakeServer{wallets: map[string]*fakeWallet{}}
	l := NewLedger()
	l.Add("missing")
	rep := l.Check(context.Background(), srv, 1)
	if len(rep.Discrepancies) != 1 || rep.Discrepancies[0].Kind != "read" {
		t.Fatalf("%v", rep.Discrepancies)
	}
}
