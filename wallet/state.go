package wallet

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/cockroachdb/apd/v3"
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

// record is what the wallet remembers of one applied transaction. A wallet
// remembers one per key for the retention window (a week by default), so its
// size is walletd's memory per remembered transaction: the kind is a byte
// and the time an int64 rather than a string and a time.Time (88 bytes where
// they made it 120; BenchmarkRememberedKeyMemory).
type record struct {
	seq    uint64
	amount Amount
	round  string
	ref    string
	at     instant
	kind   kindCode
	bet    betState
}

// recordOf is what the wallet remembers of ev (its bet state aside).
func recordOf(ev *Event) record {
	return record{seq: ev.Seq, kind: codeOf(ev.Kind), amount: ev.Amount, round: ev.RoundID, ref: ev.Ref, at: instantOf(ev.At)}
}

// fifoEntry is a remembered key in sequence order, for eviction.
type fifoEntry struct {
	id   string
	seq  uint64
	at   instant
	tomb bool
}

// instant is a time as Unix nanoseconds, 8 bytes where a time.Time takes 24.
// It keeps the instant, in UTC as it would come back from the store, not the
// location or the monotonic reading. Times outside what int64 nanoseconds
// hold (the years 1678–2262) saturate, so instants order as their times do
// and eviction by age keeps a key rather than dropping it early; the zero
// time, and any time before 1678, comes back as the zero time.
type instant int64

var (
	firstInstant = time.Unix(0, math.MinInt64+1)
	lastInstant  = time.Unix(0, math.MaxInt64)
)

func instantOf(t time.Time) instant {
	switch {
	case t.Before(firstInstant):
		return math.MinInt64
	case t.After(lastInstant):
		return math.MaxInt64
	}
	return instant(t.UnixNano())
}

func (i instant) time() time.Time {
	if i == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, int64(i)).UTC()
}

// kindCode is a Kind in one byte.
type kindCode uint8

var kinds = [...]Kind{KindDeposit, KindWithdraw, KindBet, KindWin, KindRollback}

// kindUnknown stands for a kind that is none of the five. Commands and
// replayed events are checked first; only Recall's events, which come from
// the store unchecked, could carry one, and a record of it matches no
// command (a retry of it is a TX_CONFLICT).
const kindUnknown = kindCode(len(kinds))

func codeOf(k Kind) kindCode {
	for i, kk := range kinds {
		if kk == k {
			return kindCode(i)
		}
	}
	return kindUnknown
}

func (c kindCode) kind() Kind {
	if c < kindUnknown {
		return kinds[c]
	}
	return "unknown"
}

// State is one wallet: the pure, deterministic state machine that holds every
// money rule of wallet-semantics.md. It does no I/O. It is not safe for
// concurrent use: one actor owns it.
type State struct {
	currency Currency
	balance  Amount
	version  uint64
	limits   Limits

	recs   map[string]*record  // tx_id → applied transaction (in block, see newRecord)
	block  []record            // the records' current block (newRecord)
	tombs  map[string]uint64   // bet tx_id → seq of the rollback that refused it in advance
	rounds map[string][]string // round → its open bets in memory, in sequence order

	fifo     []fifoEntry // keys in seq order, for eviction
	fifoHead int
	// horizon: every event with seq ≥ horizon has its keys in memory. A wallet
	// whose whole history is in memory has horizon ≤ 1.
	horizon uint64

	recalled map[recalledKey]struct{} // keys Recall brought back or kept (bounded)
	// Answers of the store about ids it was asked for (bounded): noTx holds
	// the ids it has no transaction of; absent those it has neither a
	// transaction nor a tombstone of (a bet it has never heard of).
	noTx   map[string]struct{}
	absent map[string]struct{}
}

