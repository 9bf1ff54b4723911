package wallet

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Limits bound the memory a wallet spends on idempotency keys. Keys stay in
// memory for at least Retention unless there are more than MaxKeys; anything
// older is answered from the store (see NeedLookup and Recall).
type Limits struct {
	Retention time.Duration
	MaxKeys   int
}

// DefaultLimits keeps a week of keys (providers retry for about a day) and at
// most 100,000 per wallet, about 10 MB for the busiest wallet.
var DefaultLimits = Limits{Retention: 7 * 24 * time.Hour, MaxKeys: 100_000}

// maxRecalled bounds the records brought back from the store by Recall.
const maxRecalled = 1024

type betState uint8

const (
	betNone betState = iota // not a bet
	betOpen
	betSettled
	betRolledBack
)

// record is what the wallet remembers of one applied transaction.
type record struct {
	seq    uint64
	kind   Kind
	amount Amount
	round  string
	ref    string
	at     time.Time
	bet    betState
}

type fifoEntry struct {
	id   string
	seq  uint64
	at   time.Time
	tomb bool
}

// State is one wallet: the pure, deterministic state machine that holds every
// money rule of wallet-semantics.md. It does no I/O. It is not safe for
// concurrent use: one actor owns it.
type State struct {
	currency Currency
	balance  Amount
	version  uint64
	limits   Limits

	recs   map[string]*record  // tx_id → applied transaction
	tombs  map[string]uint64   // bet tx_id → seq of the rollback that refused it in advance
	rounds map[string][]string // round → its open bets, in order

	fifo     []fifoEntry // keys in seq order, for eviction
	fifoHead int
	// horizon: every event with seq ≥ horizon has its keys in memory. A wallet
	// whose whole history is in memory has horizon ≤ 1.
	horizon uint64

	recalled []string            // ids brought back by Recall (bounded)
	absent   map[string]struct{} // ids the store was asked for and does not have
}

// New returns an empty wallet in currency c.
func New(c Currency, l Limits) *State {
	if l.Retention <= 0 {
		l.Retention = DefaultLimits.Retention
	}
	if l.MaxKeys <= 0 {
		l.MaxKeys = DefaultLimits.MaxKeys
	}
	return &State{
		currency: c,
		balance:  Zero(c),
		limits:   l,
		recs:     make(map[string]*record),
		tombs:    make(map[string]uint64),
		rounds:   make(map[string][]string),
		horizon:  1,
	}
}

func (s *State) Currency() Currency { return s.currency }
func (s *State) Balance() Amount    { return s.balance }
func (s *State) Version() uint64    { return s.version }

// Complete reports whether every key of the wallet's history is in memory.
func (s *State) Complete() bool { return s.horizon <= 1 }

// NeedLookup is returned by Apply when the answer depends on transactions
// that have left memory. The caller fetches the events with Store-side
// lookups of IDs, passes them to Recall, and applies the command again.
type NeedLookup struct {
	IDs []string
}

func (e *NeedLookup) Error() string { return fmt.Sprintf("wallet: need lookup of %v", e.IDs) }

