package bench

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
)

// Ledger is the harness's own account of every wallet: each operation the
// server acknowledged, and each whose outcome is unknown (a timeout, a
// dropped connection). After a run, Check compares it with what the server
// reports through the generic API — balance, version and the transaction
// history — and lists every discrepancy: an acknowledged transaction that is
// missing (loss), one applied twice or under another version, a gap in the
// versions, a balance that does not add up, a transaction nobody sent.
//
// Users record into a Tape of their own while they run (no lock on the hot
// path); the run appends the tapes to the ledger when it ends.
type Ledger struct {
	mu      sync.Mutex
	wallets map[string]*book
}

// book is one wallet's account since its last check.
type book struct {
	// The state the last check confirmed (zero for a new wallet).
	version uint64
	balance int64
	acks    []Ack
	doubts  []Op
	touched bool
}

// Ack is an acknowledged operation and what the reply said.
type Ack struct {
	Op    Op
	Reply Reply
}

// Tape is one user's record of a run.
type Tape struct {
	acks   []Ack
	doubts []Op
}

// Ack records an acknowledged operation.
func (t *Tape) Ack(op Op, r Reply) { t.acks = append(t.acks, Ack{Op: op, Reply: r}) }

// Doubt records an operation whose outcome is unknown.
func (t *Tape) Doubt(op Op) { t.doubts = append(t.doubts, op) }

// NewLedger returns an empty ledger.
func NewLedger() *Ledger { return &Ledger{wallets: map[string]*book{}} }

// Add registers wallets (opened with a zero balance) so that Check
// verifies them even if nothing touched them.
func (l *Ledger) Add(ids ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		if l.wallets[id] == nil {
			l.wallets[id] = &book{}
		}
	}
}

// Append adds a tape's records.
func (l *Ledger) Append(t *Tape) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range t.acks {
		b := l.book(a.Op.Wallet)
		b.acks = append(b.acks, a)
		b.touched = true
	}
	for _, op := range t.doubts {
		b := l.book(op.Wallet)
		b.doubts = append(b.doubts, op)
		b.touched = true
	}
}

func (l *Ledger) book(id string) *book {
	b := l.wallets[id]
	if b == nil {
		b = &book{}
		l.wallets[id] = b
	}
	return b
}

// Discrepancy is one way a wallet disagrees with the ledger.
type Discrepancy struct {
	Wallet string `json:"wallet"`
	// Kind: lost, double, version, gap, balance, unexpected, amount, read.
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

func (d Discrepancy) String() string { return fmt.Sprintf("%s: %s: %s", d.Wallet, d.Kind, d.Detail) }

// CheckReport is the outcome of a check.
type CheckReport struct {
	Wallets       int           // wallets checked
	Transactions  int           // journal entries checked
	InDoubt       int           // operations with unknown outcome
	InDoubtLanded int           // of those, found applied
	Discrepancies []Discrepancy // empty when all is well
}

// Reader is what Check needs of the server: the generic API's reads.
type Reader interface {
	Wallet(ctx context.Context, playerID string) (WalletState, error)
	History(ctx context.Context, playerID string, before uint64, limit int) ([]HistoryTx, error)
}

// historyPage is the page size of history reads (the API's maximum).
const historyPage = 1000

// Check verifies every wallet of the ledger with workers concurrent reads,
// then takes what the server reports as the new confirmed state, so the
// next check covers only what happens after this one.
func (l *Ledger) Check(ctx context.Context, r Reader, workers int) CheckReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := make([]string, 0, len(l.wallets))
	for id := range l.wallets {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	type outcome struct {
		txs, doubts, landed int
		ds                  []Discrepancy
	}
	outs := make([]outcome, len(ids))
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				b := l.wallets[ids[i]]
				o := &outs[i]
				o.ds, o.txs, o.landed = b.check(ctx, r, ids[i])
				o.doubts = len(b.doubts)
			}
		}()
	}
	for i := range ids {
		next <- i
	}
	close(next)
	wg.Wait()
	rep := CheckReport{Wallets: len(ids)}
	for _, o := range outs {
		rep.Transactions += o.txs
		rep.InDoubt += o.doubts
		rep.InDoubtLanded += o.landed
		rep.Discrepancies = append(rep.Discrepancies, o.ds...)
	}
	return rep
}

