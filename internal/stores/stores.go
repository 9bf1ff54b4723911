// Package stores opens the store the configuration selects — Postgres when
// WALLET_PG_DSN is set, else the embedded store in WALLET_DATA_DIR — for
// both binaries, so walletd and walletctl can never disagree about it.
package stores

import (
	"context"
	"fmt"
	"time"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/internal/config"
	"github.com/walletd/walletd/persistence/backup"
	"github.com/walletd/walletd/persistence/postgres"
	"github.com/walletd/walletd/persistence/sqlite"
)

// Store is a store plus the operations walletctl needs.
type Store interface {
	actors.Store
	// Kind is "postgres" or "embedded".
	Kind() string
	// Verify lists every inconsistency between balances and journals.
	Verify(ctx context.Context) ([]string, error)
	// Restore loads a backup into the store, which must be empty (see
	// RestoreFile, which checks the file first and verifies after).
	Restore(ctx context.Context, r *backup.Reader) (backup.Counts, error)
}

// Hooks observe the store; all optional.
type Hooks struct {
	// OnCommit is called after each group commit (see the stores' Options).
	OnCommit func(writes, events int, took time.Duration, err error)
}

// Open opens the configured store.
func Open(ctx context.Context, cfg config.Config, h Hooks) (Store, error) {
	if cfg.PGDSN != "" {
		st, err := postgres.Open(ctx, cfg.PGDSN, postgres.Options{Writers: cfg.PGWriters, MaxConns: max(8, cfg.PGWriters+4), OnCommit: h.OnCommit})
		if err != nil {
			return nil, fmt.Errorf("open the Postgres store: %w", err)
		}
		return pgStore{st}, nil
	}
	st, err := sqlite.Open(cfg.DataDir, sqlite.Options{OnCommit: h.OnCommit})
	if err != nil {
		return nil, fmt.Errorf("open the embedded store in %s: %w", cfg.DataDir, err)
	}
	return sqliteStore{st}, nil
}

// Migrate brings the configured store's schema up to date.
func Migrate(ctx context.Context, cfg config.Config) error {
	if cfg.PGDSN != "" {
		return postgres.Migrate(ctx, cfg.PGDSN)
	}
	st, err := sqlite.Open(cfg.DataDir, sqlite.Options{}) // opening migrates
	if err != nil {
		return err
	}
	return st.Close()
}

type pgStore struct{ *postgres.Store }

func (pgStore) Kind() string { return "postgres" }

func (s pgStore) Verify(ctx context.Context) ([]string, error) {
	ps, err := s.Store.Verify(ctx)
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.PlayerID + ": " + p.Detail
	}
	return out, err
}

type sqliteStore struct{ *sqlite.Store }

func (sqliteStore) Kind() string { return "embedded" }

func (s sqliteStore) Verify(ctx context.Context) ([]string, error) {
	ps, err := s.Store.Verify(ctx)
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out, err
}
