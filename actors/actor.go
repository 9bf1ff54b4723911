package actors

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/walletd/walletd/actors/walletpb"
	"github.com/walletd/walletd/wallet"
)

type op uint8

const (
	opOpen op = iota + 1
	opGet
	opApply
)

// request is a call into a wallet actor. answer replies to it: the actor
// calls it exactly once, always from Receive (on the actor's goroutine), and
// it must not block. The local Engine's requests are answered on a buffered
// channel (so the actor never blocks on a caller that gave up waiting); a
// cluster grain's reply func sends a WalletReply to the sender captured in
// Receive.
type request struct {
	op       op
	cmd      wallet.Command
	currency wallet.Currency
	reply    func(reply) // a grain's caller; unused when ch is set
	ch       chan reply  // a local caller waits here (a closure over it was one more allocation)
	tries    int         // how often a store refusal sent it back to the queue
	rid      string      // the HTTP request id, for log lines about this request
}

// answer sends the request's reply; a request is answered once.
func (r *request) answer(rep reply) {
	if r.ch != nil {
		r.ch <- rep
		return
	}
	r.reply(rep)
}

type reply struct {
	view    View
	created bool
	result  wallet.Result
	err     error
}

// answer is a decided reply waiting for the commit it depends on.
type answer struct {
	req   *request
	rep   reply
	wrote bool // the decision put an event (or the wallet's creation) in the batch's write
}

// batch is one write of the wallet: the events to commit and the replies to
// release once they are durable. A batch without events still orders its
// replies after the write in flight, so no reply ever reflects state that is
// not yet committed.
type batch struct {
	write   Write
	answers []answer
	// verify (grains only): the batch writes nothing but answers a refusal
	// that rests on something being absent (the wallet, a bet, funds). A
	// stale activation (a split brain) would refuse on state the wallet's
	// live activation has moved past, and only a write is fenced; so such a
	// batch checks the wallet's version in the store before it answers, and
	// a mismatch is handled like a fenced write.
	verify bool
}

func (b *batch) empty() bool {
	return len(b.answers) == 0 && len(b.write.Events) == 0 && b.write.Create == nil
}

// Internal messages: results of the actor's asynchronous I/O.
type (
	loaded struct {
		gen      uint64
		ld       Loaded
		err      error
		recalled []string
		evs      []wallet.Event
	}
	flushed struct {
		gen uint64
		err error
	}
	lookedUp struct {
		gen uint64
		ids []string
		evs []wallet.Event
		err error
	}
)

type phase uint8

const (
	phaseUnloaded phase = iota // state unknown: load on the next request
	phaseLoading               // a load is in flight; requests wait in queue
	phaseReady                 // state in memory, equal to the store plus `next`
	phaseLookup                // waiting for the store to recall old keys
)

// walletActor owns one wallet. It applies commands one at a time in memory,
// keeps at most one write in flight, gathers everything that arrives
// meanwhile into the next write, and answers callers only after the write
// holding their transaction is committed. It never blocks its mailbox on I/O.
type walletActor struct {
	e  *Engine
	id string

	phase phase
	gen   uint64 // bumped on every reload; stale I/O results are ignored
	st    *wallet.State
	info  *Wallet // nil while the wallet does not exist

	queue     []*request // waiting for the state (loading, lookup)
	inflight  *batch
	next      *batch
	sinceSnap int
	snapOpen  int      // open bets in the last snapshot
	recall    []string // keys the store refused as already journaled (bounded, oldest dropped)
	stopping  bool     // grain: Stopping answered everything held; nothing more is taken

	// Passivation. Proto.Actor's receive timeout stops and restarts a timer
	// on every message; the actor instead notes when it last received one
	// and checks with one timer per idle period.
	lastActive time.Time
	idleTimer  *time.Timer
}

// idleCheck asks the actor whether it has been idle long enough to stop.
type idleCheck struct{}

var idleCheckMsg = &idleCheck{}

