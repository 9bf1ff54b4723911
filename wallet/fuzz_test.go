package wallet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The fuzz input is a header and then 3 bytes per command, over a small
// alphabet so that retries, conflicts, tombstones and settlements happen:
//
//	data[0]  currency (%3: EUR JPY KWD); bits 2-3: MaxKeys-1 of the limited
//	         wallet; bits 4-5: how often its store snapshots (0: never)
//	data[1]  after how many commands to take the snapshot of the tail check
//	b0       bits 0-2 kind (deposit withdraw bet bet win win rollback rollback);
//	         bits 3-4 clock advance (1s 1m 20m 61m); bit 5 currency set,
//	         bit 6 to another currency; bit 7 ExtraZeros
//	b1       bits 0-2 tx_id t0..t7; bit 6 set: a ref, t0..t7 from bits 3-5
//	b2       bits 0-2 amount; bits 3-4 round ("" r1 r2 r3)
var (
	fuzzKinds    = []Kind{KindDeposit, KindWithdraw, KindBet, KindBet, KindWin, KindWin, KindRollback, KindRollback}
	fuzzAdvance  = []time.Duration{time.Second, time.Minute, 20 * time.Minute, 61 * time.Minute}
	fuzzIDs      = []string{"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"}
	fuzzRounds   = []string{"", "r1", "r2", "r3"}
	fuzzCurrency = []Currency{eur, jpy, kwd}
	fuzzAmounts  = map[string][]string{
		"EUR": {"0", "1", "2.5", "10", "0.01", "100", "1.234", "7.000000"},
		"JPY": {"0", "1", "3", "10", "25", "100", "1.5", "7.000000"},
		"KWD": {"0", "0.001", "1.5", "10", "0.25", "100", "1.2345", "7.000000"},
	}
)

const fuzzMaxSteps = 80

type fuzzStep struct {
	cmd Command
	adv time.Duration
}

type fuzzCase struct {
	c         Currency
	limits    Limits
	snapEvery int
	snapAt    int
	steps     []fuzzStep
}

func decodeFuzz(data []byte) (fc fuzzCase, ok bool) {
	if len(data) < 2 {
		return fc, false
	}
	fc.c = fuzzCurrency[int(data[0])%3]
	fc.limits = Limits{Retention: time.Hour, MaxKeys: 1 + int(data[0]>>2)&3}
	fc.snapEvery = int(data[0]>>4) & 3
	body := data[2:]
	for i := 0; i+3 <= len(body) && len(fc.steps) < fuzzMaxSteps; i += 3 {
		b0, b1, b2 := body[i], body[i+1], body[i+2]
		cmd := Command{
			Kind:       fuzzKinds[b0&7],
			TxID:       fuzzIDs[b1&7],
			Amount:     fuzzAmounts[fc.c.Code][b2&7],
			RoundID:    fuzzRounds[(b2>>3)&3],
			ExtraZeros: b0&0x80 != 0,
		}
		if cmd.Kind == KindBet {
			cmd.GameID = "g"
		}
		if b1&0x40 != 0 {
			cmd.Ref = fuzzIDs[(b1>>3)&7]
		}
		if b0&0x20 != 0 {
			cmd.Currency = fc.c.Code
			if b0&0x40 != 0 {
				cmd.Currency = "USD"
			}
		}
		fc.steps = append(fc.steps, fuzzStep{cmd: cmd, adv: fuzzAdvance[(b0>>3)&3]})
	}
	fc.snapAt = int(data[1]) % (len(fc.steps) + 1)
	return fc, true
}

// model is an independent, naive reading of wallet-semantics.md: it keeps
// everything forever and decides each rule in the order the spec lists it.
type model struct {
	c     Currency
	bal   Amount
	ver   uint64
	txs   map[string]mtx
	bets  map[string]*mbet
	order []string // bets in arrival order
	tombs map[string]bool
}

type mtx struct {
	kind       Kind
	amount     Amount
	round, ref string
	seq        uint64
	at         time.Time
}

