// Command testnode is a minimal walletd cluster member for the cluster
// package's multi-process tests: configuration from the environment (the
// variables of wallet-api.md), the configured store, a cluster.Node and the
// real HTTP server of package http. It logs JSON to stderr like walletd and
// prints "walletd serving" with the address once it listens.
//
// It is wired as cmd/walletd is in cluster mode, including what walletd
// should do on eviction: leave and exit with status 3, so a supervisor
// restarts it as a new member. (No rate limits and no providers: the tests
// are about the cluster.)
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	nethttp "net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/cluster"
	wallethttp "github.com/walletd/walletd/http"
	"github.com/walletd/walletd/internal/config"
	"github.com/walletd/walletd/internal/metrics"
	"github.com/walletd/walletd/internal/stores"
	"github.com/walletd/walletd/wallet"
)

// exitEvicted is the exit status of a member the cluster dropped.
const exitEvicted = 3

func main() {
	code, err := run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testnode:", err)
	}
	os.Exit(code)
}

func run() (int, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return 2, fmt.Errorf("configuration: %w", err)
	}
	if cfg.ClusterProvider == "" {
		return 2, errors.New("WALLET_CLUSTER_PROVIDER is not set")
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))

	reg := prometheus.NewRegistry()
	met := metrics.NewEngine(reg)
	st, err := stores.Open(ctx, cfg, stores.Hooks{OnCommit: met.OnCommit})
	if err != nil {
		return 1, err
	}
	defer st.Close()
	// The store is open before the member starts: grains can be called as
	// soon as the member is visible to the others.
	node, err := cluster.Start(ctx, cfg, st, actors.Config{
		IdleTimeout:   cfg.IdleTimeout,
		SnapshotEvery: cfg.SnapshotEvery,
		Limits:        wallet.Limits{Retention: cfg.Retention, MaxKeys: cfg.MaxKeys},
		Observer:      met,
	}, reg, log)
	if err != nil {
		return 1, err
	}
	metrics.RegisterActive(reg, node.Active)
	metrics.RegisterUp(reg, "walletd_store_up", "1 when the store answers a readiness check at scrape time, else 0.", st.Ready)

	srv := wallethttp.NewServer(wallethttp.Config{
		APIKeys:  cfg.APIKeys,
		Ready:    func(ctx context.Context) error { return errors.Join(st.Ready(ctx), node.Ready(ctx)) },
		Registry: reg,
		Logger:   log,
		Version:  "testnode",
	}, node)
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return 1, err
	}
	hs := srv.HTTPServer(ln.Addr().String())
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	log.Info("walletd serving", "addr", ln.Addr().String(), "member_id", node.MemberID(), "cluster_addr", node.Address())

	code := 0
	select {
	case <-ctx.Done():
	case <-node.Evicted():
		log.Error("evicted from the cluster: leaving and exiting so that the supervisor restarts this member", "exit_code", exitEvicted)
		code = exitEvicted
	case err := <-served:
		return 1, err
	}
	shutdown, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	if err := hs.Shutdown(shutdown); err != nil {
		errs = append(errs, err)
	}
	if err := <-served; err != nil && !errors.Is(err, nethttp.ErrServerClosed) {
		errs = append(errs, err)
	}
	if err := node.Close(shutdown); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		log.Error("stopped with errors", "err", err)
		return max(code, 1), nil
	}
	log.Info("walletd stopped cleanly")
	return code, nil
}