// recalledKey is a key Recall brought back, or found still in memory and
// kept: a record (tx_id) or a tombstone (the bet tx_id it refuses). Eviction
// leaves these alone, so the command that needed them can be decided right
// after Recall even if its own eviction would have forgotten them; Recall
// forgets them once there are more than maxRecalled.
type recalledKey struct {
	id   string
	tomb bool
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
		return s.answered(s.retry(cmd, amount, rec))
	}
	res, ev, err := s.decide(cmd, amount, now)
	if ev == nil && s.mayHaveForgotten(cmd) {
		// A refusal, or an answer that changes nothing, for a tx_id that is
		// not in memory: the tx_id may be a retry of a transaction that left
		// memory, which must be answered as a duplicate (or TX_CONFLICT)
		// however long ago it was applied, and a bet may have a tombstone
		// that left memory (BET_ROLLED_BACK comes before any other refusal).
		// Applied outcomes need no lookup: the store refuses their tx_id or
		// bet key if it is taken.
		var nl *NeedLookup
		if errors.As(err, &nl) {
			nl.IDs = append(nl.IDs, cmd.TxID)
			return Result{}, nil, nl
		}
		return Result{}, nil, &NeedLookup{IDs: []string{cmd.TxID}}
	}
	return s.answered(res, ev, err)
}

// answered completes a successful Result with the wallet's currency, which
// callers need to format its amounts (provider replies) without a second
// call to the wallet.
func (s *State) answered(res Result, ev *Event, err error) (Result, *Event, error) {
	if err == nil {
		res.Currency = s.currency
	}
	return res, ev, err
}

// mayHaveForgotten reports whether the answer to cmd (whose tx_id is not in
// memory) may depend on keys that have left memory: a transaction with its
// tx_id, or for a bet a tombstone of it.
func (s *State) mayHaveForgotten(cmd Command) bool {
	if _, ok := s.recs[cmd.TxID]; ok || s.Complete() {
		return false
	}
	if _, known := s.noTx[cmd.TxID]; !known {
		return true
	}
	if cmd.Kind != KindBet {
		return false
	}
	_, tomb := s.tombs[cmd.TxID]
	_, none := s.absent[cmd.TxID]
	return !tomb && !none
}

// decide evaluates a command whose tx_id is not in memory.
func (s *State) decide(cmd Command, amount Amount, now time.Time) (Result, *Event, error) {
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
			case bet.kind.kind() != KindBet:
				return Result{}, nil, Errorf(CodeBadRequest, "bet_tx_id %s names a %s, not a bet", cmd.Ref, bet.kind.kind())
			case bet.bet == betRolledBack:
				return Result{}, nil, Errorf(CodeBetRolledBack, "bet %s was rolled back", cmd.Ref)
			case bet.bet == betSettled:
				return Result{}, nil, Errorf(CodeBetAlreadySettled, "bet %s is already settled", cmd.Ref)
			case cmd.RoundID != "" && cmd.RoundID != bet.round:
				return Result{}, nil, Errorf(CodeBadRequest, "bet %s belongs to round %s, not %s", cmd.Ref, bet.round, cmd.RoundID)
			}
			ev.Settles = []string{cmd.Ref}
			if cmd.RoundID != "" {
				// The same text as the bet's round: share the bet's copy,
				// so the win's record does not keep the request's alive.
				ev.RoundID = bet.round
			}
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
		case bet.kind.kind() != KindBet:
			return Result{}, nil, Errorf(CodeBadRequest, "ref_tx_id %s names a %s, not a bet", cmd.Ref, bet.kind.kind())
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
	kind := rec.kind.kind()
	same := kind == cmd.Kind && rec.ref == cmd.Ref
	if cmd.Kind != KindRollback {
		same = same && rec.amount.Cmp(amount) == 0 && rec.round == cmd.RoundID
	}
	if !same {
		return Result{}, nil, Errorf(CodeTxConflict, "tx_id %s was already used for a different %s", cmd.TxID, kind)
	}
	return Result{
		TxID: cmd.TxID, Kind: kind, Amount: rec.amount, Balance: s.balance,
		Version: rec.seq, Duplicate: true, Outcome: OutcomeDuplicate, At: rec.at.time(),
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
		// A transaction that reused the id after the tombstone (it cannot
		// be a bet) would be found first in a complete wallet.
		if _, known := s.noTx[id]; !known && !s.Complete() {
			return nil, &NeedLookup{IDs: []string{id}}
		}
		return nil, Errorf(CodeBetRolledBack, "bet %s was rolled back before it arrived", id)
	}
	if _, ok := s.absent[id]; !ok && !s.Complete() {
		return nil, &NeedLookup{IDs: []string{id}}
	}
	return nil, Errorf(CodeBetNotFound, "bet %s not found", id)
}