// Apply decides cmd against the wallet. On success it changes the state and
// returns the journal event to commit (nil for a duplicate or an outcome that
// changes nothing). On failure it returns a *Error or a *NeedLookup and the
// state is unchanged (apart from forgetting keys older than the limits).
func (s *State) Apply(cmd Command, now time.Time) (Result, *Event, error) {
	s.evict(now)
	if err := s.validate(cmd); err != nil {
		return Result{}, nil, err
	}
	amount := Zero(s.currency)
	if cmd.Kind != KindRollback {
		parse := ParseAmount
		if cmd.ExtraZeros {
			parse = ParseAmountExact
		}
		var err error
		if amount, err = parse(cmd.Amount, s.currency); err != nil {
			return Result{}, nil, err
		}
	}
	if rec, ok := s.recs[cmd.TxID]; ok {
		return s.retry(cmd, amount, rec)
	}

	ev := Event{
		Seq: s.version + 1, TxID: cmd.TxID, Kind: cmd.Kind, Amount: amount,
		RoundID: cmd.RoundID, GameID: cmd.GameID, Ref: cmd.Ref, At: now,
	}
	res := Result{TxID: cmd.TxID, Kind: cmd.Kind, Outcome: OutcomeApplied}

	switch cmd.Kind {
	case KindDeposit, KindWithdraw:
		if amount.Sign() <= 0 {
			return Result{}, nil, Errorf(CodeInvalidAmount, "a %s amount must be greater than zero", cmd.Kind)
		}
	case KindBet:
		if _, ok := s.tombs[cmd.TxID]; ok {
			return Result{}, nil, Errorf(CodeBetRolledBack, "bet %s was rolled back before it arrived", cmd.TxID)
		}
	case KindWin:
		if cmd.Ref != "" {
			bet, err := s.findBet(cmd.Ref)
			if err != nil {
				return Result{}, nil, err
			}
			switch {
			case bet.kind != KindBet:
				return Result{}, nil, Errorf(CodeBadRequest, "bet_tx_id %s names a %s, not a bet", cmd.Ref, bet.kind)
			case bet.bet == betRolledBack:
				return Result{}, nil, Errorf(CodeBetRolledBack, "bet %s was rolled back", cmd.Ref)
			case bet.bet == betSettled:
				return Result{}, nil, Errorf(CodeBetAlreadySettled, "bet %s is already settled", cmd.Ref)
			case cmd.RoundID != "" && cmd.RoundID != bet.round:
				return Result{}, nil, Errorf(CodeBadRequest, "bet %s belongs to round %s, not %s", cmd.Ref, bet.round, cmd.RoundID)
			}
			ev.Settles = []string{cmd.Ref}
		} else if cmd.RoundID != "" {
			ev.Settles = slices.Clone(s.rounds[cmd.RoundID])
		}
	case KindRollback:
		bet, err := s.findBet(cmd.Ref)
		var de *Error
		switch {
		case errors.As(err, &de) && de.Code == CodeBetRolledBack:
			// A second rollback of a bet never seen: it succeeds and changes nothing.
			return s.unchanged(cmd, OutcomeAlreadyRolledBack), nil, nil
		case errors.As(err, &de) && de.Code == CodeBetNotFound:
			ev.Tombstone = true
			ev.Amount = Zero(s.currency)
			res.Outcome = OutcomeTombstoned
		case err != nil:
			return Result{}, nil, err
		case bet.kind != KindBet:
			return Result{}, nil, Errorf(CodeBadRequest, "ref_tx_id %s names a %s, not a bet", cmd.Ref, bet.kind)
		case bet.bet == betSettled:
			return Result{}, nil, Errorf(CodeBetAlreadySettled, "bet %s is already settled", cmd.Ref)
		case bet.bet == betRolledBack:
			return s.unchanged(cmd, OutcomeAlreadyRolledBack), nil, nil
		default:
			ev.Amount = bet.amount
			ev.RoundID = bet.round
			res.Settled = []string{cmd.Ref}
		}
	}

	if cmd.Kind.credits() {
		ev.BalanceAfter = s.balance.Add(ev.Amount)
		if ev.BalanceAfter.tooLarge() {
			return Result{}, nil, Errorf(CodeInvalidAmount, "the balance would exceed %d integer digits", maxBalanceDigits)
		}
	} else {
		if ev.Amount.Cmp(s.balance) > 0 {
			return Result{}, nil, Errorf(CodeInsufficientFunds, "balance %s is less than %s", s.balance, ev.Amount)
		}
		ev.BalanceAfter = s.balance.Sub(ev.Amount)
	}
	s.apply(&ev)

	res.Amount = ev.Amount
	res.Balance = s.balance
	res.Version = ev.Seq
	res.At = ev.At
	if ev.Kind == KindWin {
		res.Settled = ev.Settles
	}
	return res, &ev, nil
}

