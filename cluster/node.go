// Package cluster runs walletd as a member of a Proto.Actor cluster: every
// wallet is a virtual actor (a grain of kind "wallet", identity = player id)
// living on the member the disthash lookup assigns it to, and every member's
// HTTP layer reaches it there through Node, which implements actors.Wallets.
//
// Membership is not what keeps money correct: a stalled member can keep
// activations of wallets that meanwhile live elsewhere (see
// ../../shared/notes/protoactor.md). The store's version fence is: a write
// of a stale activation is refused (actors.ErrFenced), the activation
// reloads and decides again, and replies of success are only sent after
// their own commit. Membership only decides where a wallet usually runs.
// On top of that, Node keeps a member that has lost its standing (it
// stalled, and most of the cluster dropped it) from answering on state
// that may be stale, and tells it to restart (Evicted).
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/actors/walletpb"
	"github.com/walletd/walletd/internal/config"
	"github.com/walletd/walletd/internal/requestid"
	"github.com/walletd/walletd/wallet"
)

// WalletKind is the cluster kind of wallet grains.
const WalletKind = "wallet"

// Options tune the cluster member. Zero values take the defaults; Start uses
// the defaults, tests shorten them.
type Options struct {
	// AttemptTimeout bounds one forwarding attempt (lookup plus the grain's
	// answer, which includes its commit). Default 3s.
	AttemptTimeout time.Duration
	// MaxAttempts bounds the attempts of one call; every attempt sends the
	// same call, so a retry can never apply a tx_id twice. Default 6.
	MaxAttempts int
	// RetryBackoff is the first pause between attempts; it doubles up to
	// 500ms. Default 25ms.
	RetryBackoff time.Duration
	// ProbeInterval is the pause between two standing checks (see
	// standing.go); ProbeTimeout bounds one probe of a member. Defaults
	// 250ms and 500ms.
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration
	// StandingTTL: a member serves only while its standing was confirmed by
	// a check that started less than this long ago. It must stay below the
	// provider's membership timeout (automanaged ≥ 2s: its health client
	// timeout; etcd: the 3s lease), so that by the time the others can have
	// dropped a stalled member, it has already stopped answering. Default 1.5s.
	StandingTTL time.Duration
	// StallThreshold: a gap this long in the member's own clock loop is a
	// stall (SIGSTOP, a VM pause, swapping). Default 1s.
	StallThreshold time.Duration
	// ForgetAfter: a member that left this member's topology is still
	// probed for this long: a member that stalled drops the others from its
	// own topology when it wakes, and must still learn what they think of
	// it. Default 30s.
	ForgetAfter time.Duration
	// AutomanagedRefresh is the automanaged provider's polling period.
	// Default 1s.
	AutomanagedRefresh time.Duration
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.AttemptTimeout, 3*time.Second)
	def(&o.RetryBackoff, 25*time.Millisecond)
	def(&o.ProbeInterval, 250*time.Millisecond)
	def(&o.ProbeTimeout, 500*time.Millisecond)
	def(&o.StandingTTL, 1500*time.Millisecond)
	def(&o.StallThreshold, time.Second)
	def(&o.ForgetAfter, 30*time.Second)
	def(&o.AutomanagedRefresh, time.Second)
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 6
	}
	return o
}

// Node is this process's membership of the wallet cluster. It implements
// actors.Wallets by routing every call to the wallet's grain, wherever it
// lives; its grains run on this member's actor system.
type Node struct {
	opts   Options
	cfg    actors.Config
	log    *slog.Logger
	store  actors.Store
	system *actor.ActorSystem
	c      *pcluster.Cluster
	engine *actors.Engine
	met    *nodeMetrics
	st     *standing
	reg    *registration // etcd only

	inflight atomic.Int64
	closed   atomic.Bool
	quit     chan struct{}
	loops    sync.WaitGroup
	closeMu  sync.Mutex
	shutdown bool
}

var _ actors.Wallets = (*Node)(nil)