type mbet struct {
	round  string
	amount Amount
	state  betState
}

type answer struct {
	code    Code
	out     Outcome
	amount  string
	balance string
	version uint64
	settled []string
}

func newModel(c Currency) *model {
	return &model{c: c, bal: Zero(c), txs: map[string]mtx{}, bets: map[string]*mbet{}, tombs: map[string]bool{}}
}

func (m *model) refuse(code Code) answer { return answer{code: code} }

func (m *model) apply(cmd Command, now time.Time) answer {
	switch {
	case cmd.Currency != "" && cmd.Currency != m.c.Code:
		return m.refuse(CodeCurrencyMismatch)
	case cmd.Kind == KindBet && cmd.RoundID == "",
		cmd.Kind == KindRollback && cmd.Ref == "",
		cmd.Ref != "" && cmd.Ref == cmd.TxID,
		cmd.Ref != "" && cmd.Kind != KindWin && cmd.Kind != KindRollback:
		return m.refuse(CodeBadRequest)
	}
	amount := Zero(m.c)
	if cmd.Kind != KindRollback {
		var err error
		if cmd.ExtraZeros {
			amount, err = ParseAmountExact(cmd.Amount, m.c)
		} else {
			amount, err = ParseAmount(cmd.Amount, m.c)
		}
		if err != nil {
			return m.refuse(CodeInvalidAmount)
		}
	}
	// Idempotency first: the same tx_id is a retry or a conflict.
	if tx, ok := m.txs[cmd.TxID]; ok {
		same := tx.kind == cmd.Kind && tx.ref == cmd.Ref
		if cmd.Kind != KindRollback {
			same = same && tx.amount.Cmp(amount) == 0 && tx.round == cmd.RoundID
		}
		if !same {
			return m.refuse(CodeTxConflict)
		}
		return answer{out: OutcomeDuplicate, amount: tx.amount.String(), balance: m.bal.String(), version: tx.seq}
	}
	credit := func(a Amount, round string, settled []string, out Outcome) answer {
		m.bal = m.bal.Add(a)
		return m.commit(cmd, a, round, settled, out, now)
	}
	switch cmd.Kind {
	case KindDeposit:
		if amount.IsZero() {
			return m.refuse(CodeInvalidAmount)
		}
		return credit(amount, cmd.RoundID, nil, OutcomeApplied)
	case KindWithdraw, KindBet:
		if cmd.Kind == KindWithdraw && amount.IsZero() {
			return m.refuse(CodeInvalidAmount)
		}
		if cmd.Kind == KindBet && m.tombs[cmd.TxID] {
			return m.refuse(CodeBetRolledBack)
		}
		if amount.Cmp(m.bal) > 0 {
			return m.refuse(CodeInsufficientFunds)
		}
		m.bal = m.bal.Sub(amount)
		if cmd.Kind == KindBet {
			m.bets[cmd.TxID] = &mbet{round: cmd.RoundID, amount: amount, state: betOpen}
			m.order = append(m.order, cmd.TxID)
		}
		return m.commit(cmd, amount, cmd.RoundID, nil, OutcomeApplied, now)
	case KindWin:
		if cmd.Ref != "" {
			tx, ok := m.txs[cmd.Ref]
			switch {
			case !ok && m.tombs[cmd.Ref]:
				return m.refuse(CodeBetRolledBack)
			case !ok:
				return m.refuse(CodeBetNotFound)
			case tx.kind != KindBet:
				return m.refuse(CodeBadRequest)
			}
			b := m.bets[cmd.Ref]
			switch {
			case b.state == betRolledBack:
				return m.refuse(CodeBetRolledBack)
			case b.state == betSettled:
				return m.refuse(CodeBetAlreadySettled)
			case cmd.RoundID != "" && cmd.RoundID != b.round:
				return m.refuse(CodeBadRequest)
			}
			b.state = betSettled
			return credit(amount, cmd.RoundID, []string{cmd.Ref}, OutcomeApplied)
		}
		var settled []string
		if cmd.RoundID != "" {
			for _, id := range m.order {
				if b := m.bets[id]; b.round == cmd.RoundID && b.state == betOpen {
					b.state = betSettled
					settled = append(settled, id)
				}
			}
		}
		return credit(amount, cmd.RoundID, settled, OutcomeApplied)
	default: // rollback
		tx, ok := m.txs[cmd.Ref]
		switch {
		case !ok && m.tombs[cmd.Ref]:
			return answer{out: OutcomeAlreadyRolledBack, amount: Zero(m.c).String(), balance: m.bal.String(), version: m.ver, settled: []string{cmd.Ref}}
		case !ok:
			m.tombs[cmd.Ref] = true
			return credit(Zero(m.c), cmd.RoundID, nil, OutcomeTombstoned)
		case tx.kind != KindBet:
			return m.refuse(CodeBadRequest)
		}
		b := m.bets[cmd.Ref]
		switch b.state {
		case betSettled:
			return m.refuse(CodeBetAlreadySettled)
		case betRolledBack:
			return answer{out: OutcomeAlreadyRolledBack, amount: Zero(m.c).String(), balance: m.bal.String(), version: m.ver, settled: []string{cmd.Ref}}
		}
		b.state = betRolledBack
		return credit(b.amount, b.round, []string{cmd.Ref}, OutcomeApplied)
	}
}