func (s *State) validate(cmd Command) error {
	switch {
	case !cmd.Kind.Valid():
		return Errorf(CodeBadRequest, "unknown transaction kind %q", cmd.Kind)
	case !ValidID(cmd.TxID):
		return Errorf(CodeBadRequest, "tx_id must be 1-128 characters of [A-Za-z0-9._:@-]")
	case cmd.Currency != "" && cmd.Currency != s.currency.Code:
		return Errorf(CodeCurrencyMismatch, "the wallet holds %s, not %s", s.currency.Code, cmd.Currency)
	case cmd.Kind == KindBet && !ValidID(cmd.RoundID):
		return Errorf(CodeBadRequest, "a bet needs a valid round_id")
	case cmd.RoundID != "" && !ValidID(cmd.RoundID):
		return Errorf(CodeBadRequest, "round_id must be 1-128 characters of [A-Za-z0-9._:@-]")
	case cmd.GameID != "" && !ValidID(cmd.GameID):
		return Errorf(CodeBadRequest, "game_id must be 1-128 characters of [A-Za-z0-9._:@-]")
	case cmd.Kind == KindRollback && !ValidID(cmd.Ref):
		return Errorf(CodeBadRequest, "a rollback needs a valid ref_tx_id")
	case cmd.Ref != "" && !ValidID(cmd.Ref):
		return Errorf(CodeBadRequest, "bet_tx_id must be 1-128 characters of [A-Za-z0-9._:@-]")
	case cmd.Ref == cmd.TxID:
		return Errorf(CodeBadRequest, "a transaction cannot refer to itself")
	case cmd.Kind != KindWin && cmd.Kind != KindRollback && cmd.Ref != "":
		return Errorf(CodeBadRequest, "only wins and rollbacks refer to a bet")
	}
	return nil
}

// retry answers a request whose tx_id the wallet has applied before.
func (s *State) retry(cmd Command, amount Amount, rec *record) (Result, *Event, error) {
	same := rec.kind == cmd.Kind && rec.ref == cmd.Ref
	if cmd.Kind != KindRollback {
		same = same && rec.amount.Cmp(amount) == 0 && rec.round == cmd.RoundID
	}
	if !same {
		return Result{}, nil, Errorf(CodeTxConflict, "tx_id %s was already used for a different %s", cmd.TxID, rec.kind)
	}
	return Result{
		TxID: cmd.TxID, Kind: rec.kind, Amount: rec.amount, Balance: s.balance,
		Version: rec.seq, Duplicate: true, Outcome: OutcomeDuplicate, At: rec.at,
	}, nil, nil
}

func (s *State) unchanged(cmd Command, o Outcome) Result {
	return Result{TxID: cmd.TxID, Kind: cmd.Kind, Amount: Zero(s.currency), Balance: s.balance, Version: s.version, Outcome: o, Settled: []string{cmd.Ref}}
}

// findBet returns the record of id, or BET_ROLLED_BACK for a tombstone,
// BET_NOT_FOUND when the wallet never saw it, or NeedLookup when it may have
// left memory.
func (s *State) findBet(id string) (*record, error) {
	if rec, ok := s.recs[id]; ok {
		return rec, nil
	}
	if _, ok := s.tombs[id]; ok {
		return nil, Errorf(CodeBetRolledBack, "bet %s was rolled back before it arrived", id)
	}
	if _, ok := s.absent[id]; !ok && !s.Complete() {
		return nil, &NeedLookup{IDs: []string{id}}
	}
	return nil, Errorf(CodeBetNotFound, "bet %s not found", id)
}

// Replay applies a committed event, as read from the journal. It checks that
// the event follows the wallet's sequence and agrees with its balance, and
// applies exactly the recorded effects.
func (s *State) Replay(ev Event) error {
	if ev.Seq != s.version+1 {
		return fmt.Errorf("wallet: event seq %d does not follow version %d", ev.Seq, s.version)
	}
	want := s.balance.Add(ev.Amount)
	if !ev.Kind.credits() {
		want = s.balance.Sub(ev.Amount)
	}
	if want.Cmp(ev.BalanceAfter) != 0 || want.Sign() < 0 || ev.Amount.Sign() < 0 {
		return fmt.Errorf("wallet: event %d (%s %s) gives balance %s, journal says %s", ev.Seq, ev.Kind, ev.Amount, want, ev.BalanceAfter)
	}
	s.apply(&ev)
	return nil
}

// apply is the one place that changes a wallet: Apply and Replay both use it.
func (s *State) apply(ev *Event) {
	s.balance = ev.BalanceAfter
	s.version = ev.Seq
	rec := &record{seq: ev.Seq, kind: ev.Kind, amount: ev.Amount, round: ev.RoundID, ref: ev.Ref, at: ev.At}
	switch ev.Kind {
	case KindBet:
		rec.bet = betOpen
		s.rounds[ev.RoundID] = append(s.rounds[ev.RoundID], ev.TxID)
	case KindWin:
		for _, id := range ev.Settles {
			s.closeBet(id, betSettled)
		}
	case KindRollback:
		if ev.Tombstone {
			s.tombs[ev.Ref] = ev.Seq
			s.fifo = append(s.fifo, fifoEntry{id: ev.Ref, seq: ev.Seq, at: ev.At, tomb: true})
		} else {
			s.closeBet(ev.Ref, betRolledBack)
		}
	}
	s.recs[ev.TxID] = rec
	delete(s.absent, ev.TxID)
	s.fifo = append(s.fifo, fifoEntry{id: ev.TxID, seq: ev.Seq, at: ev.At})
}

