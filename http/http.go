// Package http serves walletd's generic operator API (wallet-api.md) over
// HTTP/JSON, plus health, readiness and metrics endpoints. It translates
// requests into calls of actors.Wallets and domain errors into the contract's
// error JSON; it holds no money rule of its own.
//
// Inside this package "net/http" is imported under its own name: a package
// named http may import another package named http.
package http

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/ratelimit"
	"github.com/walletd/walletd/wallet"
)

// Defaults of Config.
const (
	DefaultMaxBodyBytes   = 64 << 10
	DefaultRequestTimeout = 10 * time.Second
	// readyTimeout bounds one call of Config.Ready.
	readyTimeout = 2 * time.Second
)

// Config configures a Server. The zero value of every field has a sane
// default, except APIKeys: with no key every /v1 request is refused.
type Config struct {
	// APIKeys are the operator bearer keys; /v1/* requests need one of them.
	// Empty strings are ignored.
	APIKeys []string
	// MaxBodyBytes bounds a request body (default 64 KiB).
	MaxBodyBytes int64
	// RequestTimeout bounds one call of the wallets (default 10s). The call
	// does not end when the client goes away, only when this passes.
	RequestTimeout time.Duration
	// Ready answers /readyz: nil when the store (and Redis, if any) answer.
	// It is given at most 2s. Nil: always ready.
	Ready func(context.Context) error
	// Registry receives the HTTP metrics and is served at /metrics. Nil: a
	// new registry of the server's own (never the global one).
	Registry *prometheus.Registry
	// Logger receives one access line per request and the causes of
	// internal errors. Nil: nothing is logged.
	Logger *slog.Logger
	// Version is exported as walletd_build_info{version} on the registry.
	Version string
	// Limiter applies the gameplay policy to bets and withdrawals (per
	// player). Deposits, wins and rollbacks are never limited. Nil: no
	// limits.
	Limiter *ratelimit.Limiter
	// TrustedProxies are the proxies whose X-Forwarded-For is believed
	// (see ClientIP). Empty: the client is the connection's peer, always.
	TrustedProxies []netip.Prefix
}

// Server is the HTTP edge of walletd. Build it with NewServer, add routes
// with Mount, then serve Handler (or HTTPServer). Serving and shutdown are
// the caller's.
type Server struct {
	cfg     Config
	wallets actors.Wallets
	logger  *slog.Logger
	keys    [][sha256.Size]byte // SHA-256 of each API key
	router  *httprouter.Router
	metrics *metrics
	handler http.Handler
	readers sync.Pool // *bufio.Reader for request bodies (decode)
	// reserved: tx_id prefixes this API refuses (ReserveTxIDPrefixes).
	reserved []string
}

// NewServer returns a server answering the routes of wallet-api.md that
// exist so far (the /v1 wallet endpoints, /healthz, /readyz, /metrics) on
// top of w. It panics if cfg.Registry already holds a different collector
// under one of the server's metric names.
func NewServer(cfg Config, w actors.Wallets) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:     cfg,
		wallets: w,
		logger:  cfg.Logger,
		metrics: newMetrics(cfg.Registry, cfg.Version),
	}
	for _, k := range cfg.APIKeys {
		if k != "" {
			s.keys = append(s.keys, sha256.Sum256([]byte(k)))
		}
	}

	s.router = httprouter.New()
	// Redirects would answer with HTML bodies and hide mistakes; a wrong path
	// is a 404 in the contract's JSON.
	s.router.RedirectTrailingSlash = false
	s.router.RedirectFixedPath = false
	s.router.HandleMethodNotAllowed = true
	s.router.NotFound = http.HandlerFunc(s.handleNotFound)
	s.router.MethodNotAllowed = http.HandlerFunc(s.handleMethodNotAllowed)

	s.routeFunc("GET", "/healthz", s.handleHealthz)
	s.routeFunc("GET", "/readyz", s.handleReadyz)
	s.Mount("GET", "/metrics", s.metrics.handler(cfg.Registry, s.logger))

	s.routeFunc("POST", "/v1/wallets", s.handleCreateWallet)
	s.routeFunc("GET", "/v1/wallets/:player_id", s.handleGetWallet)
	s.routeFunc("POST", "/v1/wallets/:player_id/deposit", s.handleDeposit)
	s.routeFunc("POST", "/v1/wallets/:player_id/withdraw", s.gameplay(s.handleWithdraw))
	s.routeFunc("POST", "/v1/wallets/:player_id/bet", s.gameplay(s.handleBet))
	s.routeFunc("POST", "/v1/wallets/:player_id/win", s.handleWin)
	s.routeFunc("POST", "/v1/wallets/:player_id/rollback", s.handleRollback)
	s.routeFunc("GET", "/v1/wallets/:player_id/transactions", s.handleTransactions)

	s.handler = http.HandlerFunc(s.serveHTTP)
	return s
}

