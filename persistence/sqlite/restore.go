package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/walletd/walletd/persistence/backup"
	"github.com/walletd/walletd/wallet"
)

// Restore loads a backup into the store, which must be empty: no wallet,
// journal row or snapshot (backup.ErrNotEmpty otherwise). Nothing else may
// write to the store meanwhile; walletctl restore is the only caller, and
// the folder lock keeps walletd out.
//
// Everything is written in one transaction that commits only after the
// reader has reached the end of the backup and checked its trailer, so a
// backup that turns out damaged, or a restore that fails or is interrupted
// halfway, leaves the store as empty as it was and the restore can simply be
// run again. Amounts are parsed in their wallet's currency and written back
// in the store's canonical form, so an event of a wallet the backup does not
// have, or an amount the currency cannot hold, fails the restore here.
// Whether the journals add up is for Verify, which walletctl runs next.
func (s *Store) Restore(ctx context.Context, r *backup.Reader) (backup.Counts, error) {
	if s.isClosed.Load() {
		return backup.Counts{}, ErrClosed
	}
	// A connection of its own rather than the writer's: the writer goroutine
	// owns that one. It is a full write connection (synchronous FULL), so
	// the COMMIT is durable like any other.
	db, err := sql.Open("sqlite", dsn(filepath.Join(s.dir, DBFile), s.opts.BusyTimeout, false))
	if err != nil {
		return backup.Counts{}, fmt.Errorf("sqlite: restore: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return backup.Counts{}, fmt.Errorf("sqlite: restore: %w", err)
	}
	defer conn.Close()

	// IMMEDIATE: the write lock is held from here to COMMIT, so the store
	// cannot stop being empty between the check and the inserts.
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return backup.Counts{}, fmt.Errorf("sqlite: restore: begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	if err := checkEmpty(ctx, conn, s.dir); err != nil {
		return backup.Counts{}, err
	}
	rs, err := newRestorer(ctx, conn, s.opts.Now().UnixNano())
	if err != nil {
		return backup.Counts{}, err
	}
	defer rs.close()
	for {
		rec, err := r.Next()
		if err != nil {
			return backup.Counts{}, fmt.Errorf("sqlite: restore: nothing was written: %w", err)
		}
		if rec.Kind == backup.KindEnd {
			break
		}
		if err := rs.restore(ctx, rec); err != nil {
			if derr := r.Drain(); errors.Is(derr, backup.ErrCorrupt) {
				return backup.Counts{}, fmt.Errorf("sqlite: restore: nothing was written: %w (a record failed first: %v)", derr, err)
			}
			return backup.Counts{}, fmt.Errorf("sqlite: restore: nothing was written: %w", err)
		}
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return backup.Counts{}, fmt.Errorf("sqlite: restore: commit: %w", err)
	}
	committed = true
	return r.Counts(), nil
}

func checkEmpty(ctx context.Context, conn *sql.Conn, dir string) error {
	var wallets int64
	var journal, snapshots bool
	if err := conn.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM wallets),
		EXISTS (SELECT 1 FROM journal), EXISTS (SELECT 1 FROM snapshots)`).Scan(&wallets, &journal, &snapshots); err != nil {
		return fmt.Errorf("sqlite: restore: %w", err)
	}
	if wallets > 0 || journal || snapshots {
		return fmt.Errorf("%w: the embedded store in %s holds %d wallet(s) (journal rows: %v, snapshots: %v); restore only into a fresh store", backup.ErrNotEmpty, dir, wallets, journal, snapshots)
	}
	return nil
}

// restorer holds the statements of one restore and the currency of the
// wallet whose events are streaming past (the journal comes grouped by
// wallet, so one lookup serves a whole journal).
type restorer struct {
	wallet, event, snapshot, currency *sql.Stmt
	now                               int64
	player                            string
	cur                               wallet.Currency
}

func newRestorer(ctx context.Context, conn *sql.Conn, now int64) (*restorer, error) {
	rs := &restorer{now: now}
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&rs.wallet, `INSERT INTO wallets (player_id, currency, version, balance, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`},
		{&rs.event, `INSERT INTO journal (player_id, seq, tx_id, kind, amount, balance_after,
			round_id, game_id, ref_tx_id, bet_key, settles, tombstone, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&rs.snapshot, `INSERT INTO snapshots (player_id, version, data) VALUES (?, ?, ?)`},
		{&rs.currency, `SELECT currency FROM wallets WHERE player_id = ?`},
	} {
		st, err := conn.PrepareContext(ctx, p.sql)
		if err != nil {
			rs.close()
			return nil, fmt.Errorf("sqlite: restore: prepare: %w", err)
		}
		*p.dst = st
	}
	return rs, nil
}

func (rs *restorer) close() {
	for _, st := range []*sql.Stmt{rs.wallet, rs.event, rs.snapshot, rs.currency} {
		if st != nil {
			_ = st.Close()
		}
	}
}

func (rs *restorer) restore(ctx context.Context, rec backup.Record) error {
	switch rec.Kind {
	case backup.KindWallet:
		w := rec.Wallet
		c, _ := wallet.LookupCurrency(w.Currency) // the reader checked it
		bal, err := wallet.ParseStored(w.Balance, c)
		if err != nil {
			return fmt.Errorf("wallet %s: %w", w.PlayerID, err)
		}
		if _, err := rs.wallet.ExecContext(ctx, w.PlayerID, c.Code, int64(w.Version), bal.String(), nanos(w.CreatedAt), rs.now); err != nil {
			return fmt.Errorf("wallet %s: %w", w.PlayerID, err)
		}
	case backup.KindEvent:
		e := rec.Event
		if e.PlayerID != rs.player {
			var code string
			err := rs.currency.QueryRowContext(ctx, e.PlayerID).Scan(&code)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("journal of %s: the backup has no wallet %s", e.PlayerID, e.PlayerID)
			}
			if err != nil {
				return fmt.Errorf("journal of %s: %w", e.PlayerID, err)
			}
			// The code is that of a wallet row this restore wrote after the
			// reader had checked it.
			rs.player = e.PlayerID
			rs.cur, _ = wallet.LookupCurrency(code)
		}
		amount, err := wallet.ParseStored(e.Amount, rs.cur)
		if err != nil {
			return fmt.Errorf("journal of %s, seq %d: %w", e.PlayerID, e.Seq, err)
		}
		after, err := wallet.ParseStored(e.BalanceAfter, rs.cur)
		if err != nil {
			return fmt.Errorf("journal of %s, seq %d: %w", e.PlayerID, e.Seq, err)
		}
		if _, err := rs.event.ExecContext(ctx, e.PlayerID, int64(e.Seq), e.TxID, e.Kind, amount.String(), after.String(),
			nullable(e.RoundID), nullable(e.GameID), nullable(e.RefTxID), nullable(e.BetKey()),
			strings.Join(e.Settles, ","), boolInt(e.Tombstone), nanos(e.CreatedAt)); err != nil {
			return fmt.Errorf("journal of %s, seq %d (%s): %w", e.PlayerID, e.Seq, e.TxID, err)
		}
	case backup.KindSnapshot:
		sn := rec.Snapshot
		if _, err := rs.snapshot.ExecContext(ctx, sn.PlayerID, int64(sn.Version), string(sn.Data)); err != nil {
			return fmt.Errorf("snapshot of %s: %w", sn.PlayerID, err)
		}
	}
	return nil
}
