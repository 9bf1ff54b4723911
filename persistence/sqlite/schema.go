package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// migrations are applied in order, each in its own transaction, and recorded
// in schema_version; migrations[i] brings the schema to version i+1. Append
// new ones; never edit one that has shipped.
//
// Conventions: money is TEXT exactly as wallet.Amount.String() prints it
// (never REAL); times are unix nanoseconds (0 for the zero time); optional
// strings are NULL when empty, which keeps the partial indexes small and lets
// "col IN (...)" use them.
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE wallets (
	player_id  TEXT    PRIMARY KEY,
	currency   TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	balance    TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE journal (
	player_id     TEXT    NOT NULL,
	seq           INTEGER NOT NULL,
	tx_id         TEXT    NOT NULL,
	kind          TEXT    NOT NULL,
	amount        TEXT    NOT NULL,
	balance_after TEXT    NOT NULL,
	round_id      TEXT,
	game_id       TEXT,
	ref_tx_id     TEXT,
	bet_key       TEXT,              -- Event.BetKey(): a bet's tx_id, or the bet a tombstone refuses
	settles       TEXT    NOT NULL,  -- comma-separated bet tx_ids ('' when none); ids cannot hold commas
	tombstone     INTEGER NOT NULL,
	created_at    INTEGER NOT NULL,
	PRIMARY KEY (player_id, seq)
) WITHOUT ROWID;

CREATE UNIQUE INDEX journal_tx_id ON journal (player_id, tx_id);
CREATE UNIQUE INDEX journal_bet_key ON journal (player_id, bet_key) WHERE bet_key IS NOT NULL;
CREATE INDEX journal_ref ON journal (player_id, ref_tx_id) WHERE ref_tx_id IS NOT NULL;
CREATE INDEX journal_round_wins ON journal (player_id, round_id, seq) WHERE kind = 'win';

CREATE TABLE snapshots (
	player_id TEXT    PRIMARY KEY,
	version   INTEGER NOT NULL,
	data      TEXT    NOT NULL  -- JSON of wallet.Snapshot
) WITHOUT ROWID;
`,
}

// migrate brings the schema up to date. It runs on the write connection
// before the writer starts, so nothing else writes meanwhile.
func migrate(ctx context.Context, conn *sql.Conn, now time.Time) error {
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	var current int
	if err := conn.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this walletd knows (%d): refusing to open", current, len(migrations))
	}
	for v := current; v < len(migrations); v++ {
		if err := applyMigration(ctx, conn, v+1, migrations[v], now); err != nil {
			return err
		}
	}
	return nil
}

func applyMigration(ctx context.Context, conn *sql.Conn, version int, ddl string, now time.Time) (err error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %d: %w", version, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, tx.Rollback())
		}
	}()
	if _, err := tx.ExecContext(ctx, ddl); err != nil {
		return fmt.Errorf("migration %d: %w", version, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, applied_at) VALUES (?, ?)`, version, now.UnixNano()); err != nil {
		return fmt.Errorf("migration %d: record version: %w", version, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %d: commit: %w", version, err)
	}
	return nil
}
