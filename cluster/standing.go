package cluster

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/eventstream"

	"github.com/walletd/walletd/actors/walletpb"
)

// Standing: may this member answer for the wallets it hosts?
//
// Proto.Actor drops a member that stops answering for longer than the
// provider's membership timeout and never takes it back under the same id
// (its id stays on the others' block list). A member that was merely
// stalled (SIGSTOP, a VM pause, a long swap) wakes up still believing it
// owns its wallets, while they have been activated again elsewhere and have
// moved on. Its writes are fenced by the store, but a read or a refusal
// decided on its stale state would be wrong. So a member serves only while
// its standing is confirmed, by a check that started less than StandingTTL
// ago:
//
//   - every ProbeInterval it asks every member it knows (those in its
//     topology, and those that left it less than ForgetAfter ago) which
//     members they count (MembershipProbe);
//   - it is evicted when a strict majority of the members that answer
//     (itself included; members that know they are evicted do not count)
//     once counted it and no longer do, or exactly half of them and it
//     stalled itself lately (the tie-break of a two-member cluster: the
//     member that stalled is the one that yields);
//   - it is confirmed when it is in its own topology and a strict majority
//     of the members that answer (itself included) counts it.
//
// Members that do not answer do not vote, and do not count: the survivors
// of a crash keep serving. (Except for ForgetAfter after a stall of this
// member's own: then the members it knew count until they answer or are
// forgotten, so a member that wakes up to silence does not confirm itself.) The price is a true network partition: each side sees only
// itself and serves until the partition heals, when the side the others
// dropped is evicted. Writes stay fenced and refusals that rest on absence
// are checked against the store (actors.batch.verify), but a balance read
// on the minority side may miss the other side's writes meanwhile.
// docs/scaling.md says so.
//
// Eviction is final: the member stops serving and Evicted fires, so the
// process is restarted and joins again as a new member. The fence stays
// what keeps money right; standing only keeps a stale member quiet.

const probeActorName = "walletd-membership"

var (
	errUnconfirmed = errors.New("cluster: this member's standing in the cluster is not confirmed (yet)")
	errEvicted     = errors.New("cluster: this member was dropped by the rest of the cluster (it stalled or was cut off longer than the membership timeout); restart it")
)

type peer struct {
	id       string
	inList   time.Time // last time it was in this member's topology
	sawMe    bool      // it counted this member at least once
	unanswer time.Time // when a probe of it last went unanswered
}

// probeLeftEvery: a member that left this member's topology and did not
// answer the last probe is probed this often, not every round: it is
// probably dead, and Proto.Actor logs an error for every failed dial.
const probeLeftEvery = 2 * time.Second

type standing struct {
	n    *Node
	base time.Time // monotonic origin of confirmed and stalled

	mu      sync.Mutex
	peers   map[string]*peer // by address; this member is not in it
	members []string         // ids in this member's topology
	hash    uint64
	// self is this member's id in the topology, known once it appears in
	// it (by its address): the providers name members differently (etcd:
	// "<cluster>@<system id>"), so the system id is not it.
	self   string
	joined bool // this member has been in its own topology
	sub    *eventstream.Subscription

	confirmed atomic.Int64 // since base: start of the last confirming check; 0 none
	stalled   atomic.Int64 // since base: end of the last stall; 0 none
	evicted   atomic.Bool
	evictedCh chan struct{}
	once      sync.Once

	lastCheck time.Time // end of the previous check (checkLoop only)
}

func newStanding(n *Node) *standing {
	return &standing{n: n, base: time.Now(), peers: make(map[string]*peer), evictedCh: make(chan struct{})}
}

func (s *standing) since() int64 { return int64(time.Since(s.base)) }

// gate returns nil while the member may serve: its standing was confirmed by
// a check that began less than StandingTTL ago. Wallet grains ask it before
// every decision, Node before every attempt.
func (s *standing) gate() error {
	if s.evicted.Load() {
		return errEvicted
	}
	c := s.confirmed.Load()
	if c == 0 || time.Duration(s.since()-c) > s.n.opts.StandingTTL {
		return errUnconfirmed
	}
	return nil
}

