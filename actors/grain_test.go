package actors

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/walletd/walletd/actors/walletpb"
	"github.com/walletd/walletd/wallet"
)

// The wallet actor as a cluster grain, without a cluster: grains are
// spawned by name on a plain actor system, and their identity is the
// wallet "p1" whatever their name, so a test can run two activations of one
// wallet side by side, as a split brain does.

type grainHarness struct {
	t      *testing.T
	system *actor.ActorSystem
	e      *Engine
	gate   atomic.Pointer[error]
}

func newGrainHarness(t *testing.T, st Store, cfg Config) *grainHarness {
	h := &grainHarness{t: t, system: actor.NewActorSystem()}
	h.e = NewGrainEngine(h.system, st, cfg, func(actor.Context) string { return "p1" }, func() error {
		if err := h.gate.Load(); err != nil {
			return *err
		}
		return nil
	})
	t.Cleanup(h.system.Shutdown)
	return h
}

func (h *grainHarness) spawn(name string) *actor.PID {
	h.t.Helper()
	pid, err := h.system.Root.SpawnNamed(actor.PropsFromProducer(h.e.GrainProducer()), name)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = h.system.Root.PoisonFuture(pid).Wait() })
	return pid
}

func (h *grainHarness) call(pid *actor.PID, c *walletpb.WalletCall) *walletpb.WalletReply {
	h.t.Helper()
	v, err := h.system.Root.RequestFuture(pid, c, 5*time.Second).Result()
	if err != nil {
		h.t.Fatalf("call %v: %v", c, err)
	}
	rep, ok := v.(*walletpb.WalletReply)
	if !ok {
		h.t.Fatalf("reply %T", v)
	}
	return rep
}

func (h *grainHarness) apply(pid *actor.PID, cmd wallet.Command) (wallet.Result, error) {
	h.t.Helper()
	rep := h.call(pid, walletpb.ApplyCall("p1", cmd, "rid"))
	res, err := rep.Result()
	if err != nil {
		h.t.Fatalf("decode %v: %v", rep, err)
	}
	if rep.GetRetry() {
		return res, errRetryElsewhere
	}
	return res, rep.Err()
}

func TestGrainServesProtoCalls(t *testing.T) {
	st := newMemStore()
	h := newGrainHarness(t, st, Config{})
	pid := h.spawn("g1")

	rep := h.call(pid, walletpb.OpenCall("p1", wallet.Currency{Code: "KWD", Minor: 3}, "r1"))
	if rep.Err() != nil || !rep.GetCreated() {
		t.Fatalf("open: %v", rep)
	}
	id, c, bal, ver, err := rep.View()
	if err != nil || id != "p1" || c.Code != "KWD" || c.Minor != 3 || bal.String() != "0.000" || ver != 0 {
		t.Fatalf("view: %s %v %s %d %v", id, c, bal, ver, err)
	}
	if rep := h.call(pid, walletpb.OpenCall("p1", eur, "r2")); wallet.ErrorCode(rep.Err()) != wallet.CodeCurrencyMismatch {
		t.Fatalf("open in another currency: %v", rep)
	}
	res, err := h.apply(pid, deposit("d1", "12.5"))
	if err != nil || res.Balance.String() != "12.500" || res.Amount.String() != "12.500" || res.Version != 1 || res.Outcome != wallet.OutcomeApplied || res.At.IsZero() {
		t.Fatalf("deposit: %+v %v", res, err)
	}
	if res, err := h.apply(pid, deposit("d1", "12.5")); err != nil || !res.Duplicate || res.Version != 1 {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if _, err := h.apply(pid, bet("b1", "r", "100")); wallet.ErrorCode(err) != wallet.CodeInsufficientFunds {
		t.Fatalf("bet beyond the balance: %v", err)
	}
	if rep := h.call(pid, walletpb.GetCall("p1", "r3")); rep.Err() != nil || rep.GetBalance() != "12.500" || rep.GetVersion() != 1 {
		t.Fatalf("get: %v", rep)
	}
	if n := len(st.journal("p1")); n != 1 {
		t.Fatalf("journal has %d events", n)
	}
}

// TestGrainStaleActivationIsFenced: two live activations of one wallet (what
// a stalled cluster member leaves behind). Each write of the stale one is
// fenced by the store; it reloads and decides again, so no tx_id is applied
// twice, the journal has no gap, and no success is answered before its own
// commit.
func TestGrainStaleActivationIsFenced(t *testing.T) {
	st := newMemStore()
	h := newGrainHarness(t, st, Config{})
	a, b := h.spawn("a"), h.spawn("b")
	if rep := h.call(a, walletpb.OpenCall("p1", eur, "")); rep.Err() != nil {
		t.Fatal(rep)
	}
	mustRes := func(pid *actor.PID, cmd wallet.Command, version uint64, dup bool) {
		t.Helper()
		res, err := h.apply(pid, cmd)
		if err != nil || res.Version != version || res.Duplicate != dup {
			t.Fatalf("%s %s: %+v %v; want version %d duplicate %v", pid.Id, cmd.TxID, res, err, version, dup)
		}
	}
	mustRes(a, deposit("d1", "10"), 1, false)
	mustRes(b, deposit("d2", "10"), 2, false) // b loads at 1
	mustRes(a, deposit("d3", "10"), 3, false) // a is stale at 1: fenced, reloads, applies at 3
	mustRes(b, deposit("d3", "10"), 3, true)  // b is stale at 2: fenced on d3's key, recalls it
	mustRes(a, deposit("d2", "10"), 2, true)  // a knows d2 since its reload
	mustRes(b, bet("b1", "r1", "5"), 4, false)
	// a is stale again and refuses nothing it should not: the bet is there.
	if res, err := h.apply(a, wallet.Command{Kind: wallet.KindWin, TxID: "w1", RoundID: "r1", Ref: "b1", Amount: "7"}); err != nil || res.Version != 5 {
		t.Fatalf("win on the stale activation: %+v %v", res, err)
	}
	// Refusals that rest on absence are checked against the store first.
	mustRes(b, wallet.Command{Kind: wallet.KindWithdraw, TxID: "x1", Amount: "30"}, 6, false) // b: stale at 4, fenced, reloads
	if _, err := h.apply(a, wallet.Command{Kind: wallet.KindWithdraw, TxID: "x2", Amount: "5"}); wallet.ErrorCode(err) != wallet.CodeInsufficientFunds {
		t.Fatalf("a withdrawal beyond the balance on the stale activation: %v", err) // a believed 32
	}
	evs := st.journal("p1")
	seen := map[string]bool{}
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) || seen[ev.TxID] {
			t.Fatalf("journal %d: seq %d tx %s (gap or double)", i, ev.Seq, ev.TxID)
		}
		seen[ev.TxID] = true
	}
	if len(evs) != 6 || evs[5].BalanceAfter.String() != "2.00" {
		t.Fatalf("journal: %d events, last balance %s", len(evs), evs[len(evs)-1].BalanceAfter)
	}
}