// Start joins (or forms) the cluster cfg describes and returns this
// member's Node. Open the store first: grains can be called before Start
// returns. engineCfg tunes the wallet grains like the local engine
// (its Observer also receives the per-call metrics); reg receives the
// cluster metrics; Proto.Actor logs into logger (warnings and errors, or
// everything at debug).
func Start(ctx context.Context, cfg config.Config, store actors.Store, engineCfg actors.Config, reg *prometheus.Registry, logger *slog.Logger) (*Node, error) {
	return StartWithOptions(ctx, cfg, store, engineCfg, reg, logger, Options{})
}

// StartWithOptions is Start with explicit timings.
func StartWithOptions(ctx context.Context, cfg config.Config, store actors.Store, engineCfg actors.Config, reg *prometheus.Registry, logger *slog.Logger, opts Options) (n *Node, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	opts = opts.withDefaults()
	log := logger.With("component", "cluster")
	host, port, err := splitAddr(cfg.ClusterAddr)
	if err != nil {
		return nil, err
	}
	provider, err := newProvider(ctx, cfg, opts, logger)
	if err != nil {
		return nil, err
	}

	libLogger := libLog(logger)
	system := actor.NewActorSystemWithConfig(actor.Configure(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return libLogger }),
	))
	engineCfg.Logger = logger
	n = &Node{opts: opts, log: log, store: store, system: system, quit: make(chan struct{})}
	n.st = newStanding(n)
	n.engine = actors.NewGrainEngine(system, store, engineCfg, grainIdentity, n.st.gate)
	n.cfg = n.engine.Config()

	kind := pcluster.NewKind(WalletKind, actor.PropsFromProducer(n.engine.GrainProducer()))
	ccfg := pcluster.Configure(cfg.ClusterName, provider, disthash.New(), remote.Configure(host, port),
		pcluster.WithKinds(kind), pcluster.WithRequestTimeout(opts.AttemptTimeout))
	n.c = pcluster.New(system, ccfg)
	n.met = newNodeMetrics(reg, n)
	n.st.subscribe()

	// StartMember panics on what it cannot do (a busy port above all).
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("cluster: start member on %s: %v", cfg.ClusterAddr, p)
			}
		}()
		n.c.StartMember()
	}()
	if err != nil {
		system.Shutdown()
		return nil, err
	}
	if _, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &probeActor{n: n} }), probeActorName); err != nil {
		n.c.Shutdown(false)
		return nil, fmt.Errorf("cluster: spawn the membership probe: %w", err)
	}
	if cfg.ClusterProvider == "etcd" {
		client, err := clientv3.New(etcdConfig(cfg, 5*time.Second, logger))
		if err != nil {
			n.c.Shutdown(false)
			return nil, fmt.Errorf("cluster: etcd at %v: %w", cfg.EtcdEndpoints, err)
		}
		n.reg = &registration{client: client, key: registrationKey(cfg.ClusterName, system.ID), log: log}
		n.loops.Add(1)
		go func() {
			defer n.loops.Done()
			n.reg.loop(n.quit)
		}()
	}
	n.loops.Add(2)
	go n.st.clockLoop()
	go n.st.checkLoop()
	log.Info("cluster member started", "provider", cfg.ClusterProvider, "cluster", cfg.ClusterName,
		"address", system.Address(), "member_id", system.ID)
	return n, nil
}

func grainIdentity(ctx actor.Context) string { return pcluster.GetClusterIdentity(ctx).Identity }

func splitAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("cluster: WALLET_CLUSTER_ADDR %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("cluster: WALLET_CLUSTER_ADDR %q: bad port", addr)
	}
	return host, port, nil
}

// Address is this member's remoting address (its port resolved).
func (n *Node) Address() string { return n.system.Address() }

// MemberID is this member's id in the cluster (new on every start).
func (n *Node) MemberID() string { return n.system.ID }

// Active is the number of wallet grains living on this member.
func (n *Node) Active() int64 { return n.engine.Active() }

// Members is the number of members in this member's topology.
func (n *Node) Members() int {
	members, _ := n.st.topology()
	return members
}

// Ready returns nil once this member has joined the cluster and its
// standing is confirmed; join it into /readyz with the store's readiness.
func (n *Node) Ready(context.Context) error {
	if n.closed.Load() {
		return errors.New("cluster: this member is shutting down")
	}
	if _, joined := n.st.topology(); !joined {
		return errors.New("cluster: this member has not joined the cluster (yet)")
	}
	return n.st.gate()
}