// check verifies one wallet and advances its confirmed state to what the
// server reports.
func (b *book) check(ctx context.Context, r Reader, id string) (ds []Discrepancy, txs, landed int) {
	bad := func(kind, format string, args ...any) {
		ds = append(ds, Discrepancy{Wallet: id, Kind: kind, Detail: fmt.Sprintf(format, args...)})
	}
	st, err := r.Wallet(ctx, id)
	if err != nil {
		bad("read", "%v", err)
		return ds, 0, 0
	}
	defer func() {
		b.version, b.balance, b.acks, b.doubts, b.touched = st.Version, st.Balance, nil, nil, false
	}()
	if st.Version < b.version {
		bad("gap", "version went back from %d to %d", b.version, st.Version)
		return ds, 0, 0
	}
	if st.Version == b.version && !b.touched {
		if st.Balance != b.balance {
			bad("balance", "balance %s at version %d, was %s when last checked", formatCents(st.Balance), st.Version, formatCents(b.balance))
		}
		return ds, 0, 0
	}

	// The journal since the last check, oldest first.
	var hist []HistoryTx
	for before := st.Version + 1; before > b.version+1; {
		page, err := r.History(ctx, id, before, historyPage)
		if err != nil {
			bad("read", "%v", err)
			return ds, 0, 0
		}
		if len(page) == 0 {
			break
		}
		for _, t := range page {
			if t.Seq > b.version {
				hist = append(hist, t)
			}
		}
		before = page[len(page)-1].Seq
	}
	slices.Reverse(hist)
	txs = len(hist)

	// Versions contiguous from the last check to the current version, each
	// balance the previous one plus or minus the amount.
	bal := b.balance
	want := b.version + 1
	byTx := make(map[string]HistoryTx, len(hist))
	for _, t := range hist {
		if t.Seq != want {
			bad("gap", "expected version %d next in the journal, found %d", want, t.Seq)
			want = t.Seq
		}
		want++
		if t.Kind.credits() {
			bal += t.Amount
		} else {
			bal -= t.Amount
		}
		if t.BalanceAfter != bal {
			bad("balance", "version %d (%s %s): balance_after %s, the journal adds up to %s", t.Seq, t.Kind, t.TxID, formatCents(t.BalanceAfter), formatCents(bal))
			bal = t.BalanceAfter
		}
		if prev, dup := byTx[t.TxID]; dup {
			bad("double", "tx_id %s applied twice, at versions %d and %d", t.TxID, prev.Seq, t.Seq)
		}
		byTx[t.TxID] = t
	}
	if want != st.Version+1 {
		bad("gap", "the wallet is at version %d but its journal ends at %d", st.Version, want-1)
	}
	if bal != st.Balance {
		bad("balance", "the wallet reports %s, its journal adds up to %s", formatCents(st.Balance), formatCents(bal))
	}

	// Every acknowledged operation is in the journal exactly once, at the
	// version its reply named, with what was sent.
	sent := make(map[string]bool, len(b.acks)+len(b.doubts))
	applied := make(map[string]uint64, len(b.acks))
	for _, a := range b.acks {
		op, rep := a.Op, a.Reply
		sent[op.TxID] = true
		t, found := byTx[op.TxID]
		if !found {
			if rep.Duplicate && rep.HasVersion && rep.Version <= b.version {
				// A retry of something confirmed by an earlier check.
				if older, err := r.History(ctx, id, rep.Version+1, 1); err != nil || len(older) != 1 || older[0].TxID != op.TxID {
					bad("lost", "retry of %s answered duplicate of version %d, which the journal does not hold", op.TxID, rep.Version)
				}
				continue
			}
			bad("lost", "%s %s (%s) was acknowledged at version %d but is not in the journal", op.Kind, op.TxID, formatCents(op.Amount), rep.Version)
			continue
		}
		if rep.HasVersion && rep.Version != t.Seq {
			bad("version", "%s %s was acknowledged at version %d, the journal has it at %d", op.Kind, op.TxID, rep.Version, t.Seq)
		}
		if !rep.Duplicate {
			if v, twice := applied[op.TxID]; twice {
				bad("double", "%s %s was acknowledged as applied twice (versions %d and %d)", op.Kind, op.TxID, v, rep.Version)
			}
			applied[op.TxID] = rep.Version
			if rep.HasBalance && rep.Balance != t.BalanceAfter {
				bad("balance", "%s %s was acknowledged with balance %s, the journal says %s", op.Kind, op.TxID, formatCents(rep.Balance), formatCents(t.BalanceAfter))
			}
		}
		if t.Kind != op.Kind || t.Amount != op.Amount {
			bad("amount", "%s %s of %s was sent, the journal has %s %s", op.Kind, op.TxID, formatCents(op.Amount), t.Kind, formatCents(t.Amount))
		}
	}
	// An operation in doubt may or may not have landed; if it did, it must
	// be what was sent.
	for _, op := range b.doubts {
		if t, found := byTx[op.TxID]; found {
			if !sent[op.TxID] {
				landed++
			}
			if t.Kind != op.Kind || t.Amount != op.Amount {
				bad("amount", "%s %s of %s was sent, the journal has %s %s", op.Kind, op.TxID, formatCents(op.Amount), t.Kind, formatCents(t.Amount))
			}
		}
		sent[op.TxID] = true
	}
	// Nothing else: a transaction the harness never sent was invented or
	// duplicated under another id.
	for _, t := range hist {
		if !sent[t.TxID] {
			bad("unexpected", "version %d: %s %s of %s was never sent", t.Seq, t.Kind, t.TxID, formatCents(t.Amount))
		}
	}
	return ds, txs, landed
}