func (s *standing) isEvicted() bool { return s.evicted.Load() }

// subscribe follows the topology. Proto.Actor publishes it synchronously
// while holding its member list's lock: the handler only copies.
func (s *standing) subscribe() {
	s.sub = s.n.system.EventStream.Subscribe(func(ev any) {
		if t, ok := ev.(*pcluster.ClusterTopology); ok {
			s.onTopology(t)
		}
	})
}

func (s *standing) unsubscribe() {
	if s.sub != nil {
		s.n.system.EventStream.Unsubscribe(s.sub)
	}
}

func (s *standing) onTopology(t *pcluster.ClusterTopology) {
	addr, now := s.n.system.Address(), time.Now()
	ids := func(ms []*pcluster.Member) []string {
		out := make([]string, 0, len(ms))
		for _, m := range ms {
			out = append(out, m.Id)
		}
		return out
	}
	s.mu.Lock()
	s.members, s.hash = ids(t.Members), t.TopologyHash
	inTopology := false
	for _, m := range t.Members {
		if m.Address() == addr {
			s.self, s.joined, inTopology = m.Id, true, true
			continue
		}
		p := s.peers[m.Address()]
		if p == nil || p.id != m.Id {
			// A member new at this address (maybe a restart of one that
			// was there): what the old one saw says nothing about it.
			p = &peer{id: m.Id}
			s.peers[m.Address()] = p
		}
		p.inList = now
	}
	for _, m := range t.Left {
		if p := s.peers[m.Address()]; p != nil && p.id == m.Id {
			p.inList = now
		}
	}
	s.mu.Unlock()
	s.n.met.topologyChanges.Inc()
	s.n.log.Info("cluster topology changed", "members", len(t.Members), "joined", ids(t.Joined), "left", ids(t.Left),
		"blocked", len(t.Blocked), "self_in_topology", inTopology)
}

// view is this member's answer to a probe.
func (s *standing) view() *walletpb.MembershipView {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &walletpb.MembershipView{MemberId: s.self, Members: slices.Clone(s.members), TopologyHash: s.hash, Evicted: s.evicted.Load()}
}

// topology returns this member's topology size and whether it is in it.
func (s *standing) topology() (members int, joined bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.members), s.self != "" && slices.Contains(s.members, s.self)
}

// clockLoop notices stalls: a loop that ticks every 100ms and finds much
// more time gone by was not running (the whole process was stopped).
func (s *standing) clockLoop() {
	defer s.n.loops.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-s.n.quit:
			return
		case now := <-t.C:
			now = time.Now() // the tick's time is when it fired, not when we run
			if gap := now.Sub(last); gap > s.n.opts.StallThreshold {
				s.markStalled(gap)
			}
			last = now
		}
	}
}

func (s *standing) markStalled(gap time.Duration) {
	s.stalled.Store(s.since())
	s.n.met.stalls.Inc()
	s.n.log.Warn("this member stalled; its standing must be confirmed again before it serves", "stalled_for", gap.String())
}

func (s *standing) checkLoop() {
	defer s.n.loops.Done()
	t := time.NewTicker(s.n.opts.ProbeInterval)
	defer t.Stop()
	s.check()
	for {
		select {
		case <-s.n.quit:
			return
		case <-t.C:
			s.check()
		}
	}
}

type probed struct {
	addr string
	peer peer
	view *walletpb.MembershipView
}