// Replay applies a committed event, as read from the journal. It checks that
// the event follows the wallet's sequence, is well formed for the wallet's
// currency and agrees with its balance, and applies exactly the recorded
// effects. On error the state is unchanged.
func (s *State) Replay(ev Event) error {
	if ev.Seq != s.version+1 {
		return fmt.Errorf("wallet: event seq %d does not follow version %d", ev.Seq, s.version)
	}
	if err := s.checkEvent(ev); err != nil {
		return fmt.Errorf("wallet: event %d (%s): %w", ev.Seq, ev.TxID, err)
	}
	want := s.balance.Add(ev.Amount)
	if !ev.Kind.credits() {
		want = s.balance.Sub(ev.Amount)
	}
	if want.Cmp(ev.BalanceAfter) != 0 || want.Sign() < 0 {
		return fmt.Errorf("wallet: event %d (%s %s) gives balance %s, journal says %s", ev.Seq, ev.Kind, ev.Amount, want, ev.BalanceAfter)
	}
	s.apply(&ev)
	return nil
}

// checkEvent checks what Replay cannot derive from the balance: the kind,
// the amounts' form, and that the event's keys are new.
func (s *State) checkEvent(ev Event) error {
	exp := -s.currency.Minor
	switch {
	case !ev.Kind.Valid():
		return fmt.Errorf("unknown kind %q", ev.Kind)
	case ev.Amount.d.Form != apd.Finite || ev.Amount.d.Exponent != exp || ev.Amount.Sign() < 0:
		return fmt.Errorf("amount %s is not a non-negative %s amount", ev.Amount, s.currency.Code)
	case ev.BalanceAfter.d.Form != apd.Finite || ev.BalanceAfter.d.Exponent != exp:
		return fmt.Errorf("balance %s is not a %s amount", ev.BalanceAfter, s.currency.Code)
	case ev.Tombstone && (ev.Kind != KindRollback || !ev.Amount.IsZero()):
		return fmt.Errorf("a tombstone must be a rollback of amount 0")
	}
	if _, ok := s.recs[ev.TxID]; ok {
		return fmt.Errorf("tx_id %s is already in the journal", ev.TxID)
	}
	if _, ok := s.tombs[ev.TxID]; ok && ev.Kind == KindBet {
		return fmt.Errorf("bet %s follows its own tombstone", ev.TxID)
	}
	return nil
}

// newRecord stores r in the wallet's current block of records. A collection
// marks every heap object, and with one object per remembered key the
// collector's work grew with the keys a busy server remembers (for a week by
// default): in blocks it marks one object for many, about a third less work
// per key (BenchmarkRememberedKeyMemory's gc-ns/key). Records are made here
// in sequence order and forgotten oldest first, so a block dies once its
// last record is forgotten, and a wallet holds about one block partly
// forgotten (and, for a while, those of the few records Recall keeps past
// their eviction, at most maxRecalled). Blocks start at one record, so a
// wallet with few keys holds no spare room, and double up to
// maxRecordBlock. Recall's own records, old keys that stay only a while,
// are allocated one by one: in a block they would keep it alive.
func (s *State) newRecord(r record) *record {
	if len(s.block) == cap(s.block) {
		s.block = make([]record, 0, min(max(1, 2*cap(s.block)), maxRecordBlock))
	}
	s.block = append(s.block, r)
	return &s.block[len(s.block)-1]
}

