package actors

import (
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/walletd/walletd/internal/requestid"
	"github.com/walletd/walletd/wallet"
)

// Config tunes the local engine. Zero values take the defaults.
type Config struct {
	// IdleTimeout passivates a wallet actor that received nothing for this long.
	IdleTimeout time.Duration
	// MaxPerWallet bounds the requests one wallet holds (queued, waiting for
	// a commit); beyond it requests are refused with UNAVAILABLE.
	MaxPerWallet int
	// MaxInFlight bounds the requests in the whole engine.
	MaxInFlight int
	// SnapshotEvery writes a snapshot with the commit after this many events.
	SnapshotEvery int
	// CallTimeout bounds a call whose context has no deadline, and each load
	// or lookup of the store.
	CallTimeout time.Duration
	// WriteTimeout bounds one wallet write (queueing plus commit). A write
	// that times out is treated as an outage: its callers get UNAVAILABLE and
	// the wallet reloads, which tells whether it committed after all.
	WriteTimeout time.Duration
	// Limits bound each wallet's memory of idempotency keys.
	Limits wallet.Limits
	// Now is the clock (tests inject one).
	Now func() time.Time
	// Logger receives the engine's and Proto.Actor's logs.
	Logger *slog.Logger
	// Observer is told what happens, for metrics. Optional.
	Observer Observer
}

func (c Config) withDefaults() Config {
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 5 * time.Minute
	}
	if c.MaxPerWallet <= 0 {
		c.MaxPerWallet = 4096
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 100_000
	}
	if c.SnapshotEvery <= 0 {
		c.SnapshotEvery = 1000
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.Limits == (wallet.Limits{}) {
		c.Limits = wallet.DefaultLimits
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	return c
}

// Observer hears about the engine's work; the metrics package implements it.
// Calls come from many goroutines and must not block.
type Observer interface {
	// Request: one call finished with err's code ("" for success).
	Request(op string, kind wallet.Kind, outcome wallet.Outcome, code wallet.Code)
	// Activated / Passivated: a wallet actor started (loaded) or stopped.
	Activated()
	Passivated()
	// Overloaded: a request was refused by a bound (scope "wallet" or "engine").
	Overloaded(scope string)
	// Flushed: one wallet write of n events committed (err nil) or failed.
	Flushed(events int, err error)
	// Queued: a request joined a wallet that already held depth requests.
	Queued(depth int)
	// Snapshotted: a write carried a snapshot.
	Snapshotted()
}

type nopObserver struct{}

func (nopObserver) Request(string, wallet.Kind, wallet.Outcome, wallet.Code) {}
func (nopObserver) Activated()                                               {}
func (nopObserver) Passivated()                                              {}
func (nopObserver) Overloaded(string)                                        {}
func (nopObserver) Flushed(int, error)                                       {}
func (nopObserver) Queued(int)                                               {}
func (nopObserver) Snapshotted()                                             {}

// Engine runs wallet actors in this process: one actor per player wallet,
// spawned on first use and passivated when idle. It implements Wallets.
type Engine struct {
	cfg    Config
	store  Store
	system *actor.ActorSystem
	log    *slog.Logger

	seed   maphash.Seed
	shards [64]shard

	inflight atomic.Int64
	closed   atomic.Bool
	active   atomic.Int64

	grains   *grainHost // nil for the local engine
	dispatch *workers   // runs the local engine's mailboxes; nil for grains
}

// grainHost is what wallet actors need when the cluster, not the Engine,
// spawns them (see NewGrainEngine).
type grainHost struct {
	identity func(actor.Context) string
	gate     func() error
}

// shard guards part of the wallet → actor directory. refs counts callers
// between sending to the actor and getting its answer; an actor may only
// passivate when none are, so no message is ever sent to a stopping actor.
type shard struct {
	mu      sync.Mutex
	wallets map[string]*entry
}

type entry struct {
	pid  *actor.PID
	refs int
}

// NewEngine starts an actor system for wallets backed by store.
func NewEngine(store Store, cfg Config) *Engine {
	cfg = cfg.withDefaults()
	logger := cfg.Logger
	system := actor.NewActorSystemWithConfig(actor.Configure(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger.With("lib", "protoactor") }),
	))
	e := &Engine{cfg: cfg, store: store, system: system, log: logger, seed: maphash.MakeSeed(),
		dispatch: newWorkers(300)} // 300: Proto.Actor's default throughput
	for i := range e.shards {
		e.shards[i].wallets = make(map[string]*entry)
	}
	return e
}

