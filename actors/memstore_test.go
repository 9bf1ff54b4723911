package actors

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/walletd/walletd/wallet"
)

// memStore is an in-memory Store for engine tests: it keeps the contract's
// fencing and key uniqueness, and can be told to fail or stall. The real
// stores are tested against the same contract by persistence/storetest.
type memStore struct {
	mu       sync.Mutex
	wallets  map[string]*memWallet
	failNext int           // fail this many appends with errOutage
	delay    time.Duration // stall each append
	appends  int
	loads    int
	lookups  int
	// noJournal keeps only versions (benchmarks): no key checks, no history.
	noJournal bool
	versions  map[string]uint64
}

type memWallet struct {
	info   Wallet
	events []wallet.Event
	snap   *wallet.Snapshot
}

var errOutage = errors.New("memstore: outage")

func newMemStore() *memStore { return &memStore{wallets: make(map[string]*memWallet)} }

func (s *memStore) Load(ctx context.Context, id string) (Loaded, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loads++
	w, ok := s.wallets[id]
	if !ok {
		return Loaded{}, ErrNotFound
	}
	ld := Loaded{Wallet: w.info, Snapshot: w.snap}
	from := uint64(0)
	if w.snap != nil {
		from = w.snap.Version
	}
	ld.Tail = slices.Clone(w.events[from:])
	return ld, nil
}

func (s *memStore) Append(ctx context.Context, wr Write) error {
	if err := wr.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	d := s.delay
	s.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appends++
	if s.noJournal {
		if s.versions == nil {
			s.versions = make(map[string]uint64)
		}
		if s.versions[wr.PlayerID] != wr.Expected {
			return ErrFenced
		}
		s.versions[wr.PlayerID] = wr.Version()
		return nil
	}
	if s.failNext > 0 {
		s.failNext--
		return errOutage
	}
	w, ok := s.wallets[wr.PlayerID]
	if wr.Create != nil {
		if ok {
			return ErrFenced
		}
		w = &memWallet{info: *wr.Create}
	} else if !ok || uint64(len(w.events)) != wr.Expected {
		return ErrFenced
	}
	var dup []string
	for _, ev := range wr.Events {
		for _, old := range w.events {
			if old.TxID == ev.TxID || (ev.BetKey() != "" && old.BetKey() == ev.BetKey()) {
				dup = append(dup, ev.TxID)
			}
		}
	}
	if len(dup) > 0 {
		return &KeyExistsError{Keys: dup}
	}
	w.events = append(w.events, wr.Events...)
	if wr.Snapshot != nil {
		sn := *wr.Snapshot
		w.snap = &sn
	}
	s.wallets[wr.PlayerID] = w
	return nil
}

func (s *memStore) Lookup(ctx context.Context, id string, ids []string) ([]wallet.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookups++
	w, ok := s.wallets[id]
	if !ok {
		return nil, nil
	}
	var out []wallet.Event
	for _, ev := range w.events {
		if slices.Contains(ids, ev.TxID) || slices.Contains(ids, ev.Ref) {
			out = append(out, ev)
		}
	}
	for _, bet := range slices.Clone(out) {
		if bet.Kind != wallet.KindBet {
			continue
		}
		for _, ev := range w.events {
			if ev.Kind == wallet.KindWin && ev.RoundID == bet.RoundID && ev.Seq > bet.Seq && !slices.ContainsFunc(out, func(e wallet.Event) bool { return e.Seq == ev.Seq }) {
				out = append(out, ev)
			}
		}
	}
	return out, nil
}

func (s *memStore) History(ctx context.Context, id string, before uint64, limit int) ([]wallet.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.wallets[id]
	if !ok {
		return nil, ErrNotFound
	}
	var out []wallet.Event
	for i := len(w.events) - 1; i >= 0 && len(out) < limit; i-- {
		if before == 0 || w.events[i].Seq < before {
			out = append(out, w.events[i])
		}
	}
	return out, nil
}

func (s *memStore) Ready(context.Context) error { return nil }
func (s *memStore) Close() error                { return nil }

func (s *memStore) journal(id string) []wallet.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w, ok := s.wallets[id]; ok {
		return slices.Clone(w.events)
	}
	return nil
}

func (s *memStore) set(f func(s *memStore)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}