// maxRecordBlock bounds a block of records (about 5.5 KB).
const maxRecordBlock = 64

// apply is the one place that changes a wallet: Apply and Replay both use it.
func (s *State) apply(ev *Event) {
	s.balance = ev.BalanceAfter
	s.version = ev.Seq
	rec := s.newRecord(recordOf(ev))
	switch ev.Kind {
	case KindBet:
		rec.bet = betOpen
		s.rounds[ev.RoundID] = append(s.rounds[ev.RoundID], ev.TxID)
	case KindWin:
		for _, id := range ev.Settles {
			s.closeBet(id, betSettled)
		}
		if ev.Ref == "" && ev.RoundID != "" {
			// A round win settles every open bet of its round, including
			// bets the wallet that decided it no longer had in memory (and
			// so could not list in Settles): the state a journal rebuilds
			// is the state betFate derives from the store.
			for _, id := range slices.Clone(s.rounds[ev.RoundID]) {
				s.closeBet(id, betSettled)
			}
		}
	case KindRollback:
		if ev.Tombstone {
			s.tombs[ev.Ref] = ev.Seq
			s.fifo = append(s.fifo, fifoEntry{id: ev.Ref, seq: ev.Seq, at: rec.at, tomb: true})
		} else {
			s.closeBet(ev.Ref, betRolledBack)
		}
	}
	s.recs[ev.TxID] = rec
	delete(s.absent, ev.TxID)
	delete(s.noTx, ev.TxID)
	if ev.Tombstone {
		delete(s.absent, ev.Ref) // the store holds a tombstone of it now
	}
	s.fifo = append(s.fifo, fifoEntry{id: ev.TxID, seq: ev.Seq, at: rec.at})
}

func (s *State) closeBet(id string, to betState) {
	rec, ok := s.recs[id]
	if !ok || rec.bet != betOpen {
		return
	}
	rec.bet = to
	s.dropOpen(id, rec.round)
}

// dropOpen removes a bet from its round's open bets. It is O(1) in the two
// common cases whatever the round's size (a provider may key rounds by
// session): eviction drops the oldest bet, and bets are mostly settled soon
// after they are placed, so the search starts from the newest.
func (s *State) dropOpen(id, round string) {
	open := s.rounds[round]
	switch {
	case len(open) == 0:
	case open[0] == id:
		open[0] = ""
		open = open[1:]
	default:
		for i := len(open) - 1; i > 0; i-- {
			if open[i] == id {
				open = slices.Delete(open, i, i+1)
				break
			}
		}
	}
	if len(open) == 0 {
		delete(s.rounds, round)
	} else {
		s.rounds[round] = open
	}
}

// addOpen inserts a recalled open bet into its round, in sequence order.
func (s *State) addOpen(id, round string, seq uint64) {
	open := s.rounds[round]
	i, _ := slices.BinarySearchFunc(open, seq, func(other string, seq uint64) int {
		if o, ok := s.recs[other]; ok {
			return compareSeq(o.seq, seq)
		}
		return -1
	})
	s.rounds[round] = slices.Insert(open, i, id)
}