// NewGrainEngine returns an Engine whose wallet actors are the grains of a
// cluster member running on system: the cluster spawns them (GrainProducer)
// and routes calls to them as *walletpb.WalletCall; the Engine gives them
// their store, configuration and metrics. identity tells an actor its player
// id at Started (its cluster identity). gate, if set, is asked before every
// decision: an error makes the grain decide nothing and tell the caller to
// retry (the member's standing in the cluster is not confirmed).
//
// A grain engine's Open, Get, Apply, History and Close are not used (they
// belong to the local mode); the cluster's shutdown stops its grains.
func NewGrainEngine(system *actor.ActorSystem, store Store, cfg Config, identity func(actor.Context) string, gate func() error) *Engine {
	cfg = cfg.withDefaults()
	return &Engine{cfg: cfg, store: store, system: system, log: cfg.Logger, seed: maphash.MakeSeed(),
		grains: &grainHost{identity: identity, gate: gate}}
}

// GrainProducer makes the wallet actors of a grain engine (the props of the
// cluster kind).
func (e *Engine) GrainProducer() actor.Producer {
	return func() actor.Actor { return &walletActor{e: e} }
}

// Config returns the engine's configuration, defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// Active returns the number of live wallet actors.
func (e *Engine) Active() int64 { return e.active.Load() }

func (e *Engine) shard(playerID string) *shard {
	return &e.shards[maphash.String(e.seed, playerID)%uint64(len(e.shards))]
}

// acquire returns the wallet's actor, spawning it if needed, and holds a
// reference that keeps it from passivating until release.
func (e *Engine) acquire(playerID string) *actor.PID {
	sh := e.shard(playerID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	en, ok := sh.wallets[playerID]
	if !ok {
		a := &walletActor{e: e, id: playerID}
		pid := e.system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return a }, actor.WithDispatcher(e.dispatch)))
		en = &entry{pid: pid}
		sh.wallets[playerID] = en
	}
	en.refs++
	return en.pid
}

func (e *Engine) release(playerID string) {
	sh := e.shard(playerID)
	sh.mu.Lock()
	if en, ok := sh.wallets[playerID]; ok {
		en.refs--
	}
	sh.mu.Unlock()
}

// forget removes an idle actor from the directory if no caller holds it; the
// actor then stops. It reports whether the actor may stop.
func (e *Engine) forget(playerID string, pid *actor.PID) bool {
	sh := e.shard(playerID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	en, ok := sh.wallets[playerID]
	if !ok || !en.pid.Equal(pid) {
		return true
	}
	if en.refs > 0 {
		return false
	}
	delete(sh.wallets, playerID)
	return true
}

var (
	errClosed     = wallet.Errorf(wallet.CodeUnavailable, "the wallet service is shutting down")
	errOverloaded = wallet.Errorf(wallet.CodeUnavailable, "too many requests in flight; retry shortly")
	errTimeout    = wallet.Errorf(wallet.CodeUnavailable, "the wallet did not answer in time; retry with the same tx_id")
)

// call sends one request to the wallet's actor and waits for its answer.
func (e *Engine) call(ctx context.Context, playerID string, req *request) reply {
	if e.closed.Load() || e.grains != nil {
		// A grain engine has no local directory: its wallets are reached
		// through the cluster, never spawned here.
		return reply{err: errClosed}
	}
	if e.inflight.Add(1) > int64(e.cfg.MaxInFlight) {
		e.inflight.Add(-1)
		e.cfg.Observer.Overloaded("engine")
		return reply{err: errOverloaded}
	}
	defer e.inflight.Add(-1)
	// A plain timer, not context.WithTimeout: a derived context would also
	// register with the request's and cost more on every call.
	var timedOut <-chan time.Time
	if _, ok := ctx.Deadline(); !ok {
		t := time.NewTimer(e.cfg.CallTimeout)
		defer t.Stop()
		timedOut = t.C
	}
	ch := make(chan reply, 1)
	req.ch = ch
	req.rid = requestid.FromContext(ctx)
	pid := e.acquire(playerID)
	defer e.release(playerID)
	e.system.Root.Send(pid, req)
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
	case <-timedOut:
	}
	e.log.Warn("wallet call timed out; the outcome is unknown until a retry", "request_id", req.rid, "player_id", playerID)
	return reply{err: errTimeout}
}