// Evicted is closed when the rest of the cluster has dropped this member
// (it stalled or was partitioned away for longer than the membership
// timeout). Proto.Actor never lets a dropped member back under the same id,
// so it serves nothing more: restart the process, which rejoins as a new
// member.
func (n *Node) Evicted() <-chan struct{} { return n.st.evictedCh }

var (
	errClosed     = wallet.Errorf(wallet.CodeUnavailable, "the wallet service is shutting down")
	errOverloaded = wallet.Errorf(wallet.CodeUnavailable, "too many requests in flight; retry shortly")
)

// call routes one call to the wallet's grain, retrying within a bounded
// budget, and returns its reply. Every attempt sends the very same call, so
// a retry of an apply whose first attempt did commit answers duplicate.
func (n *Node) call(ctx context.Context, playerID string, msg *walletpb.WalletCall) (*walletpb.WalletReply, error) {
	if n.closed.Load() {
		return nil, errClosed
	}
	if n.inflight.Add(1) > int64(n.cfg.MaxInFlight) {
		n.inflight.Add(-1)
		n.cfg.Observer.Overloaded("engine")
		return nil, errOverloaded
	}
	defer n.inflight.Add(-1)
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(n.cfg.CallTimeout)
	}
	var (
		sent    bool // an attempt reached (or may have reached) a grain
		last    string
		backoff = n.opts.RetryBackoff
	)
	for attempt := 1; attempt <= n.opts.MaxAttempts; attempt++ {
		if attempt > 1 {
			n.met.retries.WithLabelValues(last).Inc()
			pause := min(backoff, time.Until(deadline))
			backoff = min(2*backoff, 500*time.Millisecond)
			if !sleep(ctx, pause) {
				break
			}
		}
		remaining := time.Until(deadline)
		if remaining <= 0 || n.closed.Load() {
			break
		}
		if err := n.st.gate(); err != nil {
			if n.st.isEvicted() {
				return nil, wallet.Errorf(wallet.CodeUnavailable, "this cluster member was evicted and must restart; nothing was applied, retry on another member")
			}
			last = "unconfirmed"
			continue
		}
		sent = true
		start := time.Now()
		rep, err := n.request(ctx, playerID, msg, min(remaining, n.opts.AttemptTimeout))
		n.met.forward.WithLabelValues(n.target(playerID)).Observe(time.Since(start).Seconds())
		switch {
		case err != nil:
			last = "unanswered"
			n.log.Debug("wallet call attempt failed", "request_id", msg.GetRequestId(), "player_id", playerID, "attempt", attempt, "err", err)
		case rep.GetRetry():
			last = "moved"
		default:
			return rep, nil
		}
	}
	n.met.unknown.Inc()
	if !sent {
		return nil, wallet.Errorf(wallet.CodeUnavailable, "this member's place in the cluster is not confirmed; nothing was applied, retry shortly")
	}
	n.log.Warn("wallet call gave up; its outcome is unknown until a retry", "request_id", msg.GetRequestId(), "player_id", playerID, "last", last)
	return nil, wallet.Errorf(wallet.CodeUnavailable, "the wallet did not answer in time; the outcome is unknown, retry with the same tx_id")
}