// check runs one standing check (see the comment at the top).
func (s *standing) check() {
	if s.evicted.Load() {
		return
	}
	// A confirmation counts from the check's start: a check that spanned a
	// stall must not vouch for the time after it.
	start := s.since()
	now := time.Now()
	// The check loop notices a stall itself too, so that the first check
	// after one never runs before clockLoop has flagged it.
	if !s.lastCheck.IsZero() && now.Sub(s.lastCheck) > s.n.opts.ProbeInterval+s.n.opts.StallThreshold {
		s.markStalled(now.Sub(s.lastCheck))
	}
	defer func() { s.lastCheck = time.Now() }()
	stalled := s.stalled.Load()
	stalledLately := stalled != 0 && time.Duration(s.since()-stalled) < s.n.opts.ForgetAfter
	s.mu.Lock()
	me := s.self
	joined := me != "" && slices.Contains(s.members, me)
	joinedOnce := s.joined
	var todo []probed
	for addr, p := range s.peers {
		inTopology := slices.Contains(s.members, p.id)
		if now.Sub(p.inList) > s.n.opts.ForgetAfter && !inTopology {
			delete(s.peers, addr)
			continue
		}
		if !stalledLately && !inTopology && !p.unanswer.IsZero() && now.Sub(p.unanswer) < probeLeftEvery {
			continue
		}
		todo = append(todo, probed{addr: addr, peer: *p})
	}
	s.mu.Unlock()

	var wg sync.WaitGroup
	for i := range todo {
		wg.Add(1)
		go func(pr *probed) {
			defer wg.Done()
			f := s.n.system.Root.RequestFuture(actor.NewPID(pr.addr, probeActorName), &walletpb.MembershipProbe{}, s.n.opts.ProbeTimeout)
			if v, err := f.Result(); err == nil {
				pr.view, _ = v.(*walletpb.MembershipView)
			}
		}(&todo[i])
	}
	wg.Wait()

	size, includers, excluders := 1, 0, 0
	s.mu.Lock()
	for _, pr := range todo {
		v := pr.view
		if p := s.peers[pr.addr]; p != nil && p.id == pr.peer.id {
			if v == nil {
				p.unanswer = now
			} else {
				p.unanswer = time.Time{}
			}
		}
		if v == nil {
			// Unreachable: dead, or cut off from us. Counting it would keep
			// the survivors of a crash from serving until they forget it;
			// what a partition costs instead is said at the top. But after
			// a stall of this member's own, silence is no vote of
			// confidence: the others may have dropped it while it slept.
			if stalledLately {
				size++
			}
			continue
		}
		if v.GetEvicted() {
			continue // it knows it is out: neither counted nor voting
		}
		size++
		counted := me != "" && slices.Contains(v.GetMembers(), me)
		p := s.peers[pr.addr]
		if p != nil && p.id != v.GetMemberId() {
			p = nil // another process answers at that address now
		}
		switch {
		case counted:
			includers++
			if p != nil {
				p.sawMe = true
			}
		case p != nil && pr.peer.sawMe:
			excluders++ // it counted this member before and dropped it
		}
	}
	s.mu.Unlock()

	switch verdictOf(size, includers, excluders, joined, joinedOnce, stalledLately) {
	case verdictEvicted:
		s.evict(size, includers, excluders, joined)
	case verdictConfirmed:
		s.confirmed.Store(start)
	default:
		s.n.log.Debug("cluster standing not confirmed", "in_own_topology", joined, "answering_members", size,
			"counted_by", includers, "dropped_by", excluders)
	}
}

type verdict uint8

const (
	verdictUnconfirmed verdict = iota
	verdictConfirmed
	verdictEvicted
)

// verdictOf is the rule of the comment at the top. size counts the members
// that answered plus this one; includers of them count this member,
// excluders counted it once and no longer do.
func verdictOf(size, includers, excluders int, joined, joinedOnce, stalledLately bool) verdict {
	switch {
	case joinedOnce && (2*excluders > size || (excluders > 0 && 2*excluders == size && stalledLately)):
		return verdictEvicted
	case joined && 2*(includers+1) > size:
		return verdictConfirmed
	}
	return verdictUnconfirmed
}

func (s *standing) evict(size, includers, excluders int, joined bool) {
	s.once.Do(func() {
		s.evicted.Store(true)
		s.n.met.evicted.Set(1)
		s.n.log.Error("this member was dropped by the rest of the cluster (it stalled or was cut off for longer than the membership timeout); "+
			"it serves nothing more and must be restarted, which rejoins it as a new member",
			"member_id", s.n.system.ID, "answering_members", size, "dropped_by", excluders, "counted_by", includers, "in_own_topology", joined)
		close(s.evictedCh)
	})
}

// probeActor answers MembershipProbe with this member's view.
type probeActor struct{ n *Node }

func (p *probeActor) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*walletpb.MembershipProbe); ok {
		ctx.Respond(p.n.st.view())
	}
}