// TestGrainStaleAbsenceIsChecked: a stale activation that believes the
// wallet does not exist does not say so once it does.
func TestGrainStaleAbsenceIsChecked(t *testing.T) {
	st := newMemStore()
	h := newGrainHarness(t, st, Config{})
	a, b := h.spawn("a"), h.spawn("b")
	if rep := h.call(a, walletpb.GetCall("p1", "")); wallet.ErrorCode(rep.Err()) != wallet.CodeWalletNotFound {
		t.Fatalf("get before open: %v", rep)
	}
	if rep := h.call(b, walletpb.OpenCall("p1", eur, "")); rep.Err() != nil || !rep.GetCreated() {
		t.Fatalf("open: %v", rep)
	}
	if _, err := h.apply(b, deposit("d1", "3")); err != nil {
		t.Fatal(err)
	}
	if res, err := h.apply(a, bet("b1", "r1", "1")); err != nil || res.Version != 2 || res.Balance.String() != "2.00" {
		t.Fatalf("bet on the activation that saw no wallet: %+v %v", res, err)
	}
}

// TestGrainGateDecidesNothing: while the member's standing is not
// confirmed, a grain answers retry and applies nothing.
func TestGrainGateDecidesNothing(t *testing.T) {
	st := newMemStore()
	h := newGrainHarness(t, st, Config{})
	pid := h.spawn("g")
	if rep := h.call(pid, walletpb.OpenCall("p1", eur, "")); rep.Err() != nil {
		t.Fatal(rep)
	}
	unconfirmed := errors.New("unconfirmed")
	h.gate.Store(&unconfirmed)
	if _, err := h.apply(pid, deposit("d1", "1")); err != errRetryElsewhere {
		t.Fatalf("apply behind a closed gate: %v", err)
	}
	if rep := h.call(pid, walletpb.GetCall("p1", "")); !rep.GetRetry() || rep.GetVersion() != 0 {
		t.Fatalf("get behind a closed gate: %v", rep)
	}
	h.gate.Store(nil)
	if res, err := h.apply(pid, deposit("d1", "1")); err != nil || res.Duplicate || res.Version != 1 {
		t.Fatalf("apply after the gate opened: %+v %v", res, err)
	}
}

// TestGrainStoppingAnswersRetry: a grain stopped while it holds requests (a
// write in flight, more queued) tells every caller to retry; none is left
// waiting, and a retry with the same tx_id cannot apply twice.
func TestGrainStoppingAnswersRetry(t *testing.T) {
	st := newMemStore()
	h := newGrainHarness(t, st, Config{})
	pid := h.spawn("g")
	if rep := h.call(pid, walletpb.OpenCall("p1", eur, "")); rep.Err() != nil {
		t.Fatal(rep)
	}
	st.set(func(s *memStore) { s.delay = 300 * time.Millisecond })
	var futures []*actor.Future
	for _, tx := range []string{"d1", "d2", "d3"} {
		futures = append(futures, h.system.Root.RequestFuture(pid, walletpb.ApplyCall("p1", deposit(tx, "1"), ""), 5*time.Second))
	}
	time.Sleep(50 * time.Millisecond) // d1 is being written, d2 and d3 wait
	h.system.Root.Stop(pid)
	for i, f := range futures {
		v, err := f.Result()
		if err != nil {
			t.Fatalf("call %d: no answer: %v", i, err)
		}
		if rep := v.(*walletpb.WalletReply); !rep.GetRetry() || wallet.ErrorCode(rep.Err()) != wallet.CodeUnavailable {
			t.Fatalf("call %d: %v", i, rep)
		}
	}
	st.set(func(s *memStore) { s.delay = 0 })
	// The next activation answers the retries: d1 committed (duplicate) or not.
	next := h.spawn("g2")
	for _, tx := range []string{"d1", "d2", "d3"} {
		if _, err := h.apply(next, deposit(tx, "1")); err != nil {
			t.Fatalf("retry %s: %v", tx, err)
		}
	}
	if n := len(st.journal("p1")); n != 3 {
		t.Fatalf("journal has %d events, want 3", n)
	}
}

// TestGrainEngineRefusesLocalCalls: a grain engine has no local directory.
func TestGrainEngineRefusesLocalCalls(t *testing.T) {
	h := newGrainHarness(t, newMemStore(), Config{})
	if _, err := h.e.Get(t.Context(), "p1"); wallet.ErrorCode(err) != wallet.CodeUnavailable {
		t.Fatalf("local call on a grain engine: %v", err)
	}
}