// request is one attempt: cluster.Request, bounded by timeout and ctx.
// cluster.Request takes no context, and when the wallet's PID is not cached
// it asks the owner's placement actor first, which may block up to 5s on a
// member that just died: that case runs on its own goroutine, which ends on
// its own within that bound once the caller stopped waiting. With the PID
// cached (the common case) the call is bounded by timeout and runs here:
// a goroutine per call costs about a tenth of a forwarded call's CPU.
func (n *Node) request(ctx context.Context, playerID string, msg *walletpb.WalletCall, timeout time.Duration) (*walletpb.WalletReply, error) {
	call := func() (any, error) {
		// One try per attempt: our loop owns retries, with back-off and a
		// deadline (the library's retry back-off is effectively zero).
		return n.c.Request(playerID, WalletKind, msg,
			pcluster.WithTimeout(timeout), pcluster.WithRetryCount(1),
			pcluster.WithRetryAction(func(i int) int { return i + 1 }))
	}
	var (
		v   any
		err error
	)
	if _, cached := n.c.PidCache.Get(playerID, WalletKind); cached {
		v, err = call()
	} else {
		type result struct {
			v   any
			err error
		}
		ch := make(chan result, 1)
		go func() {
			v, err := call()
			ch <- result{v, err}
		}()
		t := time.NewTimer(timeout + 50*time.Millisecond)
		select {
		case r := <-ch:
			v, err = r.v, r.err
		case <-t.C:
			err = errors.New("cluster: attempt timed out")
		case <-ctx.Done():
			err = ctx.Err()
		}
		t.Stop()
	}
	if err != nil {
		return nil, err
	}
	rep, ok := v.(*walletpb.WalletReply)
	if !ok {
		return nil, fmt.Errorf("cluster: unexpected reply %T", v)
	}
	return rep, nil
}

// target tells whether the wallet's grain is on this member (for the
// forwarding histogram): the PID cache holds what the last call used.
func (n *Node) target(playerID string) string {
	if pid, ok := n.c.PidCache.Get(playerID, WalletKind); ok && pid.Address != n.system.Address() {
		return "remote"
	}
	return "local"
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Open implements actors.Wallets.
func (n *Node) Open(ctx context.Context, playerID string, c wallet.Currency) (actors.View, bool, error) {
	rep, err := n.call(ctx, playerID, walletpb.OpenCall(playerID, c, requestid.FromContext(ctx)))
	v, created, err := viewOf(rep, err)
	n.cfg.Observer.Request("open", "", "", wallet.ErrorCode(err))
	return v, created, err
}

// Get implements actors.Wallets.
func (n *Node) Get(ctx context.Context, playerID string) (actors.View, error) {
	rep, err := n.call(ctx, playerID, walletpb.GetCall(playerID, requestid.FromContext(ctx)))
	v, _, err := viewOf(rep, err)
	n.cfg.Observer.Request("get", "", "", wallet.ErrorCode(err))
	return v, err
}

// Apply implements actors.Wallets.
func (n *Node) Apply(ctx context.Context, playerID string, cmd wallet.Command) (wallet.Result, error) {
	rep, err := n.call(ctx, playerID, walletpb.ApplyCall(playerID, cmd, requestid.FromContext(ctx)))
	var res wallet.Result
	if err == nil {
		var perr error
		if res, perr = rep.Result(); perr != nil {
			res, err = wallet.Result{}, n.badReply(rep, perr)
		} else {
			err = rep.Err()
		}
	}
	n.cfg.Observer.Request("apply", cmd.Kind, res.Outcome, wallet.ErrorCode(err))
	if err != nil {
		n.log.Debug("wallet refused a command", "request_id", requestid.FromContext(ctx), "player_id", playerID,
			"kind", cmd.Kind, "tx_id", cmd.TxID, "code", wallet.ErrorCode(err))
	}
	return res, err
}

func viewOf(rep *walletpb.WalletReply, err error) (actors.View, bool, error) {
	if err != nil {
		return actors.View{}, false, err
	}
	if err := rep.Err(); err != nil {
		return actors.View{}, false, err
	}
	id, c, bal, ver, perr := rep.View()
	if perr != nil {
		return actors.View{}, false, wallet.Errorf(wallet.CodeInternal, "a wallet reply did not decode")
	}
	return actors.View{PlayerID: id, Currency: c, Balance: bal, Version: ver}, rep.GetCreated(), nil
}

func (n *Node) badReply(rep *walletpb.WalletReply, err error) error {
	n.log.Error("a wallet reply did not decode", "tx_id", rep.GetTxId(), "err", err)
	return wallet.Errorf(wallet.CodeInternal, "a wallet reply did not decode")
}

// History implements actors.Wallets from the store (actors.ReadHistory), so
// a history read never occupies the wallet's grain.
func (n *Node) History(ctx context.Context, playerID string, before uint64, limit int) ([]wallet.Event, error) {
	return actors.ReadHistory(ctx, n.store, n.log, playerID, before, limit)
}

// Close refuses new calls, waits (up to ctx) for the calls in flight, and
// leaves the cluster: the provider deregisters this member, its grains
// stop (telling the callers they hold to retry, which reaches the wallets'
// next owners) and remoting shuts down. Close the store after it.
func (n *Node) Close(ctx context.Context) error {
	n.closeMu.Lock()
	defer n.closeMu.Unlock()
	if n.shutdown {
		return nil
	}
	n.shutdown = true
	n.closed.Store(true)
	var errs []error
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
wait:
	for n.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			errs = append(errs, errors.New("cluster: calls still in flight at shutdown"))
			break wait
		case <-tick.C:
		}
	}
	close(n.quit)
	n.loops.Wait()
	n.st.unsubscribe()
	if n.reg != nil {
		_ = n.reg.client.Close()
	}
	log := n.log.With("member_id", n.system.ID)
	if err := leaveWithin(ctx, log,
		func() { leaveCluster(n.c, handoverWait, log) },
		func() { n.c.Remote.Shutdown(true) }); err != nil {
		errs = append(errs, err)
	}
	log.Info("cluster member stopped")
	return errors.Join(errs...)
}