// evict forgets keys older than the retention window, and the oldest keys
// beyond MaxKeys, moving the horizon past them.
func (s *State) evict(now time.Time) {
	cutoff := instantOf(now.Add(-s.limits.Retention))
	for s.fifoHead < len(s.fifo) {
		e := s.fifo[s.fifoHead]
		if len(s.fifo)-s.fifoHead <= s.limits.MaxKeys && e.at >= cutoff {
			break
		}
		s.fifo[s.fifoHead] = fifoEntry{}
		s.fifoHead++
		if e.tomb {
			if seq, ok := s.tombs[e.id]; ok && seq == e.seq && !s.isRecalled(e.id, true) {
				delete(s.tombs, e.id)
			}
		} else if rec, ok := s.recs[e.id]; ok && rec.seq == e.seq && !s.isRecalled(e.id, false) {
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
// the rounds of those bets (see the Store's Lookup). What the store does not
// hold is remembered too (noTx, absent), so Apply can decide without asking
// again. Keys of ids still in memory are kept there until Recall
// forgets what it brought back, so the next Apply cannot evict them before
// it uses them (after a reload, the keys a refused write collided with may
// still be in memory but about to be evicted).
func (s *State) Recall(ids []string, evs []Event) {
	// Events this state has not applied (a stale copy of the wallet) cannot
	// decide anything here.
	evs = slices.DeleteFunc(slices.Clone(evs), func(ev Event) bool { return ev.Seq > s.version })
	slices.SortFunc(evs, func(a, b Event) int { return compareSeq(a.Seq, b.Seq) })
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	if len(s.recalled) > maxRecalled {
		s.forgetRecalled()
	}
	if s.recalled == nil {
		s.recalled = make(map[recalledKey]struct{})
	}
	if s.absent == nil || len(s.noTx) > maxRecalled {
		s.noTx = make(map[string]struct{})
		s.absent = make(map[string]struct{})
	}
	foundTx, foundTomb := make(map[string]bool), make(map[string]bool)
	for _, id := range ids {
		if _, ok := s.recs[id]; ok {
			foundTx[id] = true
			s.recalled[recalledKey{id: id}] = struct{}{}
		}
		if _, ok := s.tombs[id]; ok {
			foundTomb[id] = true
			s.recalled[recalledKey{id: id, tomb: true}] = struct{}{}
		}
	}
	for i, ev := range evs {
		if ev.Kind == KindRollback && ev.Tombstone && want[ev.Ref] {
			foundTomb[ev.Ref] = true
			if _, ok := s.tombs[ev.Ref]; !ok {
				s.tombs[ev.Ref] = ev.Seq
				s.recalled[recalledKey{id: ev.Ref, tomb: true}] = struct{}{}
			}
		}
		if !want[ev.TxID] {
			continue
		}
		foundTx[ev.TxID] = true
		if _, ok := s.recs[ev.TxID]; ok {
			continue
		}
		r := recordOf(&ev)
		rec := &r
		if ev.Kind == KindBet {
			rec.bet = betFate(ev, evs[i+1:])
		}
		s.recs[ev.TxID] = rec
		s.recalled[recalledKey{id: ev.TxID}] = struct{}{}
		if rec.bet == betOpen {
			// An open bet joins its round again, in sequence order, so a
			// later round win settles it as it would have in a complete wallet.
			s.addOpen(ev.TxID, rec.round, rec.seq)
		}
	}
	for _, id := range ids {
		if !foundTx[id] {
			s.noTx[id] = struct{}{}
			if !foundTomb[id] {
				s.absent[id] = struct{}{}
			}
		}
	}
}

func (s *State) isRecalled(id string, tomb bool) bool {
	if len(s.recalled) == 0 {
		return false
	}
	_, ok := s.recalled[recalledKey{id: id, tomb: tomb}]
	return ok
}

// forgetRecalled drops the keys Recall brought back or kept, once their own
// fifo entries are gone (the others stay until eviction reaches them).
func (s *State) forgetRecalled() {
	for k := range s.recalled {
		if k.tomb {
			if seq, ok := s.tombs[k.id]; ok && seq < s.horizon {
				delete(s.tombs, k.id)
			}
			continue
		}
		if rec, ok := s.recs[k.id]; ok && rec.seq < s.horizon {
			if rec.bet == betOpen {
				s.dropOpen(k.id, rec.round)
			}
			delete(s.recs, k.id)
		}
	}
	clear(s.recalled)
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
