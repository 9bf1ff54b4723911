package actors

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/walletd/walletd/wallet"
)

type op uint8

const (
	opOpen op = iota + 1
	opGet
	opApply
)

// request is a call into a wallet actor. reply is buffered (capacity 1), so
// the actor never blocks on a caller that gave up waiting.
type request struct {
	op       op
	cmd      wallet.Command
	currency wallet.Currency
	reply    chan reply
	tries    int    // how often a store refusal sent it back to the queue
	rid      string // the HTTP request id, for log lines about this request
}

type reply struct {
	view    View
	created bool
	result  wallet.Result
	err     error
}

// answer is a decided reply waiting for the commit it depends on.
type answer struct {
	req *request
	rep reply
}

// batch is one write of the wallet: the events to commit and the replies to
// release once they are durable. A batch without events still orders its
// replies after the write in flight, so no reply ever reflects state that is
// not yet committed.
type batch struct {
	write   Write
	answers []answer
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
	recall    []string // keys to recall with the next load
}

func (a *walletActor) Receive(ctx actor.Context) {
	defer func() {
		if p := recover(); p != nil {
			a.e.log.Error("wallet actor panic; state dropped, will reload", "player_id", a.id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			a.failAll(wallet.Errorf(wallet.CodeUnavailable, "internal error; nothing was applied"))
			a.reset()
		}
	}()
	switch m := ctx.Message().(type) {
	case *actor.Started:
		ctx.SetReceiveTimeout(a.e.cfg.IdleTimeout)
		a.e.active.Add(1)
	case *actor.Stopped:
		a.e.active.Add(-1)
		a.e.cfg.Observer.Passivated()
	case *actor.ReceiveTimeout:
		if a.idle() && a.e.forget(a.id, ctx.Self()) {
			ctx.Stop(ctx.Self())
			return
		}
		ctx.SetReceiveTimeout(a.e.cfg.IdleTimeout)
	case *request:
		if a.held() >= a.e.cfg.MaxPerWallet {
			a.e.cfg.Observer.Overloaded("wallet")
			m.reply <- reply{err: wallet.Errorf(wallet.CodeUnavailable, "wallet %s has too many requests in flight; retry shortly", a.id)}
			return
		}
		a.e.cfg.Observer.Queued(a.held())
		a.queue = append(a.queue, m)
		a.drain(ctx)
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
		rep, need := a.decide(req)
		if need != nil {
			a.lookup(ctx, need.IDs)
			return
		}
		a.queue[0] = nil
		a.queue = a.queue[1:]
		a.next.answers = append(a.next.answers, answer{req: req, rep: rep})
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
		a.release(b)
		return
	}
	a.sinceSnap += len(b.write.Events)
	if a.sinceSnap >= a.e.cfg.SnapshotEvery {
		sn := a.st.Snapshot()
		b.write.Snapshot = &sn
		a.sinceSnap = 0
		a.e.cfg.Observer.Snapshotted()
	}
	a.inflight = b
	self, gen, store, system, w, timeout := ctx.Self(), a.gen, a.e.store, a.e.system, b.write, a.e.cfg.WriteTimeout
	go func() {
		// The write is not tied to any caller's context: a caller that gives
		// up must not cancel a commit halfway. Only the write's own bound does.
		c, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		err := store.Append(c, w)
		system.Root.Send(self, &flushed{gen: gen, err: err})
	}()
}

func (a *walletActor) newBatch() *batch {
	return &batch{write: Write{PlayerID: a.id, Expected: a.st.Version()}}
}

func (a *walletActor) release(b *batch) {
	for _, an := range b.answers {
		an.req.reply <- an.rep
	}
}

func (a *walletActor) onFlushed(ctx actor.Context, err error) {
	b := a.inflight
	a.inflight = nil
	a.e.cfg.Observer.Flushed(len(b.write.Events), err)
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
		a.recall = append(a.recall, exists.Keys...)
	}
	a.e.log.Warn("wallet write failed; reloading", "player_id", a.id, "events", len(b.write.Events),
		"request_ids", requestIDs(b, a.next), "retrying", retry, "err", err)
	pending := []*batch{b, a.next}
	a.next = nil
	var requeue []*request
	for _, pb := range pending {
		for _, an := range pb.answers {
			if retry && an.req.tries < 3 {
				an.req.tries++
				requeue = append(requeue, an.req)
				continue
			}
			an.req.reply <- reply{err: wallet.Errorf(wallet.CodeUnavailable, "the store could not commit; nothing was applied, retry with the same tx_id")}
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
			an.req.reply <- reply{err: err}
		}
	}
	for _, r := range a.queue {
		r.reply <- reply{err: err}
	}
	a.queue = nil
}

func (a *walletActor) load(ctx actor.Context) {
	a.phase = phaseLoading
	self, gen, store, system, id := ctx.Self(), a.gen, a.e.store, a.e.system, a.id
	recall := a.recall
	a.recall = nil
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
		r.reply <- reply{err: err}
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