// leaveWithin runs leave and then stop, waiting for them until ctx ends.
// Not finishing leave is an error: the others may still count this member
// in. Not finishing stop, once leave is done, is only worth a warning: the
// member is out of the cluster and its grains are handed over, and what is
// left is the local teardown of remoting, which a peer that died earlier
// can hold for up to half a minute (Proto.Actor waits up to 10 s for each of
// two endpoint actors while a writer retries the dead address, then up to
// 10 s for gRPC's GracefulStop). Nothing depends on it: the process exits
// and its sockets close with it. With a shutdown budget below that, a
// member stopped after a peer died used to exit 1.
func leaveWithin(ctx context.Context, log *slog.Logger, leave, stop func()) error {
	left, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		leave()
		close(left)
		stop()
	}()
	select {
	case <-left:
	case <-ctx.Done():
		return errors.New("cluster: leaving the cluster did not finish in time")
	}
	select {
	case <-stopped:
	case <-ctx.Done():
		log.Warn("cluster: remoting had not stopped when the shutdown time ran out; the member had left the cluster")
	}
	return nil
}

// handoverWait is how long a leaving member waits for the others to take
// over its grains' identities, as Proto.Actor's Cluster.Shutdown does.
const handoverWait = 2 * time.Second

// deregisterWait bounds a leaving member's deregistration from the
// membership provider. Proto.Actor's etcd provider deletes the member's key
// with no deadline, so with etcd unreachable its Shutdown never returned and
// every member stopped during an etcd outage ran out its shutdown budget and
// exited 1. A registration that cannot be deleted goes anyway: the others
// learned of the leave by gossip first, and once the process has exited
// nothing keeps the key's lease alive, which expires within its 3 s TTL.
const deregisterWait = 3 * time.Second

// deregister runs the provider's graceful Shutdown, waiting for it at most
// wait. A Shutdown still running then is left to the process's exit.
func deregister(p pcluster.ClusterProvider, wait time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- p.Shutdown(true) }()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("still not deregistered after %v", wait)
	}
}

// leaveCluster is the graceful part of Proto.Actor's Cluster.Shutdown(true)
// (at the version in go.mod), without its last step, stopping remoting,
// which Close bounds separately: the others learn that this member left
// (gossip, then the provider), the identity lookup hands its grains over,
// and gossip stops. Cluster.Shutdown's MemberList.stopMemberList, the one
// step not reachable from here, does nothing at that version.
func leaveCluster(c *pcluster.Cluster, handover time.Duration, log *slog.Logger) {
	c.Gossip.SetState(pcluster.GracefullyLeftKey, &emptypb.Empty{})
	c.ActorSystem.Shutdown()
	if err := deregister(c.Config.ClusterProvider, deregisterWait); err != nil {
		log.Warn("cluster: gave up deregistering from the membership provider; the others learned of the leave by gossip, and a lease-based registration (etcd) expires once this process has exited",
			"err", err)
	}
	c.IdentityLookup.Shutdown()
	time.Sleep(handover)
	c.IdentityLookup.Shutdown()
	c.Gossip.Shutdown()
}