func (m *model) commit(cmd Command, a Amount, round string, settled []string, out Outcome, now time.Time) answer {
	m.ver++
	m.txs[cmd.TxID] = mtx{kind: cmd.Kind, amount: a, round: round, ref: cmd.Ref, seq: m.ver, at: now}
	return answer{out: out, amount: a.String(), balance: m.bal.String(), version: m.ver, settled: settled}
}

func answerOf(res Result, err error) answer {
	if err != nil {
		return answer{code: ErrorCode(err)}
	}
	return answer{out: res.Outcome, amount: res.Amount.String(), balance: res.Balance.String(), version: res.Version, settled: res.Settled}
}

func sameModelAnswer(got, want answer) bool {
	if len(got.settled) == 0 && len(want.settled) == 0 {
		got.settled, want.settled = nil, nil
	}
	return reflect.DeepEqual(got, want)
}

// checkRun applies a decoded case to a complete wallet, the model and a
// wallet with limited memory (driven like the actor drives it), checking
// every invariant after every command.
func checkRun(t *testing.T, fc fuzzCase) {
	c := fc.c
	s := New(c, DefaultLimits)
	m := newModel(c)
	d := newDriver(t, c, fc.limits, fc.snapEvery)
	var journal []Event
	seqOf := map[string]uint64{}
	var snap *Snapshot
	snapLen := 0
	now := t0
	for i, st := range fc.steps {
		if i == fc.snapAt {
			sn := s.Snapshot()
			snap, snapLen = &sn, len(journal)
		}
		now = now.Add(st.adv)
		cmd := st.cmd
		before := viewOf(s)
		res, ev, err := s.Apply(cmd, now)

		// The complete wallet never forgets, so never asks the store.
		var need *NeedLookup
		if errors.As(err, &need) || !s.Complete() {
			t.Fatalf("step %d %+v: a complete wallet needs a lookup: %v", i, cmd, err)
		}
		// The model agrees.
		if got, want := answerOf(res, err), m.apply(cmd, now); !sameModelAnswer(got, want) {
			t.Fatalf("step %d %+v:\n wallet %+v (%v)\n model  %+v", i, cmd, got, err, want)
		}
		switch {
		case err != nil:
			if ErrorCode(err) == CodeInternal || ev != nil {
				t.Fatalf("step %d: refusal %v with event %+v", i, err, ev)
			}
			if after := viewOf(s); !reflect.DeepEqual(before, after) {
				t.Fatalf("step %d: refusal %v changed the wallet", i, err)
			}
			// Not recorded: asking again is decided afresh, alike.
			if _, ev2, err2 := s.Apply(cmd, now); ErrorCode(err2) != ErrorCode(err) || ev2 != nil {
				t.Fatalf("step %d: asked again: %v, then %v", i, err, err2)
			}
		case ev == nil:
			if res.Outcome != OutcomeDuplicate && res.Outcome != OutcomeAlreadyRolledBack {
				t.Fatalf("step %d: outcome %s without event", i, res.Outcome)
			}
			if after := viewOf(s); !reflect.DeepEqual(before, after) {
				t.Fatalf("step %d: %s changed the wallet", i, res.Outcome)
			}
			if res.Balance.String() != before.Balance {
				t.Fatalf("step %d: %s answers balance %s, wallet holds %s", i, res.Outcome, res.Balance, before.Balance)
			}
			if res.Outcome == OutcomeDuplicate && (res.Version != seqOf[cmd.TxID] || !res.Duplicate) {
				t.Fatalf("step %d: duplicate answers version %d, original is %d", i, res.Version, seqOf[cmd.TxID])
			}
			if res.Outcome == OutcomeAlreadyRolledBack && (res.Version != before.Version || !res.Amount.IsZero()) {
				t.Fatalf("step %d: already rolled back: %+v", i, resultOf(res))
			}
		default:
			if ev.Seq != before.Version+1 || s.Version() != ev.Seq || res.Version != ev.Seq {
				t.Fatalf("step %d: seq %d after version %d (now %d)", i, ev.Seq, before.Version, s.Version())
			}
			if _, seen := seqOf[ev.TxID]; seen {
				t.Fatalf("step %d: tx_id %s journaled twice", i, ev.TxID)
			}
			seqOf[ev.TxID] = ev.Seq
			if ev.BalanceAfter.Cmp(s.Balance()) != 0 || res.Balance.Cmp(s.Balance()) != 0 || ev.Amount.Cmp(res.Amount) != 0 {
				t.Fatalf("step %d: event %+v, result %+v, balance %s", i, eventOf(*ev), resultOf(res), s.Balance())
			}
			journal = append(journal, *ev)
		}
		if s.Balance().Sign() < 0 {
			t.Fatalf("step %d: negative balance %s", i, s.Balance())
		}
		if sum := sumEvents(c, journal); sum.Cmp(s.Balance()) != 0 || sum.String() != s.Balance().String() {
			t.Fatalf("step %d: journal sums to %s, wallet holds %s", i, sum, s.Balance())
		}
		if uint64(len(journal)) != s.Version() {
			t.Fatalf("step %d: %d events, version %d", i, len(journal), s.Version())
		}
		full, rerr := Rebuild(c, nil, journal, DefaultLimits)
		if rerr != nil {
			t.Fatalf("step %d: rebuild: %v", i, rerr)
		}
		sameView(t, "rebuilt from the journal", full, s)
		if snap != nil {
			part, rerr := Rebuild(c, snap, journal[snapLen:], DefaultLimits)
			if rerr != nil {
				t.Fatalf("step %d: snapshot at %d + tail: %v", i, snapLen, rerr)
			}
			sameView(t, "snapshot + tail", part, s)
		}

		// The wallet with limited memory answers alike.
		gr, gev, gerr := d.apply(cmd, now)
		sameAnswer(t, i, cmd, gr, gev, gerr, res, ev, err)
		if d.s.Balance().Cmp(s.Balance()) != 0 || d.s.Version() != s.Version() {
			t.Fatalf("step %d: limited wallet at %s v%d, complete at %s v%d", i, d.s.Balance(), d.s.Version(), s.Balance(), s.Version())
		}
	}
	// The limited wallet's journal rebuilds the complete wallet.
	re, err := Rebuild(c, nil, d.st.events, DefaultLimits)
	if err != nil {
		t.Fatalf("rebuild of the limited journal: %v", err)
	}
	sameView(t, "limited journal", re, s)
}

