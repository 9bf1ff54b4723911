package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/walletd/walletd/persistence/backup"
)

// backupFetch is how many rows each FETCH of a backup cursor brings: enough
// to keep round trips rare, few enough that memory stays small.
const backupFetch = 2000

// Backup writes a backup of the walletd database named by dsn to out, in
// the store-independent format of persistence/backup, while walletd serves.
//
// It reads everything in one REPEATABLE READ READ ONLY transaction: one
// snapshot of the database, so every batch committed before the backup
// began is in it, none after, and no wallet is half-written (each batch is
// a single statement). Rows come through cursors, a bounded number per
// round trip, so memory does not grow with the database. It uses a
// connection of its own, writes nothing (not even migrations), and holds
// only the ACCESS SHARE locks any reader takes; the open snapshot does hold
// back vacuum for as long as the backup runs.
func Backup(ctx context.Context, dsn string, out io.Writer, walletdVersion string) (backup.Trailer, error) {
	t, err := runBackup(ctx, dsn, out, walletdVersion)
	if err != nil {
		return backup.Trailer{}, fmt.Errorf("postgres: backup: %w", err)
	}
	return t, nil
}

func runBackup(ctx context.Context, dsn string, out io.Writer, walletdVersion string) (backup.Trailer, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return backup.Trailer{}, fmt.Errorf("parse dsn: %w", err)
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "walletctl backup"
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return backup.Trailer{}, fmt.Errorf("connect: %w", err)
	}
	defer closeConn(conn)

	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return backup.Trailer{}, err
	}
	defer tx.Rollback(context.Background()) // read-only: nothing to keep

	// The first query takes the snapshot; created_at is stamped right after.
	if err := checkSchema(ctx, tx); err != nil {
		return backup.Trailer{}, err
	}
	w, err := backup.NewWriter(out, backup.Header{Source: backup.SourcePostgres, CreatedAt: time.Now(), WalletdVersion: walletdVersion})
	if err != nil {
		return backup.Trailer{}, err
	}

	err = fetchAll(ctx, tx, "backup_wallets",
		`SELECT player_id, currency, version, balance::text, created_at FROM wallets ORDER BY player_id`,
		func(rows pgx.Rows) error {
			var r backup.Wallet
			var version int64
			if err := rows.Scan(&r.PlayerID, &r.Currency, &version, &r.Balance, &r.CreatedAt); err != nil {
				return err
			}
			r.Version = uint64(version)
			return w.Wallet(r)
		})
	if err != nil {
		return backup.Trailer{}, fmt.Errorf("wallets: %w", err)
	}
	// Ordered by the journal's primary key: a walk of its index.
	err = fetchAll(ctx, tx, "backup_journal",
		`SELECT player_id, seq, tx_id, kind, amount::text, balance_after::text, round_id, game_id, ref_tx_id,
			settles, tombstone, created_at
		FROM journal ORDER BY player_id, seq`,
		func(rows pgx.Rows) error {
			var r backup.Event
			var seq int64
			if err := rows.Scan(&r.PlayerID, &seq, &r.TxID, &r.Kind, &r.Amount, &r.BalanceAfter, &r.RoundID, &r.GameID, &r.RefTxID,
				&r.Settles, &r.Tombstone, &r.CreatedAt); err != nil {
				return err
			}
			r.Seq = uint64(seq)
			return w.Event(r)
		})
	if err != nil {
		return backup.Trailer{}, fmt.Errorf("journal: %w", err)
	}
	err = fetchAll(ctx, tx, "backup_snapshots",
		`SELECT player_id, version, data::text FROM snapshots ORDER BY player_id`,
		func(rows pgx.Rows) error {
			var r backup.Snapshot
			var version int64
			var data string
			if err := rows.Scan(&r.PlayerID, &version, &data); err != nil {
				return err
			}
			r.Version, r.Data = uint64(version), []byte(data)
			return w.Snapshot(r)
		})
	if err != nil {
		return backup.Trailer{}, fmt.Errorf("snapshots: %w", err)
	}
	return w.Close()
}

// checkSchema refuses a database that is not at the schema this binary
// embeds: the backup is written from this schema's columns.
func checkSchema(ctx context.Context, tx pgx.Tx) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	var version int
	err = tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&version)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return errors.New("the database holds no walletd schema (no schema_migrations table)")
	}
	if err != nil {
		return err
	}
	if want := ms[len(ms)-1].version; version != want {
		return fmt.Errorf("the database is at schema version %d, this walletctl reads version %d: use the walletctl of the walletd that serves it", version, want)
	}
	return nil
}

// fetchAll runs query through a cursor, backupFetch rows at a time, calling
// scan on each row.
func fetchAll(ctx context.Context, tx pgx.Tx, cursor, query string, scan func(pgx.Rows) error) error {
	if _, err := tx.Exec(ctx, "DECLARE "+cursor+" NO SCROLL CURSOR FOR "+query); err != nil {
		return err
	}
	fetch := fmt.Sprintf("FETCH FORWARD %d FROM %s", backupFetch, cursor)
	for {
		rows, err := tx.Query(ctx, fetch)
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			n++
			if err := scan(rows); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if n < backupFetch {
			break
		}
	}
	_, err := tx.Exec(ctx, "CLOSE "+cursor)
	return err
}
