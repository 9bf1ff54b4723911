// Command walletctl is the operators' tool: it reads the same configuration
// variables as walletd (WALLET_DATA_DIR or WALLET_PG_DSN) and checks or
// maintains the store that configuration selects.
//
//	walletctl migrate   apply schema migrations (idempotent)
//	walletctl verify    every balance equals its journal; exit 1 listing offenders
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/walletd/walletd/internal/config"
	"github.com/walletd/walletd/internal/stores"
)

const usage = `usage: walletctl <command>

commands:
  migrate   apply the store's schema migrations (safe to run repeatedly)
  verify    check every wallet: balance = sum of its journal, sequences
            contiguous, no negative balance. Exit 1 and list offenders.

The store is chosen as walletd chooses it: WALLET_PG_DSN if set, else the
embedded store in WALLET_DATA_DIR (default ./data).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		fmt.Fprintln(stderr, "walletctl: configuration:", err)
		return 2
	}
	switch args[0] {
	case "migrate":
		if err := stores.Migrate(ctx, cfg); err != nil {
			fmt.Fprintln(stderr, "walletctl: migrate:", err)
			return 1
		}
		fmt.Fprintln(stdout, "migrate: the store is at the current schema")
		return 0
	case "verify":
		return verify(ctx, cfg, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "walletctl: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func verify(ctx context.Context, cfg config.Config, stdout, stderr io.Writer) int {
	if cfg.PGDSN == "" {
		// Verifying must not create an empty store where none was.
		if _, err := os.Stat(cfg.DataDir); errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stderr, "walletctl: no embedded store in %s\n", cfg.DataDir)
			return 1
		}
	}
	st, err := stores.Open(ctx, cfg, stores.Hooks{})
	if err != nil {
		fmt.Fprintln(stderr, "walletctl:", err)
		return 1
	}
	defer st.Close()
	problems, err := st.Verify(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "walletctl: verify:", err)
		return 1
	}
	for _, p := range problems {
		fmt.Fprintln(stdout, "MISMATCH", p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(stdout, "verify: %d problem(s) in the %s store\n", len(problems), st.Kind())
		return 1
	}
	fmt.Fprintf(stdout, "verify: ok (%s store)\n", st.Kind())
	return 0
}
