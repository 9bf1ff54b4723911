package wallet

import (
	"fmt"
	"slices"
	"time"
)

// Snapshot is a wallet's state at one version, small enough to write every
// few hundred transactions: balance, version and the bets still open.
// Activation is a snapshot plus the journal events after it. Keys of
// transactions before the snapshot are answered from the store on demand
// (the wallet is then not Complete), so the snapshot need not carry them.
type Snapshot struct {
	Currency string        `json:"currency"`
	Version  uint64        `json:"version"`
	Balance  string        `json:"balance"`
	OpenBets []SnapshotBet `json:"open_bets,omitempty"`
}

// SnapshotBet is an open bet in a snapshot.
type SnapshotBet struct {
	TxID   string    `json:"tx_id"`
	Seq    uint64    `json:"seq"`
	Amount string    `json:"amount"`
	Round  string    `json:"round_id"`
	At     time.Time `json:"at"`
}

// Snapshot captures the state.
func (s *State) Snapshot() Snapshot {
	sn := Snapshot{Currency: s.currency.Code, Version: s.version, Balance: s.balance.String()}
	// The rounds index holds exactly the open bets in memory: walking it
	// costs the open bets, not every remembered key (up to MaxKeys).
	for _, ids := range s.rounds {
		for _, id := range ids {
			if rec, ok := s.recs[id]; ok && rec.bet == betOpen {
				sn.OpenBets = append(sn.OpenBets, SnapshotBet{TxID: id, Seq: rec.seq, Amount: rec.amount.String(), Round: rec.round, At: rec.at.time()})
			}
		}
	}
	slices.SortFunc(sn.OpenBets, func(a, b SnapshotBet) int { return compareSeq(a.Seq, b.Seq) })
	return sn
}

// FromSnapshot rebuilds a state from a snapshot; replay the journal events
// after sn.Version on it to bring it up to date.
func FromSnapshot(sn Snapshot, l Limits) (*State, error) {
	c, ok := LookupCurrency(sn.Currency)
	if !ok {
		return nil, fmt.Errorf("wallet: snapshot has unknown currency %q", sn.Currency)
	}
	s := New(c, l)
	bal, err := ParseStored(sn.Balance, c)
	if err != nil || bal.Sign() < 0 {
		return nil, fmt.Errorf("wallet: snapshot balance %q: %v", sn.Balance, err)
	}
	s.balance, s.version, s.horizon = bal, sn.Version, sn.Version+1
	for _, b := range sn.OpenBets {
		amt, err := ParseStored(b.Amount, c)
		if err != nil || amt.Sign() < 0 || b.Seq == 0 || b.Seq > sn.Version || !ValidID(b.TxID) || !ValidID(b.Round) {
			return nil, fmt.Errorf("wallet: snapshot bet %q: bad amount, seq or ids: %v", b.TxID, err)
		}
		if _, dup := s.recs[b.TxID]; dup {
			return nil, fmt.Errorf("wallet: snapshot lists bet %q twice", b.TxID)
		}
		s.recs[b.TxID] = s.newRecord(record{seq: b.Seq, kind: codeOf(KindBet), amount: amt, round: b.Round, at: instantOf(b.At), bet: betOpen})
		s.rounds[b.Round] = append(s.rounds[b.Round], b.TxID)
		s.fifo = append(s.fifo, fifoEntry{id: b.TxID, seq: b.Seq, at: instantOf(b.At)})
	}
	return s, nil
}

// Rebuild is activation: a snapshot (nil: an empty wallet in currency c)
// followed by the journal events after it.
func Rebuild(c Currency, sn *Snapshot, tail []Event, l Limits) (*State, error) {
	s := New(c, l)
	if sn != nil {
		if sn.Currency != c.Code {
			return nil, fmt.Errorf("wallet: snapshot in %q for a wallet in %s", sn.Currency, c.Code)
		}
		var err error
		if s, err = FromSnapshot(*sn, l); err != nil {
			return nil, err
		}
	}
	for _, ev := range tail {
		if err := s.Replay(ev); err != nil {
			return nil, err
		}
	}
	return s, nil
}
