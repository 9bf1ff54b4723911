package ratelimit

import (
	"container/list"
	"context"
	"hash/maphash"
	"slices"
	"sync"
	"time"
)

// memShards splits each policy's keys so that unrelated players do not
// contend on one mutex.
const memShards = 32

// memory is the in-process limiter: the same sliding window as the Redis
// script (a log of admission times per key, all or none over several keys),
// per process.
type memory struct {
	now     func() time.Time
	epoch   time.Time // times are nanoseconds since epoch (monotonic with time.Now)
	seed    maphash.Seed
	stores  [len(policies)]memStore
	metrics *metrics
}

type memStore struct {
	shards [memShards]memShard
}

// memShard holds some keys of a policy. Its list orders them by last
// admission, most recent first, so idle keys gather at the back where a
// sweep finds them without visiting live ones.
type memShard struct {
	mu   sync.Mutex
	keys map[string]*list.Element // of *memEntry
	lru  list.List
	max  int
}

// memEntry is one key's window: the admission times still inside it, oldest
// first, in a ring that grows up to N.
type memEntry struct {
	key      string
	admitted int64 // last admission (or creation)
	ring     []int64
	head, n  int
}

func newMemory(maxKeys int, now func() time.Time, m *metrics) *memory {
	mem := &memory{now: now, epoch: now(), seed: maphash.MakeSeed(), metrics: m}
	perShard := max(maxKeys/memShards, 1)
	for i := range mem.stores {
		for j := range mem.stores[i].shards {
			sh := &mem.stores[i].shards[j]
			sh.keys = make(map[string]*list.Element)
			sh.max = perShard
		}
	}
	return mem
}

func (m *memory) allow(_ context.Context, p Policy, r Rate, keys []string) (bool, time.Duration, error) {
	st := &m.stores[policyIndex(p)]
	// Lock every shard involved, in index order (no deadlock between two
	// multi-key decisions), so the decision over all keys is atomic.
	var idxBuf, lockBuf [4]int // callers pass one or two keys: no allocation
	idx := idxBuf[:0]
	for _, k := range keys {
		idx = append(idx, int(maphash.String(m.seed, k)%memShards))
	}
	locks := append(lockBuf[:0], idx...)
	slices.Sort(locks)
	locks = slices.Compact(locks)
	for _, i := range locks {
		st.shards[i].mu.Lock()
	}
	defer func() {
		for _, i := range locks {
			st.shards[i].mu.Unlock()
		}
	}()

	now := m.now().Sub(m.epoch).Nanoseconds()
	window := r.Window.Nanoseconds()
	cutoff := now - window // admissions at or before it have left the window
	var wait int64
	for i, k := range keys {
		el, ok := st.shards[idx[i]].keys[k]
		if !ok {
			continue
		}
		e := el.Value.(*memEntry)
		e.prune(cutoff)
		if e.n >= r.N {
			w := max(e.at(e.n-r.N)+window-now, 1)
			wait = max(wait, w)
		}
	}
	if wait > 0 {
		return false, time.Duration(wait), nil
	}
	for i, k := range keys {
		sh := &st.shards[idx[i]]
		e := sh.entry(k, now, cutoff, m.metrics)
		e.push(now, r.N)
	}
	for _, i := range locks {
		st.shards[i].sweep(cutoff)
	}
	return true, 0, nil
}

// entry returns k's entry, created if need be, moved to the front as the
// most recently admitted key.
func (sh *memShard) entry(k string, now, cutoff int64, m *metrics) *memEntry {
	if el, ok := sh.keys[k]; ok {
		e := el.Value.(*memEntry)
		e.admitted = now
		sh.lru.MoveToFront(el)
		return e
	}
	if len(sh.keys) >= sh.max {
		sh.sweep(cutoff)
		if len(sh.keys) >= sh.max {
			// Full of live keys: drop the one admitted longest ago. Its
			// count restarts, which errs towards allowing, like a
			// limiter must when it cannot remember.
			sh.remove(sh.lru.Back())
			m.evictions.Inc()
		}
	}
	e := &memEntry{key: k, admitted: now}
	sh.keys[k] = sh.lru.PushFront(e)
	return e
}

// sweep evicts idle keys: a key last admitted at or before cutoff has no
// admission left inside the window, so it is the same as an absent key.
func (sh *memShard) sweep(cutoff int64) {
	for el := sh.lru.Back(); el != nil && el.Value.(*memEntry).admitted <= cutoff; el = sh.lru.Back() {
		sh.remove(el)
	}
}

func (sh *memShard) remove(el *list.Element) {
	delete(sh.keys, el.Value.(*memEntry).key)
	sh.lru.Remove(el)
}

// len is the number of keys held (tests).
func (m *memory) len(p Policy) int {
	n := 0
	st := &m.stores[policyIndex(p)]
	for i := range st.shards {
		st.shards[i].mu.Lock()
		n += len(st.shards[i].keys)
		st.shards[i].mu.Unlock()
	}
	return n
}

// at returns the i-th oldest admission.
func (e *memEntry) at(i int) int64 { return e.ring[(e.head+i)%len(e.ring)] }

// prune forgets admissions at or before cutoff.
func (e *memEntry) prune(cutoff int64) {
	for e.n > 0 && e.ring[e.head] <= cutoff {
		e.head = (e.head + 1) % len(e.ring)
		e.n--
	}
}

// push records an admission; the caller has checked that fewer than limit
// are inside the window. The ring grows by doubling up to limit, so a key
// used once costs a few words, not N.
func (e *memEntry) push(t int64, limit int) {
	if e.n == len(e.ring) {
		grown := make([]int64, min(max(2*len(e.ring), 4), max(limit, 1)))
		if len(grown) <= e.n {
			// Cannot happen: admission is refused at limit entries.
			panic("ratelimit: window ring overflow")
		}
		for i := range e.n {
			grown[i] = e.at(i)
		}
		e.ring, e.head = grown, 0
	}
	e.ring[(e.head+e.n)%len(e.ring)] = t
	e.n++
}

func (m *memory) ready(context.Context) error { return nil }
func (m *memory) close() error                { return nil }