// Handler returns the server's handler: request ids, access logs, metrics
// and panic recovery around the router. Routes mounted later are served too.
func (s *Server) Handler() http.Handler { return s.handler }

// ReserveTxIDPrefixes makes the money endpoints refuse a tx_id that starts
// with one of prefixes: they are other writers' key namespaces (provider
// adapters'), and a generic transaction under one of their keys would be
// taken for theirs (a duplicate, a conflict, a bet they settle). Call it
// before serving, like Mount.
func (s *Server) ReserveTxIDPrefixes(prefixes ...string) {
	s.reserved = append(s.reserved, prefixes...)
}

// checkTxID checks the tx_id of a money request: a valid id outside the
// reserved namespaces.
func (s *Server) checkTxID(v string) error {
	if err := checkID("tx_id", v); err != nil {
		return err
	}
	for _, p := range s.reserved {
		if strings.HasPrefix(v, p) {
			return badRequest("tx_id must not start with %q: ids starting with %s are provider adapters' keys", p, strings.Join(s.reserved, " or "))
		}
	}
	return nil
}

// Mount adds a route (an httprouter pattern such as "/providers/pragmatic/bet.html"
// or "/v1/sessions"). The pattern is the route's label in logs and metrics.
// Routes under /v1/ need an operator key, like the built-in ones; anything
// else authenticates itself. Mount all routes before serving: the router is
// not safe for concurrent changes. Like httprouter, it panics on a pattern
// that conflicts with an existing one.
func (s *Server) Mount(method, path string, h http.Handler) {
	needsKey := path == "/v1" || strings.HasPrefix(path, "/v1/")
	s.router.Handler(method, path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info := infoFrom(r.Context()); info != nil {
			info.route = path
		}
		if needsKey && !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="walletd"`)
			s.writeError(w, r, errUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
}

func (s *Server) routeFunc(method, path string, h http.HandlerFunc) { s.Mount(method, path, h) }

// HTTPServer returns an *http.Server serving Handler on addr with timeouts
// that bound slow or idle clients. The caller runs and shuts it down.
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
}

// handleHealthz: the process is alive.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	type health struct {
		Status string `json:"status"`
	}
	writeJSON(w, http.StatusOK, health{Status: "ok"})
}

// handleReadyz: the store (and Redis, if configured) answer within 2s.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil {
		if err := s.ready(r.Context()); err != nil {
			RequestLogger(r.Context()).Warn("not ready", "err", err)
			msg := "not ready: no answer within " + readyTimeout.String()
			if parts := notReadyParts(err); len(parts) > 0 {
				msg = "not ready: " + strings.Join(parts, ", ") + " not answering"
			} else if !errors.Is(err, context.DeadlineExceeded) {
				msg = "not ready"
			}
			s.writeError(w, r, wallet.Errorf(wallet.CodeUnavailable, "%s", msg))
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// NotReady marks an error of Config.Ready with the part of the service it
// comes from ("store", "redis", …), or returns nil for a nil err. /readyz is
// open to anyone: its reply names the parts that do not answer, never their
// errors (those go to the log).
func NotReady(part string, err error) error {
	if err == nil {
		return nil
	}
	return &notReadyError{part: part, err: err}
}

type notReadyError struct {
	part string
	err  error
}

func (e *notReadyError) Error() string { return e.part + ": " + e.err.Error() }
func (e *notReadyError) Unwrap() error { return e.err }

// notReadyParts lists the parts NotReady marked in err (one, or several
// joined with errors.Join), in order.
func notReadyParts(err error) []string {
	switch e := err.(type) {
	case *notReadyError:
		return []string{e.part}
	case interface{ Unwrap() []error }:
		var parts []string
		for _, x := range e.Unwrap() {
			parts = append(parts, notReadyParts(x)...)
		}
		return parts
	case interface{ Unwrap() error }:
		return notReadyParts(e.Unwrap())
	}
	return nil
}

// ready calls cfg.Ready bounded by readyTimeout, even if Ready ignores its
// context.
func (s *Server) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.cfg.Ready(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