// fuzzInput encodes a header, the snapshot point and steps (see decodeFuzz).
func fuzzInput(header, snapAt byte, steps ...[3]byte) []byte {
	b := []byte{header, snapAt}
	for _, st := range steps {
		b = append(b, st[:]...)
	}
	return b
}

const noRef = 0xff

// fuzzCmd encodes one command: kind index (fuzzKinds), tx and ref indexes
// (fuzzIDs; noRef for none), amount index, round index and clock advance.
func fuzzCmd(kind, tx, ref, amount, round, adv byte) [3]byte {
	b1 := tx
	if ref != noRef {
		b1 |= 0x40 | ref<<3
	}
	return [3]byte{kind | adv<<3, b1, amount | round<<3}
}

// fuzzSeeds are hand-made histories; testdata/fuzz/FuzzApply holds them too
// (WALLET_WRITE_CORPUS=1 go test -run TestWriteFuzzCorpus rewrites it).
var fuzzSeeds = map[string][]byte{
	"settle-twice": fuzzInput(0, 3,
		fuzzCmd(0, 0, noRef, 5, 0, 0), // deposit t0 100
		fuzzCmd(2, 1, noRef, 3, 1, 0), // bet t1 10 in r1
		fuzzCmd(4, 2, 1, 2, 0, 0),     // win t2 naming t1
		fuzzCmd(4, 3, 1, 2, 0, 0),     // second win naming t1: BET_ALREADY_SETTLED
		fuzzCmd(6, 4, 1, 0, 0, 0),     // rollback of a settled bet: BET_ALREADY_SETTLED
		fuzzCmd(4, 2, 1, 2, 0, 0),     // retry of t2: duplicate
		fuzzCmd(4, 2, 1, 3, 0, 0),     // t2 with another amount: TX_CONFLICT
	),
	"tombstone": fuzzInput(0x04, 1,
		fuzzCmd(6, 0, 1, 0, 0, 0),     // rollback t0 of t1: tombstone
		fuzzCmd(0, 2, noRef, 5, 0, 0), // deposit
		fuzzCmd(2, 1, noRef, 1, 1, 3), // bet t1 after its tombstone, an hour later
		fuzzCmd(6, 3, 1, 0, 0, 0),     // second rollback of t1: already rolled back
		fuzzCmd(6, 0, 1, 0, 0, 3),     // retry of t0, forgotten by the limited wallet
		fuzzCmd(4, 4, 1, 1, 0, 0),     // win naming t1: BET_ROLLED_BACK
	),
	"round-win": fuzzInput(0x15, 2,
		fuzzCmd(0, 0, noRef, 5, 0, 0),
		fuzzCmd(2, 1, noRef, 1, 1, 0),
		fuzzCmd(2, 2, noRef, 2, 1, 0),
		fuzzCmd(2, 3, noRef, 1, 2, 0),
		fuzzCmd(4, 4, noRef, 3, 1, 3), // round win r1, an hour later
		fuzzCmd(4, 5, 2, 3, 0, 0),     // win naming t2: settled by the round
		fuzzCmd(6, 6, 3, 0, 0, 3),     // rollback t3
		fuzzCmd(0, 0, noRef, 5, 0, 0), // retry t0
	),
	"forgotten-retries": fuzzInput(0x01, 4, // JPY, MaxKeys 1, no snapshots
		fuzzCmd(0, 0, noRef, 5, 0, 0), // deposit 100
		fuzzCmd(1, 1, noRef, 5, 0, 1), // withdraw 100
		fuzzCmd(2, 2, noRef, 0, 1, 1), // free bet in r1
		fuzzCmd(0, 3, noRef, 1, 0, 3), // deposit 1, an hour later
		fuzzCmd(1, 1, noRef, 5, 0, 0), // retry of the withdraw without funds: duplicate
		fuzzCmd(0, 1, noRef, 5, 0, 0), // t1 as a deposit: TX_CONFLICT
		fuzzCmd(4, 4, 2, 0, 2, 0),     // win naming t2 in the wrong round
		fuzzCmd(4, 5, noRef, 0, 1, 0), // round win r1 settles the recalled t2
		fuzzCmd(6, 6, 2, 0, 0, 0),     // rollback of t2: settled
		fuzzCmd(0x87, 7, 4, 0, 0, 0),  // rollback t7 of t4 (a refused win): tombstone
	),
	"conflicts-and-currency": fuzzInput(0x22, 0, // KWD
		fuzzCmd(0x20, 0, noRef, 3, 0, 0), // deposit with the wallet's currency
		fuzzCmd(0x60, 1, noRef, 3, 0, 0), // another currency
		fuzzCmd(0x80, 2, noRef, 7, 0, 0), // 7.000000 with extra zeros allowed
		fuzzCmd(0, 3, noRef, 7, 0, 0),    // 7.000000 without: INVALID_AMOUNT
		fuzzCmd(0, 4, noRef, 6, 0, 0),    // too many digits
		fuzzCmd(2, 5, noRef, 2, 0, 0),    // bet without a round
		fuzzCmd(0, 6, 5, 1, 0, 0),        // deposit with a ref
		fuzzCmd(4, 7, 7, 1, 0, 0),        // win naming itself
		fuzzCmd(1, 0, noRef, 3, 0, 0),    // t0 as a withdraw: TX_CONFLICT
		fuzzCmd(0, 0, noRef, 3, 1, 0),    // t0 with a round: TX_CONFLICT
	),
}

