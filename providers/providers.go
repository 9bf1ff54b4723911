// Package providers serves walletd's game provider integrations: the
// callback APIs of each configured provider instance under
// /providers/{instance}/…, and the launch-token endpoint POST /v1/sessions.
//
// The wire formats live in one adapter package per provider kind
// (providers/pragmatic, providers/evolution), behind provider.Adapter; this
// package builds the configured instances (Registry), and is the HTTP edge
// that drives them: body limits, rate limits, the wallet calls' deadline,
// metrics. Launch tokens live in providers/sessions.
//
// cmd/walletd calls Setup once, before serving.
package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/walletd/walletd/actors"
	wallethttp "github.com/walletd/walletd/http"
	"github.com/walletd/walletd/providers/provider"
	"github.com/walletd/walletd/providers/sessions"
	"github.com/walletd/walletd/wallet"
)

// Defaults of Config.
const (
	DefaultRequestTimeout = 10 * time.Second
	DefaultMaxBodyBytes   = 64 << 10
	DefaultSessionTTL     = 24 * time.Hour
)

// Limiter applies walletd's rate policies (WALLET_RATE_AUTH,
// WALLET_RATE_GAMEPLAY) to provider calls and session launches;
// *ratelimit.Limiter implements it. Each method returns nil to let a
// request through, or an error to refuse it: code RATE_LIMITED (with a
// RetryAfter() time.Duration method when it knows when to come back) over
// the limit, UNAVAILABLE when it cannot decide and fails closed.
// Settlement calls (provider.ClassSettle) are never passed to it, nor are
// balance reads.
type Limiter interface {
	// CheckAuth: POST /v1/sessions, Pragmatic authenticate, Evolution check
	// and sid; per client address and per player.
	CheckAuth(ctx context.Context, clientIP, playerID string) error
	// CheckGameplay: calls that take a player's money (Pragmatic bet,
	// Evolution debit); per player.
	CheckGameplay(ctx context.Context, playerID string) error
}

// Setup builds the configured provider instances and mounts them on srv:
// each instance's API at /providers/{instance}/{method} (and {method}.html),
// and POST /v1/sessions, which issues launch tokens for them from store.
// Call it once, before serving; cmd/walletd owns store and closes it after
// the server. With no instance configured it mounts /v1/sessions only.
func Setup(cfg Config, srv *wallethttp.Server, w actors.Wallets, store sessions.Store, logger *slog.Logger) error {
	if srv == nil || w == nil || store == nil {
		return errors.New("providers: Setup needs a server, the wallets and a session store")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	instances, err := Instances(cfg)
	if err != nil {
		return err
	}
	deps := provider.Deps{Wallets: w, Sessions: sessions.NewManager(store, cfg.SessionTTL, cfg.Now)}
	reg := NewRegistry()
	// Provider keys and the generic API's tx_ids must never meet (the
	// contract: adapters namespace their keys so providers never collide
	// with the generic API). Every kind's namespace is reserved, whether or
	// not an instance of it is configured yet: one added later must not
	// find generic transactions under its keys.
	srv.ReserveTxIDPrefixes(reg.KeyPrefixes()...)
	adapters, err := reg.Build(instances, cfg.Getenv, deps)
	if err != nil {
		return err
	}
	e := &edge{cfg: cfg, deps: deps, byName: map[string]provider.Adapter{}}
	if cfg.Registerer != nil {
		e.replies = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walletd_provider_replies_total",
			Help: "Provider callback replies by instance, method and the provider's own result code.",
		}, []string{"instance", "method", "code"})
		if err := cfg.Registerer.Register(e.replies); err != nil {
			return fmt.Errorf("providers: register metrics: %w", err)
		}
	}
	for _, a := range adapters {
		e.byName[a.Name()] = a
		srv.Mount(http.MethodPost, "/providers/"+a.Name()+"/:method", e.serve(a))
		logger.Info("provider instance mounted", "instance", a.Name(), "kind", a.Kind(), "path", "/providers/"+a.Name()+"/")
	}
	srv.Mount(http.MethodPost, "/v1/sessions", http.HandlerFunc(e.launch))
	return nil
}

// edge serves the adapters over HTTP.
type edge struct {
	cfg     Config
	deps    provider.Deps
	byName  map[string]provider.Adapter // read-only after setup
	replies *prometheus.CounterVec      // nil without a Registerer
}

// serve is the handler of one adapter: it drives Lookup, Decode and
// Execute (see provider.Adapter).
func (e *edge) serve(a provider.Adapter) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m, ok := a.Lookup(httprouter.ParamsFromContext(r.Context()).ByName("method"))
		if !ok {
			writeError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("%s has no method %s", a.Name(), clip(r.URL.Path, 200)))
			return
		}
		req := provider.Request{Query: r.URL.Query()}
		// A read error (the provider hung up mid-body) leaves a partial
		// body, which the adapter refuses like any malformed one.
		req.Body, _ = io.ReadAll(io.LimitReader(r.Body, e.cfg.MaxBodyBytes+1))
		if int64(len(req.Body)) > e.cfg.MaxBodyBytes {
			req.Body, req.Oversize = nil, true
		}
		c, refusal := a.Decode(m, req)
		var rep provider.Reply
		switch {
		case refusal != nil:
			rep = *refusal
		default:
			wallethttp.SetPlayerID(r.Context(), c.PlayerID())
			if err := e.allow(r, c.Method().Class, c.PlayerID()); err != nil {
				rep = a.Refuse(r.Context(), c, err)
				break
			}
			// The request's values but not its cancellation: a provider
			// that hangs up must never cancel a money write halfway.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), e.cfg.RequestTimeout)
			rep = a.Execute(ctx, c)
			cancel()
		}
		if e.replies != nil {
			e.replies.WithLabelValues(a.Name(), m.Name, rep.Code).Inc()
		}
		wallethttp.RequestLogger(r.Context()).Debug("provider reply", "instance", a.Name(), "method", m.Name, "code", rep.Code)
		writeJSON(w, rep.Status, rep.Body)
	}
}

// allow asks the limiter, if any, about a request of class.
func (e *edge) allow(r *http.Request, class provider.Class, playerID string) error {
	if e.cfg.Limiter == nil {
		return nil
	}
	switch class {
	case provider.ClassAuth:
		return e.cfg.Limiter.CheckAuth(r.Context(), wallethttp.ClientIP(r), playerID)
	case provider.ClassGameplay:
		return e.cfg.Limiter.CheckGameplay(r.Context(), playerID)
	}
	return nil // reads and settlements are never limited
}

// writeJSON writes v as the reply with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only the adapters' own reply types are marshaled: cannot happen.
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"INTERNAL","message":"internal error"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeError answers in the contract's error JSON (wallet-api.md), for the
// routes of this package that speak the contract (/v1/sessions, unknown
// provider methods).
func writeError(w http.ResponseWriter, status int, code wallet.Code, msg string) {
	if h := w.Header(); h.Get("Retry-After") == "" && (status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests) {
		h.Set("Retry-After", "1")
	}
	type detail struct {
		Code    wallet.Code `json:"code"`
		Message string      `json:"message"`
	}
	writeJSON(w, status, struct {
		Error detail `json:"error"`
	}{detail{code, msg}})
}

// clip shortens caller-supplied text quoted in messages.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
