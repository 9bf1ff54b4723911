package sessions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walletd/walletd/internal/pgtest"
)

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// opener opens a fresh, empty store for one test.
type opener func(t *testing.T, now func() time.Time) Store

func TestMemory(t *testing.T) {
	testStore(t, func(t *testing.T, now func() time.Time) Store { return NewMemory(now) })
}

func TestSQLite(t *testing.T) {
	testStore(t, func(t *testing.T, now func() time.Time) Store {
		s, err := OpenSQLite(context.Background(), t.TempDir(), now)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestSQLiteSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := OpenSQLite(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	if err := s.Put(ctx, "k", Session{PlayerID: "p", Provider: "pp", ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = OpenSQLite(ctx, dir, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Get(ctx, "k")
	if err != nil || got.PlayerID != "p" || !got.ExpiresAt.Equal(exp) {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
}

func TestPostgres(t *testing.T) {
	testStore(t, func(t *testing.T, now func() time.Time) Store {
		dsn := pgtest.DSN(t)
		s, err := OpenPostgres(context.Background(), dsn, now)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// redisAddr is the Redis the tests use.
func redisAddr() string {
	if a := os.Getenv("WALLET_TEST_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

func TestRedis(t *testing.T) {
	testStore(t, func(t *testing.T, now func() time.Time) Store { return openTestRedis(t) })
}

// openTestRedis opens the test Redis under a key prefix of the test's own,
// and deletes every key of that prefix when the test ends. Unreachable:
// a loud skip, or a failure under CI=true.
func openTestRedis(t *testing.T) *Redis {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	prefix := "walletd-test:" + hex.EncodeToString(b[:]) + ":"
	s, err := OpenRedis(RedisOptions{Addr: redisAddr(), Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := s.Ready(ctx); err != nil {
		s.Close()
		msg := fmt.Sprintf("\n%s\n!!! REDIS UNREACHABLE at %s: %v\n!!! Redis session tests are NOT running. Start Redis or set WALLET_TEST_REDIS_ADDR.\n%s",
			strings.Repeat("!", 78), redisAddr(), err, strings.Repeat("!", 78))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		iter := s.c.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			s.c.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("redis cleanup: %v", err)
		}
		s.Close()
	})
	return s
}

func TestRedisKeysExpireWithTheirSession(t *testing.T) {
	s := openTestRedis(t)
	ctx := context.Background()
	exp := time.Now().Add(90 * time.Second)
	if err := s.Put(ctx, "k", Session{PlayerID: "p", Provider: "evo", ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	ttl, err := s.c.PTTL(ctx, s.prefix+"k").Result()
	if err != nil || ttl <= 80*time.Second || ttl > 90*time.Second {
		t.Fatalf("PTTL = %v, %v; want about 90s", ttl, err)
	}
	if _, err := s.Move(ctx, "k", "k2"); err != nil {
		t.Fatal(err)
	}
	if ttl, err = s.c.PTTL(ctx, s.prefix+"k2").Result(); err != nil || ttl <= 80*time.Second {
		t.Fatalf("after a move PTTL = %v, %v; the expiry must stay", ttl, err)
	}
	if n, _ := s.c.Exists(ctx, s.prefix+"k").Result(); n != 0 {
		t.Fatal("the old key survived the move")
	}
}

func TestRedisDownAtOpenAndLater(t *testing.T) {
	// Nothing listens on port 1: the store opens all the same (walletd
	// starts and settles without sessions), and every call is an outage,
	// never ErrNotFound (which would read as "that sid is invalid").
	s, err := OpenRedis(RedisOptions{Addr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Ready(ctx); err == nil {
		t.Fatal("Ready on a dead Redis")
	}
	if _, err := s.Get(ctx, "x"); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Get on a dead Redis = %v; want an outage, not ErrNotFound", err)
	}
	if err := s.Put(ctx, "x", Session{ExpiresAt: time.Now().Add(time.Hour)}); err == nil {
		t.Fatal("Put on a dead Redis succeeded")
	}
	if _, err := s.Move(ctx, "x", "y"); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Move on a dead Redis = %v; want an outage", err)
	}
	opened, kind, err := Open(ctx, Options{RedisAddr: "127.0.0.1:1"})
	if err != nil || kind != "redis" {
		t.Fatalf("Open with Redis down: %s, %v", kind, err)
	}
	opened.Close()
}

// testStore is the conformance suite of Store implementations, run through
// a Manager as the adapters use them.
func testStore(t *testing.T, open opener) {
	ctx := context.Background()
	t.Run("launch and lookup", func(t *testing.T) {
		c := newClock()
		m := NewManager(open(t, c.Now), time.Hour, c.Now)
		tok, s, err := m.Launch(ctx, "player-1", "pragmatic", "vs20doghouse")
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) != 43 || strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Fatalf("token %q: want 43 URL-safe characters", tok)
		}
		if want := c.Now().Add(time.Hour); !s.ExpiresAt.Equal(want) {
			t.Fatalf("expires %v, want %v", s.ExpiresAt, want)
		}
		got, err := m.Lookup(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		if got != s {
			t.Fatalf("lookup = %+v, want %+v", got, s)
		}
		for _, bad := range []string{"", tok + "x", tok[:42], strings.ToUpper(tok)} {
			if _, err := m.Lookup(ctx, bad); !errors.Is(err, ErrNotFound) {
				t.Errorf("lookup(%q) = %v, want ErrNotFound", bad, err)
			}
		}
	})
	t.Run("expiry", func(t *testing.T) {
		c := newClock()
		m := NewManager(open(t, c.Now), time.Minute, c.Now)
		tok, _, err := m.Launch(ctx, "p", "evolution", "")
		if err != nil {
			t.Fatal(err)
		}
		c.Advance(time.Minute - time.Millisecond)
		if _, err := m.Lookup(ctx, tok); err != nil {
			t.Fatalf("just before expiry: %v", err)
		}
		c.Advance(time.Millisecond)
		if _, err := m.Lookup(ctx, tok); !errors.Is(err, ErrNotFound) {
			t.Fatalf("at expiry: %v, want ErrNotFound", err)
		}
		if _, _, err := m.Rotate(ctx, tok); !errors.Is(err, ErrNotFound) {
			t.Fatalf("rotate of an expired token: %v, want ErrNotFound", err)
		}
	})
	t.Run("rotate", func(t *testing.T) {
		c := newClock()
		m := NewManager(open(t, c.Now), time.Hour, c.Now)
		old, s, err := m.Launch(ctx, "p", "evolution", "table-1")
		if err != nil {
			t.Fatal(err)
		}
		c.Advance(10 * time.Minute)
		next, s2, err := m.Rotate(ctx, old)
		if err != nil {
			t.Fatal(err)
		}
		if next == old || s2 != s {
			t.Fatalf("rotate: %q %+v; want a new token for the same session %+v", next, s2, s)
		}
		if _, err := m.Lookup(ctx, old); !errors.Is(err, ErrNotFound) {
			t.Fatalf("old token after rotation: %v, want ErrNotFound", err)
		}
		if got, err := m.Lookup(ctx, next); err != nil || got != s {
			t.Fatalf("new token: %+v, %v", got, err)
		}
		if _, _, err := m.Rotate(ctx, old); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second rotation of the old token: %v", err)
		}
	})
	t.Run("concurrent rotations: one wins", func(t *testing.T) {
		m := NewManager(open(t, nil), time.Hour, nil)
		tok, _, err := m.Launch(ctx, "p", "evolution", "")
		if err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, err := m.Rotate(ctx, tok)
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, ErrNotFound):
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d rotations of one token succeeded, want 1", wins.Load())
		}
	})
	t.Run("revoke", func(t *testing.T) {
		m := NewManager(open(t, nil), time.Hour, nil)
		tok, _, err := m.Launch(ctx, "p", "pp", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Revoke(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if err := m.Revoke(ctx, tok); err != nil {
			t.Fatalf("second revoke: %v", err)
		}
		if _, err := m.Lookup(ctx, tok); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after revoke: %v", err)
		}
	})
	t.Run("purge keeps live sessions", func(t *testing.T) {
		c := newClock()
		st := open(t, c.Now)
		m := NewManager(st, time.Minute, c.Now)
		live, _, err := NewManager(st, 24*time.Hour, c.Now).Launch(ctx, "keeper", "pp", "")
		if err != nil {
			t.Fatal(err)
		}
		for range purgeEvery {
			if _, _, err := m.Launch(ctx, "p", "pp", ""); err != nil {
				t.Fatal(err)
			}
		}
		c.Advance(2 * time.Minute)
		for range purgeEvery {
			if _, _, err := m.Launch(ctx, "p", "pp", ""); err != nil {
				t.Fatal(err)
			}
		}
		if s, err := m.Lookup(ctx, live); err != nil || s.PlayerID != "keeper" {
			t.Fatalf("live session after purges: %+v, %v", s, err)
		}
		if err := st.Ready(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestFingerprintHidesTheToken(t *testing.T) {
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	fp := Fingerprint(tok)
	if strings.Contains(fp, tok[:8]) || len(fp) != len("sha256:")+8 {
		t.Fatalf("fingerprint %q of %q", fp, tok)
	}
	if Fingerprint(tok) != fp {
		t.Fatal("fingerprint is not stable")
	}
}