func FuzzApply(f *testing.F) {
	for _, seed := range fuzzSeeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fc, ok := decodeFuzz(data)
		if !ok {
			return
		}
		checkRun(t, fc)
	})
}

func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"0", "12.5", "12.50", "007.10", "1e3", "-1", "", ".5", "1.", "999999999999999999.99", "1000000000000000000", "10.500000", "NaN", "١"} {
		f.Add(s, byte(0))
	}
	f.Fuzz(func(t *testing.T, s string, which byte) {
		c := []Currency{eur, jpy, kwd, clf}[int(which)%4]
		a, err := ParseAmount(s, c)
		want, ok := plainDecimal(s, c, false)
		if (err == nil) != ok {
			t.Fatalf("ParseAmount(%q, %s) = %v, %v; the grammar says %v", s, c.Code, a, err, ok)
		}
		if err != nil {
			if ErrorCode(err) != CodeInvalidAmount {
				t.Fatalf("ParseAmount(%q): %v", s, err)
			}
		} else {
			checkAccepted(t, s, c, a, want)
			// Whatever is exact is exact with extra zeros allowed too.
			if b, err := ParseAmountExact(s, c); err != nil || b.Cmp(a) != 0 {
				t.Fatalf("ParseAmountExact(%q) = %v, %v; ParseAmount said %s", s, b, err, a)
			}
		}
		b, err := ParseAmountExact(s, c)
		want, ok = plainDecimal(s, c, true)
		if (err == nil) != ok {
			t.Fatalf("ParseAmountExact(%q, %s) = %v, %v; the grammar says %v", s, c.Code, b, err, ok)
		}
		if err == nil {
			checkAccepted(t, s, c, b, want)
		}
		// ParseStored never panics either, and reads back what String writes.
		if st, err := ParseStored(s, c); err == nil {
			if back, err := ParseStored(st.String(), c); err != nil || back.Cmp(st) != 0 {
				t.Fatalf("ParseStored(%q) = %s does not read back: %v", s, st, err)
			}
		}
	})
}

