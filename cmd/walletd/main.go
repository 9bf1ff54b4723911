// Command walletd serves the wallet engine: one actor per player wallet,
// a group-committed journal, and the HTTP API of wallet-api.md.
//
// main only handles signals and exit codes; Main owns configuration and
// wiring, so end-to-end tests run the very same Main on port 0.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	nethttp "net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/cluster"
	wallethttp "github.com/walletd/walletd/http"
	"github.com/walletd/walletd/internal/config"
	"github.com/walletd/walletd/internal/jsonlog"
	"github.com/walletd/walletd/internal/logwriter"
	"github.com/walletd/walletd/internal/memlimit"
	"github.com/walletd/walletd/internal/metrics"
	"github.com/walletd/walletd/internal/stores"
	"github.com/walletd/walletd/providers"
	"github.com/walletd/walletd/providers/sessions"
	"github.com/walletd/walletd/ratelimit"
	"github.com/walletd/walletd/wallet"
)

// defaultGCPercent replaces Go's default GOGC of 100 unless GOGC is set.
// walletd allocates per request and keeps little live heap (a few KB per
// wallet), so the collector ran often for little gain: under load it took
// about a quarter of the CPU, and GOGC=400 cut CPU per request by 5–7% in
// the benchmark harness. In a container with a memory limit, main tells
// the runtime 90% of it (internal/memlimit) unless GOMEMLIMIT is set.
const defaultGCPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	// With that GOGC the heap may grow to five times the live data: in a
	// container with a memory limit, the runtime must know the limit to
	// collect harder before the kernel kills the process. GOMEMLIMIT, when
	// set, is the operator's and wins.
	var containerLimit, softLimit int64
	var limitSource string
	if os.Getenv("GOMEMLIMIT") == "" {
		if containerLimit, limitSource = memlimit.Container(os.ReadFile); containerLimit > 0 {
			softLimit = int64(float64(containerLimit) * memlimit.Share)
			debug.SetMemoryLimit(softLimit)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	m := NewMain()
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "walletd: configuration:", err)
		os.Exit(2)
	}
	m.Config = cfg
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "walletd:", err)
		os.Exit(1)
	}
	if softLimit > 0 {
		m.Logger.Info("Go memory limit set from the container's", "limit_bytes", softLimit,
			"container_limit_bytes", containerLimit, "source", limitSource)
	}
	code := 0
	select {
	case <-ctx.Done():
	case <-m.Evicted():
		// The cluster dropped this member (it stalled or was cut off) and
		// never takes it back under its id: leave, and exit so that the
		// supervisor restarts it as a new member.
		fmt.Fprintln(os.Stderr, "walletd: evicted from the cluster; exiting with status 3 to be restarted")
		code = 3
	}
	stop() // a second signal kills the process the default way
	shutdown, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := m.Close(shutdown); err != nil {
		fmt.Fprintln(os.Stderr, "walletd: shutdown:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

// Main is the program: configuration in, a serving walletd out.
type Main struct {
	Config config.Config
	// LogOutput receives the JSON logs (default os.Stderr).
	LogOutput io.Writer
	// Getenv resolves secrets that the providers file names by variable
	// (default os.Getenv).
	Getenv func(string) string

	// Set by Run.
	Addr   string // the address actually listened on (port 0 resolved)
	APIKey string // the first operator key (generated if none configured)
	Logger *slog.Logger

	store    stores.Store
	limiter  *ratelimit.Limiter
	sessions sessions.Store
	engine   *actors.Engine
	node     *cluster.Node // cluster mode (WALLET_CLUSTER_PROVIDER), instead of engine
	server   *nethttp.Server
	served   chan error
	logw     *logwriter.Writer // the batching log output, without LogOutput
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main {
	cfg, _ := config.Load(func(string) string { return "" })
	return &Main{Config: cfg}
}

// Run opens the store, starts the engine and begins serving HTTP. It
// returns once the listener is open; serving goes on in the background.
func (m *Main) Run(ctx context.Context) (err error) {
	if m.LogOutput != nil {
		m.Logger = slog.New(jsonlog.New(m.LogOutput, &slog.HandlerOptions{Level: m.Config.LogLevel}))
	} else {
		// Batched: an access line per request would otherwise cost a write
		// system call each. Lines wait at most logwriter.FlushEvery;
		// warnings and errors are written at once.
		m.Logger, m.logw = logwriter.NewLogger(os.Stderr, m.Config.LogLevel)
	}
	log := m.Logger
	defer func() {
		if err != nil {
			m.closeQuietly()
		}
	}()

	keys := m.Config.APIKeys
	if len(keys) == 0 {
		key, err := randomKey()
		if err != nil {
			return err
		}
		keys = []string{key}
		// The one time a key is ever logged: nobody configured one, so the
		// operator needs to learn it. Configure WALLET_API_KEYS in production.
		log.Warn("WALLET_API_KEYS is not set; generated an operator key for this run", "api_key", key)
	}
	m.APIKey = keys[0]

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	met := metrics.NewEngine(reg)
	st, err := stores.Open(ctx, m.Config, stores.Hooks{OnCommit: met.OnCommit})
	if err != nil {
		return err
	}
	m.store = st
	log.Info("store open", "store", st.Kind())

	engineCfg := actors.Config{
		IdleTimeout:   m.Config.IdleTimeout,
		SnapshotEvery: m.Config.SnapshotEvery,
		Limits:        wallet.Limits{Retention: m.Config.Retention, MaxKeys: m.Config.MaxKeys},
		Logger:        log,
		Observer:      met,
	}
	var wallets actors.Wallets
	if m.Config.ClusterProvider != "" {
		// After the store is open: grains can be called as soon as this
		// member is visible to the others.
		node, err := cluster.Start(ctx, m.Config, st, engineCfg, reg, log)
		if err != nil {
			return err
		}
		m.node, wallets = node, node
		metrics.RegisterActive(reg, node.Active)
	} else {
		m.engine = actors.NewEngine(st, engineCfg)
		wallets = m.engine
		metrics.RegisterActive(reg, m.engine.Active)
	}
	metrics.RegisterUp(reg, "walletd_store_up", "1 when the store answers a readiness check at scrape time, else 0.", st.Ready)

	lim, err := ratelimit.New(ratelimit.Options{
		Auth:       ratelimit.Rate(m.Config.RateAuth),
		Gameplay:   ratelimit.Rate(m.Config.RateGameplay),
		RedisAddr:  m.Config.RedisAddr,
		FailClosed: m.Config.RateFailClosed,
		Registry:   reg,
		Logger:     log,
	})
	if err != nil {
		return fmt.Errorf("rate limits: %w", err)
	}
	m.limiter = lim
	log.Info("rate limits", "auth", m.Config.RateAuth.String(), "gameplay", m.Config.RateGameplay.String(),
		"backend", map[bool]string{true: "redis", false: "in-process"}[m.Config.RedisAddr != ""])

	sess, sessKind, err := sessions.Open(ctx, sessions.Options{
		RedisAddr: m.Config.RedisAddr, PGDSN: m.Config.PGDSN, DataDir: m.Config.DataDir,
	})
	if err != nil {
		return fmt.Errorf("open the session store: %w", err)
	}
	m.sessions = sess
	log.Info("session store open", "store", sessKind)

	srv := wallethttp.NewServer(wallethttp.Config{
		APIKeys: keys,
		// The contract: ready when the store and, if configured, Redis answer
		// (and the session store, and the cluster membership when clustered);
		// the reply names which do not.
		Ready: func(ctx context.Context) error {
			return errors.Join(wallethttp.NotReady("store", st.Ready(ctx)), wallethttp.NotReady("redis", lim.Ready(ctx)),
				wallethttp.NotReady("session store", sess.Ready(ctx)), wallethttp.NotReady("cluster", m.clusterReady(ctx)))
		},
		Registry:       reg,
		Logger:         log,
		Version:        version(),
		Limiter:        lim,
		TrustedProxies: m.Config.TrustedProxies,
	}, wallets)

	err = providers.Setup(providers.Config{
		File:               m.Config.ProvidersFile,
		PragmaticSecret:    m.Config.PragmaticSecret,
		EvolutionAuthToken: m.Config.EvolutionAuthToken,
		SessionTTL:         m.Config.SessionTTL,
		Getenv:             m.getenv(),
		Limiter:            lim,
		Registerer:         reg,
	}, srv, wallets, sess, log)
	if err != nil {
		return fmt.Errorf("providers: %w", err)
	}

	ln, err := net.Listen("tcp", m.Config.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", m.Config.HTTPAddr, err)
	}
	m.Addr = ln.Addr().String()
	m.server = srv.HTTPServer(m.Addr)
	m.served = make(chan error, 1)
	go func() { m.served <- m.server.Serve(ln) }()
	log.Info("walletd serving", "addr", m.Addr, "version", version())
	if m.logw != nil {
		_ = m.logw.Flush() // whoever waits for the address sees it now
	}
	return nil
}

// Close shuts down gracefully: stop accepting, let in-flight requests
// finish, answer what the actors hold, then flush and close the store.
func (m *Main) Close(ctx context.Context) error {
	var errs []error
	if m.server != nil {
		if err := m.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
		if err := <-m.served; err != nil && !errors.Is(err, nethttp.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("http serve: %w", err))
		}
		m.server = nil
	}
	if m.limiter != nil {
		if err := m.limiter.Close(); err != nil {
			errs = append(errs, fmt.Errorf("rate limiter close: %w", err))
		}
		m.limiter = nil
	}
	if m.engine != nil {
		if err := m.engine.Close(ctx); err != nil {
			errs = append(errs, err)
		}
		m.engine = nil
	}
	if m.node != nil {
		if err := m.node.Close(ctx); err != nil {
			errs = append(errs, err)
		}
		m.node = nil
	}
	if m.sessions != nil {
		if err := m.sessions.Close(); err != nil {
			errs = append(errs, fmt.Errorf("session store close: %w", err))
		}
		m.sessions = nil
	}
	if m.store != nil {
		if err := m.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("store close: %w", err))
		}
		m.store = nil
	}
	if m.Logger != nil {
		if len(errs) == 0 {
			m.Logger.Info("walletd stopped cleanly")
		} else {
			m.Logger.Error("walletd stopped with errors", "err", errors.Join(errs...))
		}
	}
	if m.logw != nil {
		_ = m.logw.Close() // later lines are written straight through
	}
	return errors.Join(errs...)
}

// clusterReady: in cluster mode, ready once this member has joined the
// cluster and its standing is confirmed.
func (m *Main) clusterReady(ctx context.Context) error {
	if m.node == nil {
		return nil
	}
	return m.node.Ready(ctx)
}

// Evicted is closed when the cluster dropped this member; in single-node
// mode it is nil, which never fires.
func (m *Main) Evicted() <-chan struct{} {
	if m.node == nil {
		return nil
	}
	return m.node.Evicted()
}

func (m *Main) getenv() func(string) string {
	if m.Getenv != nil {
		return m.Getenv
	}
	return os.Getenv
}

func (m *Main) closeQuietly() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = m.Close(ctx)
}

func randomKey() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate an API key: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}