func (s *State) closeBet(id string, to betState) {
	rec, ok := s.recs[id]
	if !ok || rec.bet != betOpen {
		return
	}
	rec.bet = to
	s.dropOpen(id, rec.round)
}

func (s *State) dropOpen(id, round string) {
	open := s.rounds[round]
	if i := slices.Index(open, id); i >= 0 {
		open = slices.Delete(open, i, i+1)
	}
	if len(open) == 0 {
		delete(s.rounds, round)
	} else {
		s.rounds[round] = open
	}
}

// evict forgets keys older than the retention window, and the oldest keys
// beyond MaxKeys, moving the horizon past them.
func (s *State) evict(now time.Time) {
	cutoff := now.Add(-s.limits.Retention)
	for s.fifoHead < len(s.fifo) {
		e := s.fifo[s.fifoHead]
		if len(s.fifo)-s.fifoHead <= s.limits.MaxKeys && !e.at.Before(cutoff) {
			break
		}
		s.fifo[s.fifoHead] = fifoEntry{}
		s.fifoHead++
		if e.tomb {
			if s.tombs[e.id] == e.seq {
				delete(s.tombs, e.id)
			}
		} else if rec, ok := s.recs[e.id]; ok && rec.seq == e.seq {
			if rec.bet == betOpen {
				s.dropOpen(e.id, rec.round)
			}
			delete(s.recs, e.id)
		}
		s.horizon = max(s.horizon, e.seq+1)
	}
	if s.fifoHead > 64 && s.fifoHead > len(s.fifo)/2 {
		s.fifo = append([]fifoEntry(nil), s.fifo[s.fifoHead:]...)
		s.fifoHead = 0
	}
}

// Recall brings back what the store knows about ids that have left memory:
// evs are the journal events whose tx_id or ref is in ids, and the wins of
// the rounds of those bets (see the Store's Lookup). ids the store does not
// know are remembered as absent, so Apply can decide without asking again.
func (s *State) Recall(ids []string, evs []Event) {
	evs = slices.Clone(evs)
	slices.SortFunc(evs, func(a, b Event) int { return compareSeq(a.Seq, b.Seq) })
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	if len(s.recalled) > maxRecalled {
		for _, id := range s.recalled {
			if rec, ok := s.recs[id]; ok && rec.seq < s.horizon {
				delete(s.recs, id)
			}
		}
		s.recalled = s.recalled[:0]
	}
	if s.absent == nil || len(s.absent) > maxRecalled {
		s.absent = make(map[string]struct{})
	}
	found := make(map[string]bool)
	for i, ev := range evs {
		if ev.Kind == KindRollback && ev.Tombstone && want[ev.Ref] {
			if _, ok := s.tombs[ev.Ref]; !ok {
				s.tombs[ev.Ref] = ev.Seq
			}
			found[ev.Ref] = true
		}
		if !want[ev.TxID] {
			continue
		}
		found[ev.TxID] = true
		if _, ok := s.recs[ev.TxID]; ok {
			continue
		}
		rec := &record{seq: ev.Seq, kind: ev.Kind, amount: ev.Amount, round: ev.RoundID, ref: ev.Ref, at: ev.At}
		if ev.Kind == KindBet {
			rec.bet = betFate(ev, evs[i+1:])
		}
		s.recs[ev.TxID] = rec
		s.recalled = append(s.recalled, ev.TxID)
	}
	for _, id := range ids {
		if !found[id] {
			s.absent[id] = struct{}{}
		}
	}
}

// betFate derives a bet's state from the events after it: the first rollback
// of it, or win naming it or settling its round, decides.
func betFate(bet Event, later []Event) betState {
	for _, ev := range later {
		switch {
		case ev.Kind == KindRollback && !ev.Tombstone && ev.Ref == bet.TxID:
			return betRolledBack
		case ev.Kind == KindWin && (ev.Ref == bet.TxID || slices.Contains(ev.Settles, bet.TxID) ||
			(ev.Ref == "" && ev.RoundID != "" && ev.RoundID == bet.RoundID)):
			return betSettled
		}
	}
	return betOpen
}

func compareSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
