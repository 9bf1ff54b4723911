// Package providertest runs the real walletd stack for provider tests: a
// wallet engine over the embedded SQLite store, the HTTP server with the
// providers mounted by providers.Setup, and a session store, served by
// httptest. The store can be switched off to play an outage.
package providertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walletd/walletd/actors"
	wallethttp "github.com/walletd/walletd/http"
	"github.com/walletd/walletd/persistence/sqlite"
	"github.com/walletd/walletd/providers"
	"github.com/walletd/walletd/providers/sessions"
	"github.com/walletd/walletd/wallet"
)

// APIKey is the operator key of the stack.
const APIKey = "providertest-key"

// Stack is a running walletd with providers.
type Stack struct {
	URL      string
	Engine   *actors.Engine
	Store    *OutageStore
	Sessions sessions.Store
	Clock    *Clock
	Client   *http.Client
}

// Option changes how New builds the stack.
type Option func(*options)

type options struct {
	logger *slog.Logger
}

// WithLogger sends the server's and the providers' logs to l.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// New starts a stack with cfg (its Now is set to the stack's clock) and
// stops it when the test ends.
func New(t testing.TB, cfg providers.Config, opts ...Option) *Stack {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store := &OutageStore{Store: st}
	eng := actors.NewEngine(store, actors.Config{})
	ss, err := sessions.OpenSQLite(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	clock := NewClock()
	cfg.Now = clock.Now
	srv := wallethttp.NewServer(wallethttp.Config{APIKeys: []string{APIKey}, Logger: o.logger}, eng)
	if err := providers.Setup(cfg, srv, eng, ss, o.logger); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := eng.Close(ctx); err != nil {
			t.Error(err)
		}
		if err := st.Close(); err != nil {
			t.Error(err)
		}
		ss.Close()
	})
	return &Stack{URL: ts.URL, Engine: eng, Store: store, Sessions: ss, Clock: clock, Client: ts.Client()}
}

// Wallet creates a wallet and deposits amount (if not empty).
func (s *Stack) Wallet(t testing.TB, player, currency, amount string) {
	t.Helper()
	cur, ok := wallet.LookupCurrency(currency)
	if !ok {
		t.Fatalf("currency %s", currency)
	}
	ctx := context.Background()
	if _, _, err := s.Engine.Open(ctx, player, cur); err != nil {
		t.Fatal(err)
	}
	if amount != "" {
		if _, err := s.Engine.Apply(ctx, player, wallet.Command{Kind: wallet.KindDeposit, TxID: "seed-" + player, Amount: amount}); err != nil {
			t.Fatal(err)
		}
	}
}

// Balance returns a wallet's balance as the API writes it ("12.50").
func (s *Stack) Balance(t testing.TB, player string) string {
	t.Helper()
	v, err := s.Engine.Get(context.Background(), player)
	if err != nil {
		t.Fatalf("balance of %s: %v", player, err)
	}
	return v.Balance.String()
}

// Version returns a wallet's journal version.
func (s *Stack) Version(t testing.TB, player string) uint64 {
	t.Helper()
	v, err := s.Engine.Get(context.Background(), player)
	if err != nil {
		t.Fatalf("version of %s: %v", player, err)
	}
	return v.Version
}

// Launch issues a launch token through POST /v1/sessions.
func (s *Stack) Launch(t testing.TB, player, provider, game string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"player_id": player, "provider": provider, "game_id": game})
	status, b := s.Do(t, http.MethodPost, "/v1/sessions", "application/json", body, true)
	if status != http.StatusCreated {
		t.Fatalf("launch: %d %s", status, b)
	}
	var r struct{ Token string }
	if err := json.Unmarshal(b, &r); err != nil || r.Token == "" {
		t.Fatalf("launch reply %s: %v", b, err)
	}
	return r.Token
}

// Do sends one request (with the operator key if auth) and returns the
// status and body.
func (s *Stack) Do(t testing.TB, method, path, contentType string, body []byte, auth bool) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+APIKey)
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// ErrOutage is what the store answers while it is down.
var ErrOutage = errors.New("providertest: the store is down")

// OutageStore is an actors.Store that can be switched off: while Down, it
// refuses everything, as a store that lost its disk or its database would.
type OutageStore struct {
	actors.Store
	down atomic.Bool
}

// SetDown switches the outage on or off.
func (s *OutageStore) SetDown(down bool) { s.down.Store(down) }

func (s *OutageStore) Load(ctx context.Context, id string) (actors.Loaded, error) {
	if s.down.Load() {
		return actors.Loaded{}, ErrOutage
	}
	return s.Store.Load(ctx, id)
}

func (s *OutageStore) Append(ctx context.Context, w actors.Write) error {
	if s.down.Load() {
		return ErrOutage
	}
	return s.Store.Append(ctx, w)
}

func (s *OutageStore) Lookup(ctx context.Context, id string, ids []string) ([]wallet.Event, error) {
	if s.down.Load() {
		return nil, ErrOutage
	}
	return s.Store.Lookup(ctx, id, ids)
}

// Clock is a settable clock, starting at the real time.
type Clock struct {
	mu  sync.Mutex
	off time.Duration
}

// NewClock returns a clock that reads the real time.
func NewClock() *Clock { return &Clock{} }

// Now returns the real time plus the advances.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}
