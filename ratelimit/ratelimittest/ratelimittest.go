// Package ratelimittest gives tests a real Redis to limit against, a key
// prefix of their own, and a proxy that can take Redis away.
//
// The server is named by WALLET_TEST_REDIS_ADDR (default 127.0.0.1:6379).
// When it cannot be reached, tests that need it are skipped with a loud
// message, or fail when CI=true, so a CI run can never pass by skipping them.
package ratelimittest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultAddr is the server used when WALLET_TEST_REDIS_ADDR is not set.
const DefaultAddr = "127.0.0.1:6379"

// The server is checked once per test binary: when it is down, every test
// that needs it skips at once instead of each waiting for a dial.
var (
	checkOnce sync.Once
	checkErr  error
)

// Addr returns the address of the test Redis, after checking it answers.
func Addr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("WALLET_TEST_REDIS_ADDR")
	if addr == "" {
		addr = DefaultAddr
	}
	checkOnce.Do(func() {
		c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true, MaxRetries: -1, DialerRetries: 1})
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		checkErr = c.Ping(ctx).Err()
		if checkErr != nil && os.Getenv("CI") != "true" {
			// A skip's message only shows with -v: say it on stderr too,
			// once per test binary, so a plain `go test` run cannot miss it.
			fmt.Fprintln(os.Stderr, unreachable(addr, checkErr))
		}
	})
	if checkErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(unreachable(addr, checkErr))
		}
		t.Skip(unreachable(addr, checkErr))
	}
	return addr
}

func unreachable(addr string, err error) string {
	return fmt.Sprintf("\n%s\n!!! REDIS UNREACHABLE at %s: %v\n!!! Redis rate-limit tests are NOT running. Start Redis or set WALLET_TEST_REDIS_ADDR.\n%s",
		strings.Repeat("!", 78), addr, err, strings.Repeat("!", 78))
}

// Prefix returns a key prefix no other test uses and deletes every key under
// it when the test ends.
func Prefix(t testing.TB, addr string) string {
	t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("ratelimittest: random prefix: %v", err)
	}
	prefix := "walletd:test:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var keys []string
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("ratelimittest: scan %s*: %v", prefix, err)
			return
		}
		if len(keys) > 0 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("ratelimittest: delete %s*: %v", prefix, err)
			}
		}
	})
	return prefix
}

// ClosedAddr returns a local address nothing listens on: connections to it
// are refused at once, like a Redis that is down.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Proxy forwards TCP to a target until Down, and again after Up. Tests point
// a limiter at Addr to take Redis away and give it back mid-test. Stopped
// when the test ends.
type Proxy struct {
	Addr string

	target string
	ln     net.Listener
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// NewProxy starts a proxy to target on a free local port.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Down cuts every connection and refuses new ones (accepted, then closed).
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
}

// Up forwards new connections again.
func (p *Proxy) Up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
	}()
	up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		up.Close()
		return
	}
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, up)
		p.mu.Unlock()
		up.Close()
	}()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src) // either side closing ends the pair
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}

func (p *Proxy) close() {
	p.ln.Close()
	p.Down()
	p.wg.Wait()
}

// Blackhole returns the address of a server that accepts connections and
// never answers: a Redis that hangs, the case a timeout exists for.
// Stopped when the test ends.
func Blackhole(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}
