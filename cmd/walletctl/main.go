// Command walletctl is the operators' tool: it reads the same configuration
// variables as walletd (WALLET_DATA_DIR or WALLET_PG_DSN) and checks or
// maintains the store that configuration selects.
//
//	walletctl migrate                 apply schema migrations (idempotent)
//	walletctl verify                  every balance equals its journal; exit 1 listing offenders
//	walletctl backup --out FILE       consistent online backup (FILE or - for stdout)
//	walletctl restore --in FILE       restore a backup into an empty store, then verify
//	walletctl check-backup --in FILE  check a backup file without restoring it
//
// Exit codes: 0 success, 1 failure, 2 usage or configuration error.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/walletd/walletd/internal/config"
	"github.com/walletd/walletd/internal/stores"
	"github.com/walletd/walletd/persistence/backup"
)

const usage = `usage: walletctl <command> [flags]

commands:
  migrate                apply the store's schema migrations (safe to run repeatedly)
  verify                 check every wallet: balance = sum of its journal, sequences
                         contiguous, no negative balance. Exit 1 and list offenders.
  backup --out FILE      write a consistent backup of the store to FILE (- for
                         stdout) while walletd keeps serving. FILE is written as
                         FILE.tmp, fsynced, then renamed: it is whole or absent.
  restore --in FILE      restore a backup (- for stdin) into an EMPTY store, then
                         verify it. The file is checked in full before anything
                         is written. Stop walletd first (the embedded store's
                         folder lock enforces it).
  check-backup --in FILE read a backup through and check its checksum and counts,
                         without touching any store.

Backups are store-independent: a backup of the embedded store restores into
Postgres and back.

The store is chosen as walletd chooses it: WALLET_PG_DSN if set, else the
embedded store in WALLET_DATA_DIR (default ./data).

Exit codes: 0 success, 1 failure, 2 usage or configuration error.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	var file string
	switch cmd {
	case "migrate", "verify":
		if len(args) > 0 {
			fmt.Fprintf(stderr, "walletctl %s: takes no arguments\n\n%s", cmd, usage)
			return 2
		}
	case "backup", "restore", "check-backup":
		name := map[string]string{"backup": "out", "restore": "in", "check-backup": "in"}[cmd]
		fs := flag.NewFlagSet("walletctl "+cmd, flag.ContinueOnError)
		fs.SetOutput(io.Discard) // the usage below says it better
		fs.StringVar(&file, name, "", "")
		if err := fs.Parse(args); err != nil || fs.NArg() > 0 || file == "" {
			fmt.Fprintf(stderr, "walletctl %s: needs --%s FILE\n\n%s", cmd, name, usage)
			return 2
		}
	default:
		fmt.Fprintf(stderr, "walletctl: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if cmd == "check-backup" { // needs no configuration
		return checkBackup(file, stdin, stdout, stderr)
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		fmt.Fprintln(stderr, "walletctl: configuration:", err)
		return 2
	}
	switch cmd {
	case "migrate":
		if err := stores.Migrate(ctx, cfg); err != nil {
			fmt.Fprintln(stderr, "walletctl: migrate:", err)
			return 1
		}
		fmt.Fprintln(stdout, "migrate: the store is at the current schema")
		return 0
	case "verify":
		return verify(ctx, cfg, stdout, stderr)
	case "backup":
		return runBackup(ctx, cfg, file, stdout, stderr)
	default: // restore
		return restore(ctx, cfg, file, stdin, stdout, stderr)
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

// runBackup writes the backup to path (or stdout for "-"). The report goes
// to stdout, or to stderr when stdout carries the backup itself.
func runBackup(ctx context.Context, cfg config.Config, path string, stdout, stderr io.Writer) int {
	var tr backup.Trailer
	write := func(w io.Writer) error {
		var err error
		tr, err = stores.Backup(ctx, cfg, w, version())
		return err
	}
	report := stdout
	var err error
	if path == "-" {
		report = stderr
		bw := bufio.NewWriterSize(stdout, 1<<20)
		if err = write(bw); err == nil {
			err = bw.Flush()
		}
	} else {
		err = writeFileAtomically(path, write)
	}
	if err != nil {
		fmt.Fprintln(stderr, "walletctl: backup:", err)
		return 1
	}
	fmt.Fprintf(report, "backup: %s from the %s store to %s (sha256 %s)\n", tr.Counts, stores.Kind(cfg), path, tr.SHA256)
	return 0
}

// writeFileAtomically writes path through path.tmp: write, fsync, rename,
// fsync the folder. A crash or a failure leaves either the previous file
// or none, never a partial backup under the final name; the .tmp is
// removed on failure. Backups hold every player's money, so only the owner
// may read them.
func writeFileAtomically(path string, write func(io.Writer) error) (err error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		return fmt.Errorf("fsync the folder of %s: %w", path, err)
	}
	return nil
}

func restore(ctx context.Context, cfg config.Config, path string, stdin io.Reader, stdout, stderr io.Writer) int {
	if path == "-" {
		// A restore reads the backup twice (check, then load), so stdin is
		// spooled to a private temporary file first.
		spooled, cleanup, err := spool(stdin)
		if err != nil {
			fmt.Fprintln(stderr, "walletctl: restore: read stdin:", err)
			return 1
		}
		defer cleanup()
		path = spooled
	}
	res, err := stores.RestoreFile(ctx, cfg, path)
	for _, p := range res.Problems {
		fmt.Fprintln(stdout, "MISMATCH", p)
	}
	if err != nil {
		fmt.Fprintf(stderr, "walletctl: restore into the %s store: %v\n", res.Kind, err)
		switch {
		case errors.Is(err, backup.ErrNotEmpty):
			fmt.Fprintln(stderr, "walletctl: restore only into a fresh store: a new WALLET_DATA_DIR, or a new empty Postgres database")
		case errors.Is(err, stores.ErrVerify):
			fmt.Fprintln(stderr, "walletctl: the backup's data is in the store as it was; inspect the problems above before serving from it")
		}
		return 1
	}
	h := res.Header
	fmt.Fprintf(stdout, "restore: %s into the %s store, from a backup of the %s store taken %s by walletd %s\n",
		res.Counts, res.Kind, h.Source, h.CreatedAt.Format(time.RFC3339), h.WalletdVersion)
	fmt.Fprintf(stdout, "verify: ok (%s store)\n", res.Kind)
	return 0
}

func spool(r io.Reader) (string, func(), error) {
	f, err := os.CreateTemp("", "walletctl-restore-*.jsonl.gz")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { _ = os.Remove(f.Name()) }
	if _, err := io.Copy(f, r); err != nil {
		_ = f.Close()
		cleanup()
		return "", nil, err
	}
	if err := f.Close(); err != nil {
		cleanup()
		return "", nil, err
	}
	return f.Name(), cleanup, nil
}

func checkBackup(path string, stdin io.Reader, stdout, stderr io.Writer) int {
	in := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(stderr, "walletctl: check-backup:", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	h, tr, err := backup.Check(bufio.NewReaderSize(in, 1<<20))
	if err != nil {
		fmt.Fprintf(stderr, "walletctl: check-backup: %s: %v\n", path, err)
		return 1
	}
	fmt.Fprintf(stdout, "check-backup: ok: %s, from the %s store, taken %s by walletd %s (sha256 %s)\n",
		tr.Counts, h.Source, h.CreatedAt.Format(time.RFC3339), h.WalletdVersion, tr.SHA256)
	return 0
}

// version is the module version walletctl was built at ("dev" for a plain
// go build), recorded in each backup's header.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}
