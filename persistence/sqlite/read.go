package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/wallet"
)

// eventCols is the journal's columns in the order scanEvent reads them, with
// the optional strings turned back from NULL into "".
func eventCols(t string) string {
	return fmt.Sprintf(`%[1]sseq, %[1]stx_id, %[1]skind, %[1]samount, %[1]sbalance_after,
		COALESCE(%[1]sround_id, ''), COALESCE(%[1]sgame_id, ''), COALESCE(%[1]sref_tx_id, ''),
		%[1]ssettles, %[1]stombstone, %[1]screated_at`, t)
}

// lookupSQL finds the events of Lookup: ?1 is the player, ?2 the ids as a
// JSON array. Every access to the journal is an index probe (tx_id, ref,
// round wins), so a lookup costs the same in a wallet of ten events or ten
// million. The indexes and the join order (CROSS JOIN keeps the found bets
// outside) are pinned because without statistics SQLite prefers to walk the
// wallet's whole journal by primary key; TestLookupUsesIndexes guards it.
// UNION also drops events found twice.
var lookupSQL = `WITH found AS (
		SELECT * FROM journal INDEXED BY journal_tx_id
			WHERE player_id = ?1 AND tx_id IN (SELECT value FROM json_each(?2))
		UNION
		SELECT * FROM journal INDEXED BY journal_ref
			WHERE player_id = ?1 AND ref_tx_id IN (SELECT value FROM json_each(?2))
	)
	SELECT ` + eventCols("") + ` FROM found
	UNION
	SELECT ` + eventCols("w.") + ` FROM found b
		CROSS JOIN journal w INDEXED BY journal_round_wins
		WHERE b.kind = 'bet' AND w.player_id = ?1 AND w.kind = 'win' AND w.round_id = b.round_id AND w.seq > b.seq
	ORDER BY 1`

// readStmts are prepared on the read pool; database/sql prepares each on a
// pooled connection the first time that connection needs it.
type readStmts struct {
	wallet, snapshot, tail, history, lookup *sql.Stmt
	stmts
}

func prepareRead(ctx context.Context, db *sql.DB) (*readStmts, error) {
	rs := &readStmts{}
	if err := rs.prepare(ctx, db, []stmtDef{
		{&rs.wallet, `SELECT currency, version, balance, created_at FROM wallets WHERE player_id = ?`},
		{&rs.snapshot, `SELECT version, data FROM snapshots WHERE player_id = ?`},
		{&rs.tail, `SELECT ` + eventCols("") + ` FROM journal WHERE player_id = ? AND seq > ? ORDER BY seq`},
		{&rs.history, `SELECT ` + eventCols("") + ` FROM journal WHERE player_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`},
		{&rs.lookup, lookupSQL},
	}); err != nil {
		return nil, err
	}
	return rs, nil
}

// walletRow is a row of wallets.
type walletRow struct {
	currency wallet.Currency
	version  uint64
	balance  wallet.Amount
	created  int64
}

func readWallet(ctx context.Context, st *sql.Stmt, playerID string) (walletRow, error) {
	var code, balance string
	var version, created int64
	if err := st.QueryRowContext(ctx, playerID).Scan(&code, &version, &balance, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return walletRow{}, fmt.Errorf("sqlite: wallet %s: %w", playerID, actors.ErrNotFound)
		}
		return walletRow{}, fmt.Errorf("sqlite: read wallet %s: %w", playerID, err)
	}
	c, ok := wallet.LookupCurrency(code)
	if !ok {
		return walletRow{}, fmt.Errorf("sqlite: wallet %s has unknown currency %q", playerID, code)
	}
	bal, err := wallet.ParseStored(balance, c)
	if err != nil {
		return walletRow{}, fmt.Errorf("sqlite: wallet %s: balance: %w", playerID, err)
	}
	return walletRow{currency: c, version: uint64(version), balance: bal, created: created}, nil
}

// Load reads the wallet, its latest snapshot and the events after it, all
// from one read transaction so that they agree with each other.
func (s *Store) Load(ctx context.Context, playerID string) (_ actors.Loaded, err error) {
	if s.isClosed.Load() {
		return actors.Loaded{}, ErrClosed
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return actors.Loaded{}, fmt.Errorf("sqlite: load %s: %w", playerID, err)
	}
	defer func() { _ = tx.Rollback() }() // read-only: nothing to keep

	row, err := readWallet(ctx, tx.StmtContext(ctx, s.rs.wallet), playerID)
	if err != nil {
		return actors.Loaded{}, err
	}
	loaded := actors.Loaded{Wallet: actors.Wallet{PlayerID: playerID, Currency: row.currency, CreatedAt: fromNanos(row.created)}}
	sn, err := readSnapshot(ctx, tx.StmtContext(ctx, s.rs.snapshot), playerID)
	if err != nil {
		return actors.Loaded{}, err
	}
	after := uint64(0)
	if sn != nil {
		if sn.Version > row.version {
			return actors.Loaded{}, fmt.Errorf("sqlite: wallet %s: snapshot at %d is past the wallet's version %d", playerID, sn.Version, row.version)
		}
		loaded.Snapshot, after = sn, sn.Version
	}
	rows, err := tx.StmtContext(ctx, s.rs.tail).QueryContext(ctx, playerID, int64(after))
	if err != nil {
		return actors.Loaded{}, fmt.Errorf("sqlite: load %s: %w", playerID, err)
	}
	if loaded.Tail, err = scanEvents(rows, row.currency, playerID); err != nil {
		return actors.Loaded{}, err
	}
	// Activation must never start from a journal that disagrees with the
	// wallet row: the actor would then write from a wrong version.
	next := after + 1
	for _, ev := range loaded.Tail {
		if ev.Seq != next {
			return actors.Loaded{}, fmt.Errorf("sqlite: wallet %s: journal has seq %d where %d belongs", playerID, ev.Seq, next)
		}
		next++
	}
	if next-1 != row.version {
		return actors.Loaded{}, fmt.Errorf("sqlite: wallet %s: journal ends at %d, the wallet is at version %d", playerID, next-1, row.version)
	}
	return loaded, nil
}

