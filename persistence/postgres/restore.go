package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/walletd/walletd/persistence/backup"
)

// restoreLockTimeout bounds the wait for the table locks: a restore that
// cannot have the tables (a walletd is writing to them, which it should not
// be) fails rather than queueing every writer behind it.
const restoreLockTimeout = "10s"

// Restore loads a backup into the store's database, which must be empty:
// no wallet, journal row or snapshot (backup.ErrNotEmpty otherwise).
//
// It runs as one transaction: the tables are locked against writers, found
// empty, then filled with COPY (one per table, streamed from the reader),
// and it commits only after the reader has reached the end of the backup
// and checked its trailer. A damaged backup, a failure or an interruption
// therefore leaves the database as empty as it was. Whether the journals add
// up is for Verify, which walletctl runs next.
func (s *Store) Restore(ctx context.Context, r *backup.Reader) (backup.Counts, error) {
	if s.isClosed() {
		return backup.Counts{}, ErrClosed
	}
	counts, err := s.restore(ctx, r)
	if err != nil {
		return backup.Counts{}, fmt.Errorf("postgres: restore: %w", err)
	}
	return counts, nil
}

func (s *Store) restore(ctx context.Context, r *backup.Reader) (backup.Counts, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return backup.Counts{}, err
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return backup.Counts{}, err
	}
	defer tx.Rollback(context.Background()) // a no-op after Commit

	// EXCLUSIVE lets readers be and blocks every writer until the commit,
	// so the tables cannot stop being empty between the check and the COPY.
	if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '"+restoreLockTimeout+"'"); err != nil {
		return backup.Counts{}, err
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE wallets, journal, snapshots IN EXCLUSIVE MODE"); err != nil {
		return backup.Counts{}, fmt.Errorf("lock the tables: %w", err)
	}
	var wallets int64
	var journal, snapshots bool
	if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM wallets),
		EXISTS (SELECT 1 FROM journal), EXISTS (SELECT 1 FROM snapshots)`).Scan(&wallets, &journal, &snapshots); err != nil {
		return backup.Counts{}, err
	}
	if wallets > 0 || journal || snapshots {
		return backup.Counts{}, fmt.Errorf("%w: the Postgres database holds %d wallet(s) (journal rows: %v, snapshots: %v); restore only into a fresh database", backup.ErrNotEmpty, wallets, journal, snapshots)
	}

	var copied backup.Counts
	for _, t := range []struct {
		table string
		cols  []string
		kind  backup.Kind
		n     *uint64
	}{
		// updated_at and epoch take their defaults.
		{"wallets", []string{"player_id", "currency", "version", "balance", "created_at"}, backup.KindWallet, &copied.Wallets},
		{"journal", []string{"player_id", "seq", "tx_id", "kind", "amount", "balance_after", "round_id", "game_id", "ref_tx_id",
			"bet_key", "settles", "tombstone", "created_at"}, backup.KindEvent, &copied.Events},
		{"snapshots", []string{"player_id", "version", "data"}, backup.KindSnapshot, &copied.Snapshots},
	} {
		src := &copySource{r: r, kind: t.kind}
		n, err := tx.CopyFrom(ctx, pgx.Identifier{t.table}, t.cols, src)
		if src.err != nil {
			return backup.Counts{}, fmt.Errorf("nothing was written: %w", src.err)
		}
		if err != nil {
			if derr := r.Drain(); errors.Is(derr, backup.ErrCorrupt) {
				return backup.Counts{}, fmt.Errorf("nothing was written: %w (the copy into %s failed first: %v)", derr, t.table, err)
			}
			return backup.Counts{}, fmt.Errorf("nothing was written: copy into %s: %w", t.table, err)
		}
		*t.n = uint64(n)
	}
	// The sections are in order, so after the snapshots only the trailer is
	// left: this checks it (counts, checksum) before anything commits.
	rec, err := r.Next()
	if err != nil {
		return backup.Counts{}, fmt.Errorf("nothing was written: %w", err)
	}
	if rec.Kind != backup.KindEnd {
		return backup.Counts{}, fmt.Errorf("nothing was written: a record of kind %d after the snapshots", rec.Kind)
	}
	if copied != r.Counts() {
		return backup.Counts{}, fmt.Errorf("nothing was written: copied %v, the backup holds %v", copied, r.Counts())
	}
	if err := tx.Commit(ctx); err != nil {
		return backup.Counts{}, fmt.Errorf("commit: %w", err)
	}
	return copied, nil
}

// copySource feeds COPY the records of one kind, stopping (without
// consuming it) at the first record of the next section.
type copySource struct {
	r    *backup.Reader
	kind backup.Kind
	vals []any
	err  error
}

func (c *copySource) Next() bool {
	rec, err := c.r.Peek()
	if err != nil {
		c.err = err
		return false
	}
	if rec.Kind != c.kind {
		return false
	}
	if _, err := c.r.Next(); err != nil {
		c.err = err
		return false
	}
	c.vals, c.err = values(rec)
	return c.err == nil
}

func (c *copySource) Values() ([]any, error) { return c.vals, c.err }
func (c *copySource) Err() error             { return c.err }

// values are a record's columns as COPY (binary) takes them. Money goes as
// pgtype.Numeric parsed from the backup's text, which keeps its scale:
// "12.50" stays 12.50, never 12.5.
func values(rec backup.Record) ([]any, error) {
	switch rec.Kind {
	case backup.KindWallet:
		w := rec.Wallet
		bal, err := numeric(w.Balance)
		if err != nil {
			return nil, fmt.Errorf("wallet %s: %w", w.PlayerID, err)
		}
		return []any{w.PlayerID, w.Currency, int64(w.Version), bal, w.CreatedAt}, nil
	case backup.KindEvent:
		e := rec.Event
		amount, err := numeric(e.Amount)
		if err != nil {
			return nil, fmt.Errorf("journal of %s, seq %d: %w", e.PlayerID, e.Seq, err)
		}
		after, err := numeric(e.BalanceAfter)
		if err != nil {
			return nil, fmt.Errorf("journal of %s, seq %d: %w", e.PlayerID, e.Seq, err)
		}
		// As the batch writer stores them: NULL for no bet key and for no
		// settled bets.
		var betKey *string
		if k := e.BetKey(); k != "" {
			betKey = &k
		}
		var settles []string
		if len(e.Settles) > 0 {
			settles = e.Settles
		}
		return []any{e.PlayerID, int64(e.Seq), e.TxID, e.Kind, amount, after, e.RoundID, e.GameID, e.RefTxID,
			betKey, settles, e.Tombstone, e.CreatedAt}, nil
	case backup.KindSnapshot:
		sn := rec.Snapshot
		return []any{sn.PlayerID, int64(sn.Version), string(sn.Data)}, nil
	}
	return nil, fmt.Errorf("record of kind %d", rec.Kind)
}

func numeric(s string) (pgtype.Numeric, error) {
	var n pgtype.Numeric
	if err := n.Scan(s); err != nil {
		return n, fmt.Errorf("amount %q: %w", s, err)
	}
	return n, nil
}
