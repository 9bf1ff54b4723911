package sessions

import (
	"context"
	"sync"
	"time"
)

// Memory is a Store in this process's memory: for tests and tools. It
// forgets everything on restart, so walletd never uses it.
type Memory struct {
	mu   sync.Mutex
	m    map[string]Session
	now  func() time.Time
	puts int
}

// NewMemory returns an empty Memory store; now is the clock used to drop
// expired sessions (nil: time.Now).
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{m: make(map[string]Session), now: now}
}

func (s *Memory) Put(_ context.Context, id string, sess Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[id] = sess
	if s.puts++; s.puts%purgeEvery == 0 {
		now := s.now()
		for k, v := range s.m {
			if !now.Before(v.ExpiresAt) {
				delete(s.m, k)
			}
		}
	}
	return nil
}

func (s *Memory) Get(_ context.Context, id string) (Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[id]
	if !ok {
		return Session{}, ErrNotFound
	}
	return sess, nil
}

func (s *Memory) Move(_ context.Context, from, to string) (Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[from]
	if !ok {
		return Session{}, ErrNotFound
	}
	delete(s.m, from)
	s.m[to] = sess
	return sess, nil
}

func (s *Memory) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

func (s *Memory) Ready(context.Context) error { return nil }
func (s *Memory) Close() error                { return nil }

// purgeEvery: stores without expiry of their own delete expired sessions
// once every this many Puts, which bounds them by the launch rate × TTL
// without a background goroutine.
const purgeEvery = 64