func checkAccepted(t *testing.T, s string, c Currency, a Amount, want string) {
	t.Helper()
	got := a.String()
	if got != want {
		t.Fatalf("%q in %s = %s, want %s", s, c.Code, got, want)
	}
	if a.Sign() < 0 {
		t.Fatalf("%q: negative", s)
	}
	back, err := ParseAmount(got, c)
	if err != nil || back.Cmp(a) != 0 || back.String() != got {
		t.Fatalf("%q → %s does not round-trip: %v %v", s, got, back, err)
	}
	stored, err := ParseStored(got, c)
	if err != nil || stored.Cmp(a) != 0 {
		t.Fatalf("%q → %s does not read back as stored: %v", s, got, err)
	}
}

// plainDecimal is the grammar of wallet-api.md, written out by hand: digits,
// optionally a point and digits, at most 18 integer digits (leading zeros
// aside), at most the currency's fraction digits (or any number of trailing
// zeros beyond them when extraZeros). It returns the canonical text.
func plainDecimal(s string, c Currency, extraZeros bool) (string, bool) {
	intPart, frac, hasPoint := strings.Cut(s, ".")
	digits := func(p string) bool {
		for _, r := range p {
			if r < '0' || r > '9' {
				return false
			}
		}
		return true
	}
	if intPart == "" || (hasPoint && frac == "") || !digits(intPart) || !digits(frac) {
		return "", false
	}
	intPart = strings.TrimLeft(intPart, "0")
	if len(intPart) > MaxIntegerDigits {
		return "", false
	}
	if len(frac) > int(c.Minor) {
		if !extraZeros || strings.Trim(frac[c.Minor:], "0") != "" {
			return "", false
		}
		frac = frac[:c.Minor]
	}
	if intPart == "" {
		intPart = "0"
	}
	frac += strings.Repeat("0", int(c.Minor)-len(frac))
	if c.Minor == 0 {
		return intPart, true
	}
	return intPart + "." + frac, true
}