func readSnapshot(ctx context.Context, st *sql.Stmt, playerID string) (*wallet.Snapshot, error) {
	var version int64
	var data string
	if err := st.QueryRowContext(ctx, playerID).Scan(&version, &data); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		return nil, fmt.Errorf("sqlite: read snapshot of %s: %w", playerID, err)
	}
	var sn wallet.Snapshot
	if err := json.Unmarshal([]byte(data), &sn); err != nil {
		return nil, fmt.Errorf("sqlite: decode snapshot of %s: %w", playerID, err)
	}
	if sn.Version != uint64(version) {
		return nil, fmt.Errorf("sqlite: snapshot of %s says version %d, its row %d", playerID, sn.Version, version)
	}
	return &sn, nil
}

// Lookup returns the events whose tx_id or ref is one of ids, and the wins
// of the rounds of the bets among them that come after those bets, in seq
// order. An unknown wallet is ErrNotFound.
func (s *Store) Lookup(ctx context.Context, playerID string, ids []string) ([]wallet.Event, error) {
	if s.isClosed.Load() {
		return nil, ErrClosed
	}
	row, err := readWallet(ctx, s.rs.wallet, playerID)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("sqlite: lookup in %s: %w", playerID, err)
	}
	rows, err := s.rs.lookup.QueryContext(ctx, playerID, string(list))
	if err != nil {
		return nil, fmt.Errorf("sqlite: lookup in %s: %w", playerID, err)
	}
	return scanEvents(rows, row.currency, playerID)
}

// History returns up to limit events with seq < before (0: from the
// newest), newest first. An unknown wallet is ErrNotFound.
func (s *Store) History(ctx context.Context, playerID string, before uint64, limit int) ([]wallet.Event, error) {
	if s.isClosed.Load() {
		return nil, ErrClosed
	}
	row, err := readWallet(ctx, s.rs.wallet, playerID)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	bound := int64(math.MaxInt64)
	if before != 0 && before < math.MaxInt64 {
		bound = int64(before)
	}
	rows, err := s.rs.history.QueryContext(ctx, playerID, bound, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: history of %s: %w", playerID, err)
	}
	return scanEvents(rows, row.currency, playerID)
}

// scanEvents reads and closes rows.
func scanEvents(rows *sql.Rows, c wallet.Currency, playerID string) (_ []wallet.Event, err error) {
	defer func() {
		if cerr := rows.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("sqlite: read journal of %s: %w", playerID, cerr)
		}
	}()
	var evs []wallet.Event
	for rows.Next() {
		ev, err := scanEvent(rows, c)
		if err != nil {
			return nil, fmt.Errorf("sqlite: read journal of %s: %w", playerID, err)
		}
		evs = append(evs, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: read journal of %s: %w", playerID, err)
	}
	return evs, nil
}

// scanEvent decodes one journal row in eventCols order.
func scanEvent(rows *sql.Rows, c wallet.Currency) (wallet.Event, error) {
	var ev wallet.Event
	var seq, tomb, at int64
	var kind, amount, after, settles string
	if err := rows.Scan(&seq, &ev.TxID, &kind, &amount, &after, &ev.RoundID, &ev.GameID, &ev.Ref, &settles, &tomb, &at); err != nil {
		return wallet.Event{}, err
	}
	ev.Seq, ev.Kind, ev.Tombstone, ev.At = uint64(seq), wallet.Kind(kind), tomb != 0, fromNanos(at)
	if !ev.Kind.Valid() {
		return wallet.Event{}, fmt.Errorf("event %d has kind %q", seq, kind)
	}
	var err error
	if ev.Amount, err = wallet.ParseStored(amount, c); err != nil {
		return wallet.Event{}, fmt.Errorf("event %d: amount: %w", seq, err)
	}
	if ev.BalanceAfter, err = wallet.ParseStored(after, c); err != nil {
		return wallet.Event{}, fmt.Errorf("event %d: balance: %w", seq, err)
	}
	if settles != "" {
		ev.Settles = strings.Split(settles, ",")
	}
	return ev, nil
}
