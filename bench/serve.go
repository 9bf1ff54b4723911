package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/walletd/walletd/bench/ceiling"
	"github.com/walletd/walletd/bench/naive"
	wallethttp "github.com/walletd/walletd/http"
	"github.com/walletd/walletd/internal/logwriter"
)

// ServeConfig configures a comparison server (naive or ceiling).
type ServeConfig struct {
	System string // "naive" or "ceiling"
	Addr   string // listen address (port 0: any)
	APIKey string
	// PGDSN and MaxConns: the naive baseline's database and pool size.
	PGDSN    string
	MaxConns int
	// Logs receives the JSON logs, at info level and through the same
	// logger as walletd's (one access line per request, written in batches:
	// the same work walletd does for each).
	Logs io.Writer
	// OnServing, if set, is told the address once the server listens.
	OnServing func(addr string)
}

// Serve runs a comparison server until ctx ends. It announces its address
// with a JSON log line {"msg":"walletbench serving","addr":…}, as walletd
// does, so StartProcess can run it like walletd.
func Serve(ctx context.Context, cfg ServeConfig) error {
	logger, logw := logwriter.NewLogger(cfg.Logs, slog.LevelInfo)
	defer logw.Close()
	keys := []string{cfg.APIKey}
	var srv *wallethttp.Server
	switch cfg.System {
	case "naive":
		if cfg.PGDSN == "" {
			return errors.New("serve naive: a Postgres DSN is required")
		}
		w, err := naive.Open(ctx, cfg.PGDSN, orDefault(cfg.MaxConns, DefaultNaiveConns))
		if err != nil {
			return err
		}
		defer w.Close()
		srv = naive.Handler(w, keys, logger)
	case "ceiling":
		srv = ceiling.Handler(keys, logger)
	default:
		return fmt.Errorf("serve: unknown system %q (naive or ceiling)", cfg.System)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	hs := srv.HTTPServer(ln.Addr().String())
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	logger.Info("walletbench serving", "addr", ln.Addr().String(), "system", cfg.System)
	_ = logw.Flush() // whoever waits for the address sees it now
	if cfg.OnServing != nil {
		cfg.OnServing(ln.Addr().String())
	}
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