// Open implements Wallets.
func (e *Engine) Open(ctx context.Context, playerID string, c wallet.Currency) (View, bool, error) {
	r := e.call(ctx, playerID, &request{op: opOpen, currency: c})
	e.cfg.Observer.Request("open", "", "", wallet.ErrorCode(r.err))
	return r.view, r.created, r.err
}

// Get implements Wallets.
func (e *Engine) Get(ctx context.Context, playerID string) (View, error) {
	r := e.call(ctx, playerID, &request{op: opGet})
	e.cfg.Observer.Request("get", "", "", wallet.ErrorCode(r.err))
	return r.view, r.err
}

// Apply implements Wallets.
func (e *Engine) Apply(ctx context.Context, playerID string, cmd wallet.Command) (wallet.Result, error) {
	r := e.call(ctx, playerID, &request{op: opApply, cmd: cmd})
	e.cfg.Observer.Request("apply", cmd.Kind, r.result.Outcome, wallet.ErrorCode(r.err))
	if r.err != nil {
		// Refusals are ordinary traffic (debug); outages were logged as
		// warnings where they happened, with this request id.
		e.log.Debug("wallet refused a command", "request_id", requestid.FromContext(ctx), "player_id", playerID,
			"kind", cmd.Kind, "tx_id", cmd.TxID, "code", wallet.ErrorCode(r.err))
	}
	return r.result, r.err
}

// History implements Wallets (see ReadHistory).
func (e *Engine) History(ctx context.Context, playerID string, before uint64, limit int) ([]wallet.Event, error) {
	return ReadHistory(ctx, e.store, e.log, playerID, before, limit)
}

// ReadHistory lists a wallet's committed transactions straight from the
// store, for Wallets implementations: the wallet's actor is not involved, so
// a history read never waits for, or delays, money.
func ReadHistory(ctx context.Context, st Store, log *slog.Logger, playerID string, before uint64, limit int) ([]wallet.Event, error) {
	evs, err := st.History(ctx, playerID, before, limit)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, wallet.Errorf(wallet.CodeWalletNotFound, "wallet %s not found", playerID)
	case err != nil:
		log.WarnContext(ctx, "history read failed", "player_id", playerID, "err", err)
		return nil, wallet.Errorf(wallet.CodeUnavailable, "the store cannot be read right now")
	}
	return evs, nil
}

// Close refuses new calls, waits (up to ctx) for the calls in flight to be
// answered, and stops every wallet actor. Close the store after it.
func (e *Engine) Close(ctx context.Context) error {
	e.closed.Store(true)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for e.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			e.stopAll()
			return errors.New("engine: requests still in flight at shutdown")
		case <-tick.C:
		}
	}
	e.stopAll()
	return nil
}

func (e *Engine) stopAll() {
	var futures []*actor.Future
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		for id, en := range sh.wallets {
			futures = append(futures, e.system.Root.PoisonFuture(en.pid))
			delete(sh.wallets, id)
		}
		sh.mu.Unlock()
	}
	for _, f := range futures {
		_ = f.Wait()
	}
	e.system.Shutdown()
	if e.dispatch != nil {
		e.dispatch.close()
	}
}
