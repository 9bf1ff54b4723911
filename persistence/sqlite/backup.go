package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/walletd/walletd/persistence/backup"
)

// Backup writes a backup of the embedded store in dir to out, in the
// store-independent format of persistence/backup. It is an online backup:
// walletd may be serving from dir meanwhile.
//
// It takes neither the folder lock (walletd holds it) nor any write lock: it
// opens the database file read-only, as a second process may in WAL mode,
// and reads everything in one read transaction, which is a consistent
// snapshot of the last commit before it began — every write committed
// before the backup started is in it, nothing committed after, and no
// wallet is ever half-written. Rows are streamed from SQLite to out, so
// memory does not grow with the store.
//
// While the read transaction is open, walletd's checkpoints cannot move the
// WAL past it, so the WAL file grows with the traffic of the backup's
// duration; checkpoints catch up once it ends.
func Backup(ctx context.Context, dir string, out io.Writer, walletdVersion string) (backup.Trailer, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return backup.Trailer{}, fmt.Errorf("sqlite: backup: store folder %q: %w", dir, err)
	}
	path := filepath.Join(abs, DBFile)
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return backup.Trailer{}, fmt.Errorf("sqlite: backup: no embedded store in %s (no %s)", abs, DBFile)
		}
		return backup.Trailer{}, fmt.Errorf("sqlite: backup: %w", err)
	}
	db, err := sql.Open("sqlite", readOnlyDSN(path, 5*time.Second))
	if err != nil {
		return backup.Trailer{}, fmt.Errorf("sqlite: backup: open %s: %w", path, err)
	}
	defer db.Close()
	// One connection: every query below must run inside the same read
	// transaction, and database/sql would otherwise spread them over a pool.
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return backup.Trailer{}, fmt.Errorf("sqlite: backup: open %s: %w", path, err)
	}
	defer conn.Close()

	// A deferred BEGIN takes the snapshot at the transaction's first read
	// (the schema check); every later query sees that same state.
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return backup.Trailer{}, fmt.Errorf("sqlite: backup: begin: %w", err)
	}
	defer func() { _, _ = conn.ExecContext(context.Background(), "ROLLBACK") }() // read-only: nothing to keep

	var schema int
	if err := conn.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&schema); err != nil {
		return backup.Trailer{}, fmt.Errorf("sqlite: backup: %s is not a walletd store: %w", path, err)
	}
	if schema != len(migrations) {
		// The logical format is written from this schema's columns.
		return backup.Trailer{}, fmt.Errorf("sqlite: backup: %s is at schema version %d, this walletctl reads version %d: use the walletctl of the walletd that serves it", path, schema, len(migrations))
	}

	w, err := backup.NewWriter(out, backup.Header{Source: backup.SourceEmbedded, CreatedAt: time.Now(), WalletdVersion: walletdVersion})
	if err != nil {
		return backup.Trailer{}, fmt.Errorf("sqlite: backup: %w", err)
	}
	if err := backupWallets(ctx, conn, w); err != nil {
		return backup.Trailer{}, err
	}
	if err := backupJournal(ctx, conn, w); err != nil {
		return backup.Trailer{}, err
	}
	if err := backupSnapshots(ctx, conn, w); err != nil {
		return backup.Trailer{}, err
	}
	t, err := w.Close()
	if err != nil {
		return backup.Trailer{}, fmt.Errorf("sqlite: backup: %w", err)
	}
	return t, nil
}

// readOnlyDSN opens path read-only through a file: URI, which the driver
// hands to SQLite whole (a plain path would lose mode=ro). query_only is a
// second guard in case a future driver drops mode.
func readOnlyDSN(path string, busy time.Duration) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path)}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "query_only(1)")
	return u.String() + "?" + q.Encode()
}

// rowsEach runs query on conn and calls scan for each row, closing the rows.
func rowsEach(ctx context.Context, conn *sql.Conn, what, query string, scan func(*sql.Rows) error) error {
	rows, err := conn.QueryContext(ctx, query)
	if err != nil {
		return fmt.Errorf("sqlite: backup: read %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("sqlite: backup: %s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: backup: read %s: %w", what, err)
	}
	return nil
}

func backupWallets(ctx context.Context, conn *sql.Conn, w *backup.Writer) error {
	return rowsEach(ctx, conn, "wallets",
		`SELECT player_id, currency, version, balance, created_at FROM wallets ORDER BY player_id`,
		func(rows *sql.Rows) error {
			var r backup.Wallet
			var version, created int64
			if err := rows.Scan(&r.PlayerID, &r.Currency, &version, &r.Balance, &created); err != nil {
				return err
			}
			r.Version, r.CreatedAt = uint64(version), fromNanos(created)
			return w.Wallet(r)
		})
}

func backupJournal(ctx context.Context, conn *sql.Conn, w *backup.Writer) error {
	// The journal's primary key is (player_id, seq), so this ordered read is a
	// plain walk of the table.
	return rowsEach(ctx, conn, "journal",
		`SELECT player_id, `+eventCols("")+` FROM journal ORDER BY player_id, seq`,
		func(rows *sql.Rows) error {
			var r backup.Event
			var seq, tomb, at int64
			var settles string
			if err := rows.Scan(&r.PlayerID, &seq, &r.TxID, &r.Kind, &r.Amount, &r.BalanceAfter,
				&r.RoundID, &r.GameID, &r.RefTxID, &settles, &tomb, &at); err != nil {
				return err
			}
			r.Seq, r.Tombstone, r.CreatedAt = uint64(seq), tomb != 0, fromNanos(at)
			if settles != "" {
				r.Settles = strings.Split(settles, ",")
			}
			return w.Event(r)
		})
}

func backupSnapshots(ctx context.Context, conn *sql.Conn, w *backup.Writer) error {
	return rowsEach(ctx, conn, "snapshots",
		`SELECT player_id, version, data FROM snapshots ORDER BY player_id`,
		func(rows *sql.Rows) error {
			var r backup.Snapshot
			var version int64
			var data string
			if err := rows.Scan(&r.PlayerID, &version, &data); err != nil {
				return err
			}
			r.Version, r.Data = uint64(version), []byte(data)
			return w.Snapshot(r)
		})
}
