package wallet

import (
	"time"
)

// Kind is the kind of a money transaction.
type Kind string

const (
	KindDeposit  Kind = "deposit"
	KindWithdraw Kind = "withdraw"
	KindBet      Kind = "bet"
	KindWin      Kind = "win"
	KindRollback Kind = "rollback"
)

// Valid reports whether k is one of the five kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindDeposit, KindWithdraw, KindBet, KindWin, KindRollback:
		return true
	}
	return false
}

// credits reports whether the kind adds its amount to the balance.
func (k Kind) credits() bool { return k == KindDeposit || k == KindWin || k == KindRollback }

// Command asks a wallet to apply one transaction. Amount is the decimal text
// as received: only the wallet knows its currency, so Apply parses it (strictly,
// see ParseAmount; with ExtraZeros, see ParseAmountExact). For a rollback
// Amount is ignored: the refund is the bet's amount.
type Command struct {
	Kind       Kind
	TxID       string
	Amount     string
	ExtraZeros bool   // accept "10.500000" for EUR: provider wire formats send fixed decimals
	RoundID    string // bet: required; win: optional, settles every open bet of the round
	GameID     string // bet: informational
	Ref        string // win: bet_tx_id (optional); rollback: ref_tx_id (required)
	Currency   string // optional: when set it must be the wallet's currency
}

// Outcome tells callers (provider adapters above all) what exactly happened.
type Outcome string

const (
	// OutcomeApplied: a new transaction was applied and journaled.
	OutcomeApplied Outcome = "applied"
	// OutcomeDuplicate: a retry of a transaction applied earlier; nothing changed.
	OutcomeDuplicate Outcome = "duplicate"
	// OutcomeTombstoned: a rollback of a bet never seen; it refunded nothing,
	// was journaled, and the bet will be refused if it arrives later.
	OutcomeTombstoned Outcome = "tombstoned"
	// OutcomeAlreadyRolledBack: a rollback (under a new tx_id) of a bet that was
	// already rolled back; nothing changed and nothing was journaled.
	OutcomeAlreadyRolledBack Outcome = "already_rolled_back"
)

// Result is the answer to a command.
type Result struct {
	TxID      string
	Kind      Kind
	Amount    Amount // the amount of the transaction (a rollback: the refund)
	Balance   Amount // the wallet's balance after this request
	Version   uint64 // the journal sequence of the transaction
	Duplicate bool
	Outcome   Outcome
	Settled   []string // bets this win settled; for a rollback, the bet it refunded
	At        time.Time
	Currency  Currency // the wallet's currency (set on success)
}

// Event is one journal entry: a committed transaction and the effects it had.
// Replay applies the recorded effects and never re-decides anything, so a
// journal rebuilds exactly the state that produced it.
type Event struct {
	Seq          uint64
	TxID         string
	Kind         Kind
	Amount       Amount // always ≥ 0; Kind says whether it credits or debits
	BalanceAfter Amount
	RoundID      string
	GameID       string
	Ref          string   // win: bet_tx_id; rollback: ref_tx_id
	Settles      []string // win: the bets it settled
	Tombstone    bool     // rollback: the bet was unknown; Ref is now refused as a bet
	At           time.Time
}

// BetKey is the key the store keeps unique per wallet besides the tx_id: a
// bet claims its own tx_id, and a tombstone claims the tx_id of the bet it
// refuses. Two claims on one key mean a bet arrived after its tombstone left
// memory; the store refuses the write and the wallet recalls the tombstone.
func (e Event) BetKey() string {
	switch {
	case e.Kind == KindBet:
		return e.TxID
	case e.Kind == KindRollback && e.Tombstone:
		return e.Ref
	}
	return ""
}

// ValidID reports whether s is a valid player, tx, round or game id:
// 1–128 characters of [A-Za-z0-9._:@-].
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == ':', c == '@', c == '-':
		default:
			return false
		}
	}
	return true
}