func (a *walletActor) Receive(ctx actor.Context) {
	defer func() {
		if p := recover(); p != nil {
			a.e.log.Error("wallet actor panic; state dropped, will reload", "player_id", a.id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			a.failAll(wallet.Errorf(wallet.CodeUnavailable, "internal error; nothing was applied"))
			a.reset()
		}
	}()
	msg := ctx.Message()
	if msg != idleCheckMsg {
		a.lastActive = time.Now()
	}
	switch m := msg.(type) {
	case *actor.Started:
		if a.e.grains != nil {
			// A grain is spawned by the cluster, not by Engine.acquire: its
			// wallet is its cluster identity, known from Started on.
			a.id = a.e.grains.identity(ctx)
		}
		self, system := ctx.Self(), a.e.system
		a.idleTimer = time.AfterFunc(a.e.cfg.IdleTimeout, func() { system.Root.Send(self, idleCheckMsg) })
		a.e.active.Add(1)
	case *actor.Stopping:
		if a.e.grains != nil {
			// Passivation, a handover to another member or shutdown. What
			// this activation holds would otherwise never be answered (its
			// I/O results arrive after it is gone): tell the callers to send
			// again, which reaches the wallet's next activation. A write in
			// flight may still commit; the retry's tx_id then answers
			// duplicate there, never twice.
			a.failAll(errRetryElsewhere)
			a.reset()
			a.stopping = true
		}
	case *actor.Stopped:
		a.idleTimer.Stop()
		a.e.active.Add(-1)
		a.e.cfg.Observer.Passivated()
	case *idleCheck:
		if rest := a.e.cfg.IdleTimeout - time.Since(a.lastActive); rest > 0 {
			a.idleTimer.Reset(rest)
			return
		}
		if a.idle() && (a.e.grains != nil || a.e.forget(a.id, ctx.Self())) {
			// A grain has no local directory to leave: stopping it is the
			// whole passivation, and the cluster forgets its PID.
			ctx.Stop(ctx.Self())
			return
		}
		a.idleTimer.Reset(a.e.cfg.IdleTimeout)
	case *request:
		a.accept(ctx, m)
	case *walletpb.WalletCall:
		a.accept(ctx, a.grainRequest(ctx, m))
	case *loaded:
		if m.gen == a.gen {
			a.onLoaded(ctx, m)
		}
	case *flushed:
		if m.gen == a.gen {
			a.onFlushed(ctx, m.err)
		}
	case *lookedUp:
		if m.gen == a.gen {
			a.onLookedUp(ctx, m)
		}
	}
}

func (a *walletActor) accept(ctx actor.Context, m *request) {
	if a.stopping {
		m.answer(reply{err: errRetryElsewhere})
		return
	}
	if a.held() >= a.e.cfg.MaxPerWallet {
		a.e.cfg.Observer.Overloaded("wallet")
		m.answer(reply{err: wallet.Errorf(wallet.CodeUnavailable, "wallet %s has too many requests in flight; retry shortly", a.id)})
		return
	}
	a.e.cfg.Observer.Queued(a.held())
	a.queue = append(a.queue, m)
	a.drain(ctx)
}

// grainRequest turns a call from the cluster into a request whose reply goes
// back to the caller as a WalletReply. The sender is captured here, inside
// Receive: ctx.Sender() means nothing once Receive has returned, and the
// reply comes from a later Receive (after the commit).
func (a *walletActor) grainRequest(ctx actor.Context, m *walletpb.WalletCall) *request {
	sender, root := ctx.Sender(), a.e.system.Root
	req := &request{rid: m.GetRequestId(), reply: func(r reply) {
		if sender != nil {
			root.Send(sender, toWalletReply(r))
		}
	}}
	switch m.GetOp() {
	case walletpb.Op_OP_OPEN:
		req.op, req.currency = opOpen, m.OpenCurrency()
	case walletpb.Op_OP_GET:
		req.op = opGet
	case walletpb.Op_OP_APPLY:
		req.op, req.cmd = opApply, m.Command()
	default:
		// Decided as an apply of an invalid kind, the wallet refuses it
		// with BAD_REQUEST without touching the state.
		req.op = opApply
	}
	return req
}

// toWalletReply is the wire form of a reply.
func toWalletReply(r reply) *walletpb.WalletReply {
	w := &walletpb.WalletReply{Created: r.created}
	if r.err == errRetryElsewhere {
		w.Retry = true
	}
	w.SetError(r.err)
	if r.view.PlayerID != "" {
		w.SetView(r.view.PlayerID, r.view.Currency, r.view.Balance, r.view.Version)
	}
	if r.result.TxID != "" || r.result.Kind != "" {
		w.SetResult(r.result)
	}
	return w
}

// errRetryElsewhere answers a grain's callers when it cannot decide their
// request where it is. Only grains use it; toWalletReply marks it retry.
var errRetryElsewhere = wallet.Errorf(wallet.CodeUnavailable, "the wallet is moving between cluster members; nothing was decided here, retry with the same tx_id")

func (a *walletActor) idle() bool {
	return a.held() == 0 && a.phase != phaseLoading && a.phase != phaseLookup
}

// held counts the requests this wallet holds in any stage.
func (a *walletActor) held() int {
	n := len(a.queue)
	if a.inflight != nil {
		n += len(a.inflight.answers)
	}
	if a.next != nil {
		n += len(a.next.answers)
	}
	return n
}

// drain decides queued requests while the state is in memory.
func (a *walletActor) drain(ctx actor.Context) {
	switch a.phase {
	case phaseUnloaded:
		a.load(ctx)
		return
	case phaseLoading, phaseLookup:
		return
	}
	for len(a.queue) > 0 && a.phase == phaseReady {
		req := a.queue[0]
		if a.e.grains != nil && a.e.grains.gate != nil {
			if err := a.e.grains.gate(); err != nil {
				// This member's standing in the cluster is not confirmed
				// (it may have stalled and been replaced): its state may be
				// stale, and a refusal or a read decided on it could be
				// wrong even though a write would be fenced. Decide nothing.
				a.queue[0] = nil
				a.queue = a.queue[1:]
				a.next.answers = append(a.next.answers, answer{req: req, rep: reply{err: errRetryElsewhere}})
				continue
			}
		}
		events, created := len(a.next.write.Events), a.next.write.Create != nil
		rep, need := a.decide(req)
		if need != nil {
			a.lookup(ctx, need.IDs)
			return
		}
		a.queue[0] = nil
		a.queue = a.queue[1:]
		wrote := len(a.next.write.Events) > events || (!created && a.next.write.Create != nil)
		a.next.answers = append(a.next.answers, answer{req: req, rep: rep, wrote: wrote})
		if a.e.grains != nil && refusesOnAbsence(rep.err) {
			a.next.verify = true
		}
	}
	if len(a.queue) == 0 {
		a.queue = nil
	}
	a.flush(ctx)
}

// decide applies one request to the in-memory state. The reply waits in
// a.next until everything it depends on is committed.
func (a *walletActor) decide(req *request) (reply, *wallet.NeedLookup) {
	switch req.op {
	case opOpen:
		if a.info == nil {
			now := a.e.cfg.Now()
			a.info = &Wallet{PlayerID: a.id, Currency: req.currency, CreatedAt: now}
			a.st = wallet.New(req.currency, a.e.cfg.Limits)
			a.next.write.Create = a.info
			return reply{view: a.view(), created: true}, nil
		}
		if a.info.Currency != req.currency {
			return reply{err: wallet.Errorf(wallet.CodeCurrencyMismatch, "wallet %s exists in %s", a.id, a.info.Currency.Code)}, nil
		}
		return reply{view: a.view()}, nil
	case opGet:
		if a.info == nil {
			return reply{err: a.notFound()}, nil
		}
		return reply{view: a.view()}, nil
	}
	if a.info == nil {
		return reply{err: a.notFound()}, nil
	}
	res, ev, err := a.st.Apply(req.cmd, a.e.cfg.Now())
	var need *wallet.NeedLookup
	if errors.As(err, &need) {
		return reply{}, need
	}
	if ev != nil {
		a.next.write.Events = append(a.next.write.Events, *ev)
	}
	return reply{result: res, err: err}, nil
}

func (a *walletActor) notFound() error {
	return wallet.Errorf(wallet.CodeWalletNotFound, "wallet %s not found", a.id)
}

func (a *walletActor) view() View {
	return View{PlayerID: a.id, Currency: a.st.Currency(), Balance: a.st.Balance(), Version: a.st.Version()}
}

// flush starts the next write if none is in flight, or releases replies
// that wait for nothing.
func (a *walletActor) flush(ctx actor.Context) {
	if a.inflight != nil || a.next.empty() {
		return
	}
	b := a.next
	a.next = a.newBatch()
	if len(b.write.Events) == 0 && b.write.Create == nil {
		if b.verify {
			a.inflight = b
			a.verify(ctx, b)
			return
		}
		a.release(b)
		return
	}
	a.sinceSnap += len(b.write.Events)
	// A snapshot holds the wallet's open bets, so its cost grows with them:
	// a wallet with thousands of open bets (a busy table's house wallet)
	// snapshotted every SnapshotEvery events spent most of its commits on
	// megabytes of snapshots. Waiting for twice as many events as the last
	// snapshot had open bets keeps the cost per event bounded; activation
	// still replays no more events than a snapshot holds bets, times two.
	if a.sinceSnap >= max(a.e.cfg.SnapshotEvery, 2*a.snapOpen) {
		sn := a.st.Snapshot()
		a.snapOpen = len(sn.OpenBets)
		b.write.Snapshot = &sn
		a.sinceSnap = 0
		a.e.cfg.Observer.Snapshotted()
	}
	a.inflight = b
	self, gen, store, system, w, timeout := ctx.Self(), a.gen, a.e.store, a.e.system, b.write, a.e.cfg.WriteTimeout
	if as, ok := store.(AsyncAppender); ok {
		done := func(err error) { system.Root.Send(self, &flushed{gen: gen, err: err}) }
		if as.AppendAsync(w, time.Now().Add(timeout), done) {
			return
		}
		// The store's queue is full: wait for room off the mailbox.
	}
	go func() {
		// The write is not tied to any caller's context: a caller that gives
		// up must not cancel a commit halfway. Only the write's own bound does.
		c, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		err := store.Append(c, w)
		system.Root.Send(self, &flushed{gen: gen, err: err})
	}()
}

// refusesOnAbsence reports whether err refuses because something is not in
// the wallet's state: wrong if that state is stale.
func refusesOnAbsence(err error) bool {
	switch wallet.ErrorCode(err) {
	case wallet.CodeWalletNotFound, wallet.CodeBetNotFound, wallet.CodeInsufficientFunds:
		return true
	}
	return false
}

// verify checks that the store is where this activation's state is (the
// wallet's existence and version; History's newest row is the version) and
// reports like a write: nil, ErrFenced, or the store's error.
func (a *walletActor) verify(ctx actor.Context, b *batch) {
	self, gen, store, system, id, timeout := ctx.Self(), a.gen, a.e.store, a.e.system, a.id, a.e.cfg.CallTimeout
	exists, version := a.info != nil, b.write.Expected
	go func() {
		c, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		evs, err := store.History(c, id, 0, 1)
		switch {
		case errors.Is(err, ErrNotFound):
			if exists {
				err = ErrFenced
			} else {
				err = nil
			}
		case err != nil:
		case !exists || (len(evs) == 0 && version != 0) || (len(evs) > 0 && evs[0].Seq != version):
			err = ErrFenced
		}
		system.Root.Send(self, &flushed{gen: gen, err: err})
	}()
}

func (a *walletActor) newBatch() *batch {
	return &batch{write: Write{PlayerID: a.id, Expected: a.st.Version()}}
}

func (a *walletActor) release(b *batch) {
	for _, an := range b.answers {
		an.req.answer(an.rep)
	}
}

func (a *walletActor) onFlushed(ctx actor.Context, err error) {
	b := a.inflight
	a.inflight = nil
	if !b.verify || len(b.write.Events) > 0 || b.write.Create != nil {
		a.e.cfg.Observer.Flushed(len(b.write.Events), err)
	}
	if err == nil {
		a.release(b)
		a.flush(ctx)
		return
	}
	// Everything decided since the last commit rests on the failed write:
	// nothing of it may be acknowledged. Refusals that name old keys, or a
	// fence, are answered by retrying on a reloaded state; anything else is
	// an outage and the callers get UNAVAILABLE.
	var exists *KeyExistsError
	retry := errors.As(err, &exists) || errors.Is(err, ErrFenced)
	if exists != nil {
		a.remember(exists.Keys)
	}
	attrs := []any{"player_id", a.id, "events", len(b.write.Events), "request_ids", requestIDs(b, a.next), "retrying", retry, "err", err}
	if exists != nil {
		// The way a retry from beyond memory is found, by design: its write
		// was optimistic (wallet.State.Apply) and the journal holds the key.
		// A moved version would have been a fence. Not a warning: with a
		// small WALLET_IDEMPOTENCY_MAX_KEYS every old retry comes this way.
		a.e.log.Info("wallet write refused: the journal already holds a key of it; reloading to answer from the journal", attrs...)
	} else {
		a.e.log.Warn("wallet write failed; reloading", attrs...)
	}
	pending := []*batch{b, a.next}
	a.next = nil
	var requeue []*request
	for _, pb := range pending {
		for _, an := range pb.answers {
			if retry && an.req.tries < 3 {
				// A try is a failed write that held the request's own
				// event. The others (duplicates and refusals decided on
				// top of the failed write, the next batch's events) were
				// not what failed: recounting them ran out the tries of
				// old retries that merely shared a batch with other old
				// retries, one failed write after another.
				if pb == b && an.wrote {
					an.req.tries++
				}
				requeue = append(requeue, an.req)
				continue
			}
			an.req.answer(reply{err: wallet.Errorf(wallet.CodeUnavailable, "the store could not commit; nothing was applied, retry with the same tx_id")})
		}
	}
	a.queue = append(requeue, a.queue...)
	a.reset()
	if len(a.queue) > 0 {
		a.load(ctx)
	}
}

// requestIDs lists the request ids of the batches (bounded, for logs).
func requestIDs(bs ...*batch) []string {
	var ids []string
	for _, b := range bs {
		if b == nil {
			continue
		}
		for _, an := range b.answers {
			if an.req.rid != "" && len(ids) < 32 {
				ids = append(ids, an.req.rid)
			}
		}
	}
	return ids
}

// reset forgets the in-memory state: the next request reloads it from the
// store, so memory always equals what is durable.
func (a *walletActor) reset() {
	a.gen++
	a.phase = phaseUnloaded
	a.st, a.info, a.next, a.inflight = nil, nil, nil, nil
	a.sinceSnap = 0
}

// failAll answers every request held with err (used when the actor must
// drop its state without a clean store answer).
func (a *walletActor) failAll(err error) {
	for _, b := range []*batch{a.inflight, a.next} {
		if b == nil {
			continue
		}
		for _, an := range b.answers {
			an.req.answer(reply{err: err})
		}
	}
	for _, r := range a.queue {
		r.answer(reply{err: err})
	}
	a.queue = nil
}

// maxRecallKeys bounds the keys an activation recalls on every reload.
const maxRecallKeys = 4096

// remember adds keys to recall on every reload of this activation.
func (a *walletActor) remember(keys []string) {
	for _, k := range keys {
		if !slices.Contains(a.recall, k) {
			a.recall = append(a.recall, k)
		}
	}
	if over := len(a.recall) - maxRecallKeys; over > 0 {
		a.recall = slices.Delete(a.recall, 0, over)
	}
}

func (a *walletActor) load(ctx actor.Context) {
	a.phase = phaseLoading
	self, gen, store, system, id := ctx.Self(), a.gen, a.e.store, a.e.system, a.id
	// Every reload recalls all keys this activation was refused on so far:
	// a reload rebuilds the state from the store, and forgetting the keys of
	// earlier refusals would let concurrent retries of old transactions fail
	// each other's writes until they ran out of tries.
	recall := slices.Clone(a.recall)
	go func() {
		c, cancel := context.WithTimeout(context.Background(), a.e.cfg.CallTimeout)
		defer cancel()
		m := &loaded{gen: gen}
		m.ld, m.err = store.Load(c, id)
		if m.err == nil && len(recall) > 0 {
			m.recalled = recall
			m.evs, m.err = store.Lookup(c, id, recall)
		}
		system.Root.Send(self, m)
	}()
}

func (a *walletActor) onLoaded(ctx actor.Context, m *loaded) {
	switch {
	case errors.Is(m.err, ErrNotFound):
		a.info, a.st = nil, nil
	case m.err != nil:
		a.e.log.Warn("wallet load failed", "player_id", a.id, "request_ids", queueIDs(a.queue), "err", m.err)
		a.phase = phaseUnloaded
		a.failQueue(wallet.Errorf(wallet.CodeUnavailable, "the store cannot be read right now; nothing was applied"))
		return
	default:
		st, err := wallet.Rebuild(m.ld.Wallet.Currency, m.ld.Snapshot, m.ld.Tail, a.e.cfg.Limits)
		if err != nil {
			// A journal that does not replay is corruption: refuse to serve
			// the wallet rather than guess its balance.
			a.e.log.Error("wallet journal does not replay", "player_id", a.id, "err", err)
			a.phase = phaseUnloaded
			a.failQueue(wallet.Errorf(wallet.CodeUnavailable, "wallet %s cannot be loaded; operators have been alerted", a.id))
			return
		}
		if len(m.recalled) > 0 {
			st.Recall(m.recalled, m.evs)
		}
		w := m.ld.Wallet
		a.info, a.st = &w, st
		a.e.cfg.Observer.Activated()
	}
	if a.st == nil {
		// A wallet that does not exist yet still needs a state for batches.
		a.st = wallet.New(wallet.Currency{}, a.e.cfg.Limits)
	}
	a.phase = phaseReady
	a.next = a.newBatch()
	a.drain(ctx)
}

func queueIDs(q []*request) []string {
	var ids []string
	for _, r := range q {
		if r.rid != "" && len(ids) < 32 {
			ids = append(ids, r.rid)
		}
	}
	return ids
}

func (a *walletActor) failQueue(err error) {
	for _, r := range a.queue {
		r.answer(reply{err: err})
	}
	a.queue = nil
}

func (a *walletActor) lookup(ctx actor.Context, ids []string) {
	a.phase = phaseLookup
	self, gen, store, system, id := ctx.Self(), a.gen, a.e.store, a.e.system, a.id
	go func() {
		c, cancel := context.WithTimeout(context.Background(), a.e.cfg.CallTimeout)
		defer cancel()
		evs, err := store.Lookup(c, id, ids)
		system.Root.Send(self, &lookedUp{gen: gen, ids: ids, evs: evs, err: err})
	}()
}

func (a *walletActor) onLookedUp(ctx actor.Context, m *lookedUp) {
	a.phase = phaseReady
	if m.err != nil {
		a.e.log.Warn("wallet lookup failed", "player_id", a.id, "err", m.err)
		// Only the request that needed the lookup fails; the others go on.
		req := a.queue[0]
		a.queue = a.queue[1:]
		a.next.answers = append(a.next.answers, answer{req: req, rep: reply{err: wallet.Errorf(wallet.CodeUnavailable, "the store cannot be read right now; nothing was applied")}})
	} else {
		a.st.Recall(m.ids, m.evs)
	}
	a.drain(ctx)
}