// TestFuzzHarness checks that the harness is not vacuous: the decoder reads
// what the seeds mean, the model refuses a wrong answer, and the limited
// wallet of the seeds goes to the store.
func TestFuzzHarness(t *testing.T) {
	m := newModel(eur)
	m.apply(dep("d1", "10"), t0)
	wrong := answerOf(Result{Outcome: OutcomeApplied, Amount: MinorUnits(1000, eur), Balance: MinorUnits(2000, eur), Version: 3}, nil)
	if right := m.apply(dep("d2", "10"), t0); sameModelAnswer(wrong, right) || right.version != 2 || right.balance != "20.00" {
		t.Fatalf("model: %+v", right)
	}
	fc, ok := decodeFuzz(fuzzSeeds["forgotten-retries"])
	if !ok || len(fc.steps) != 10 || fc.c != jpy || fc.limits.MaxKeys != 1 || fc.snapEvery != 0 || fc.snapAt != 4 {
		t.Fatalf("decoded %+v", fc)
	}
	if got := fc.steps[6].cmd; got != (Command{Kind: KindWin, TxID: "t4", Ref: "t2", Amount: "0", RoundID: "r2"}) {
		t.Fatalf("step 6: %+v", got)
	}
	if got := fc.steps[9]; got.cmd != (Command{Kind: KindRollback, TxID: "t7", Ref: "t4", Amount: "0", ExtraZeros: true}) || got.adv != time.Second {
		t.Fatalf("step 9: %+v", got)
	}
	for name, seed := range fuzzSeeds {
		fc, _ := decodeFuzz(seed)
		d := newDriver(t, fc.c, fc.limits, fc.snapEvery)
		now := t0
		for _, st := range fc.steps {
			now = now.Add(st.adv)
			d.apply(st.cmd, now)
		}
		if name != "conflicts-and-currency" && d.lookups+d.reloads == 0 {
			t.Errorf("seed %s never reaches the store", name)
		}
		t.Run(name, func(t *testing.T) { checkRun(t, fc) })
	}
}

// TestWriteFuzzCorpus writes fuzzSeeds to testdata/fuzz/FuzzApply when
// WALLET_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("WALLET_WRITE_CORPUS") != "1" {
		t.Skip("set WALLET_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzApply")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzApply")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, seed := range fuzzSeeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", seed)
		if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
