package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/persistence/internal/pending"
	"github.com/walletd/walletd/wallet"
)

// request is one write (or a Ready probe) waiting for the writer.
type request struct {
	pending.Reply
	w     actors.Write
	rows  encoded // w's column values, encoded by the caller to spare the writer
	probe bool    // Ready: rides a batch, writes nothing, answers the batch's fate
	err   error   // set by the writer before it answers
}

// AppendAsync implements actors.AsyncAppender.
func (s *Store) AppendAsync(w actors.Write, deadline time.Time, done func(error)) bool {
	if err := check(w); err != nil {
		done(err)
		return true
	}
	rows, err := encode(w)
	if err != nil {
		done(err)
		return true
	}
	r := &request{Reply: pending.Callback(deadline, done), w: w, rows: rows}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		done(ErrClosed)
		return true
	}
	select {
	case s.queue <- r:
		return true
	default:
		return false // full: Append waits for room
	}
}

// Append durably commits one wallet's write (see actors.Store). It returns
// after the batch holding the write has committed (fsync) or failed.
//
// The write itself runs on the writer's own context: a caller giving up
// never interrupts a commit halfway. A write whose caller has given up
// before the writer reaches it is skipped (not written).
func (s *Store) Append(ctx context.Context, w actors.Write) error {
	if err := check(w); err != nil {
		return err
	}
	rows, err := encode(w)
	if err != nil {
		return err
	}
	r := &request{Reply: pending.Waiting(ctx), w: w, rows: rows}
	if err := s.enqueue(ctx, r); err != nil {
		if errors.Is(err, ErrClosed) {
			return err
		}
		return fmt.Errorf("sqlite: append to %s: %w", w.PlayerID, err)
	}
	select {
	case err := <-r.Done():
		return err
	case <-ctx.Done():
		select {
		case err := <-r.Done(): // answered meanwhile: the real outcome beats a timeout
			return err
		default:
		}
		return fmt.Errorf("sqlite: append to %s: stopped waiting for the commit, which may still happen: %w", w.PlayerID, ctx.Err())
	}
}

// check refuses writes the store could not read back correctly, before they
// take a place in the queue.
func check(w actors.Write) error {
	if w.PlayerID == "" {
		return errors.New("sqlite: write without a player id")
	}
	if err := w.Validate(); err != nil {
		return err
	}
	if w.Version() > math.MaxInt64 {
		return fmt.Errorf("sqlite: write of %s: version %d does not fit the journal", w.PlayerID, w.Version())
	}
	if c := w.Create; c != nil {
		if known, ok := wallet.LookupCurrency(c.Currency.Code); !ok || known != c.Currency {
			return fmt.Errorf("sqlite: create of %s: unknown currency %+v", w.PlayerID, c.Currency)
		}
	}
	for _, ev := range w.Events {
		if !ev.Kind.Valid() {
			return fmt.Errorf("sqlite: write of %s: event %d has kind %q", w.PlayerID, ev.Seq, ev.Kind)
		}
		if ev.TxID == "" {
			return fmt.Errorf("sqlite: write of %s: event %d has no tx_id", w.PlayerID, ev.Seq)
		}
		for _, id := range ev.Settles {
			// settles is stored comma-separated.
			if id == "" || strings.ContainsRune(id, ',') {
				return fmt.Errorf("sqlite: write of %s: event %d settles %q", w.PlayerID, ev.Seq, id)
			}
		}
	}
	return nil
}

// enqueue hands r to the writer, waiting for room until ctx is done.
func (s *Store) enqueue(ctx context.Context, r *request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	select {
	case s.queue <- r:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("write queue full (%d waiting): %w", cap(s.queue), ctx.Err())
	}
}

// run is the writer goroutine: it takes whatever is queued (up to
// MaxBatch), commits it as one transaction, answers, and starts over at once.
// Batches grow by themselves under load, because everything that arrived
// during a commit is taken by the next one; there is no timer. It exits when
// Close has closed the queue and everything queued has been committed.
func (s *Store) run() {
	defer close(s.writerDone)
	batch := make([]*request, 0, s.opts.MaxBatch)
	for {
		r, ok := <-s.queue
		if !ok {
			return
		}
		batch = append(batch[:0], r)
	drain:
		for len(batch) < s.opts.MaxBatch {
			select {
			case r, ok := <-s.queue:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		s.commit(batch)
		s.ckpt.committed()
		s.ckpt.restartIfAsked(s.wconn)
		clear(batch) // drop references to answered requests
	}
}

// commit writes one batch in one transaction and answers every request.
func (s *Store) commit(batch []*request) {
	// Never a caller's context: cancelling it would interrupt SQLite midway.
	ctx := context.Background()
	start := time.Now()
	now := s.opts.Now().UnixNano()

	// First without savepoints, which nearly every batch commits whole with.
	// A write refused by its fence wrote nothing, so it needs none; any other
	// failure would leave part of a write behind, and the batch is done
	// again, each write in a savepoint of its own.
	batchErr := s.writeBatch(ctx, batch, start, now, false)
	if errors.Is(batchErr, errCarefully) {
		batchErr = s.writeBatch(ctx, batch, start, now, true)
	}
	took := time.Since(start)

	writes, events := 0, 0
	for _, r := range batch {
		if !r.probe {
			writes++
		}
		// A refusal (fenced, keys exist, caller gone) stays as it is: it
		// remains true when the batch fails. Everything else shares the
		// batch's fate.
		if r.err == nil {
			if batchErr != nil {
				r.err = batchErr
			} else if !r.probe {
				events += len(r.w.Events)
			}
		}
	}
	// The hook runs before the replies, so whoever holds a reply also finds
	// its batch counted.
	if writes > 0 && s.opts.OnCommit != nil {
		s.opts.OnCommit(writes, events, took, batchErr)
	}
	for _, r := range batch {
		r.Send(r.err)
	}
}

// errCarefully: a write failed in a batch without savepoints; the batch
// was rolled back and is to be done again with them.
var errCarefully = errors.New("sqlite: batch to be redone with savepoints")

// writeBatch runs the batch in one transaction, setting each request's own
// refusal, and returns the error that fails the whole batch, if any.
func (s *Store) writeBatch(ctx context.Context, batch []*request, start time.Time, now int64, careful bool) error {
	for _, r := range batch {
		r.err = nil
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	var batchErr error
	for _, r := range batch {
		if r.probe {
			continue
		}
		if err := r.Gone(start); err != nil {
			r.err = fmt.Errorf("sqlite: append to %s: not written, the caller gave up: %w", r.w.PlayerID, err)
			continue
		}
		refused, fatal := s.write(ctx, r, now, careful)
		if fatal != nil {
			batchErr = fatal
			break
		}
		r.err = refused
	}
	if batchErr == nil {
		if _, err := s.ws.commit.ExecContext(ctx); err != nil {
			batchErr = fmt.Errorf("sqlite: commit batch: %w", err)
		}
	}
	if batchErr != nil {
		// End the transaction unless SQLite already rolled it back (it
		// does on I/O errors); an error here only means it had.
		_, _ = s.ws.rollback.ExecContext(ctx)
	}
	return batchErr
}

// begin opens the batch's transaction. Should an earlier failure have left a
// transaction open (a ROLLBACK that failed), it is rolled back and BEGIN
// tried once more, so one bad moment cannot fail every batch after it.
func (s *Store) begin(ctx context.Context) error {
	_, err := s.ws.begin.ExecContext(ctx)
	if err == nil {
		return nil
	}
	if _, rerr := s.ws.rollback.ExecContext(ctx); rerr == nil {
		if _, err = s.ws.begin.ExecContext(ctx); err == nil {
			return nil
		}
	}
	return fmt.Errorf("sqlite: begin batch: %w", err)
}

// write applies one wallet's write inside the batch's transaction, within a
// savepoint when careful. refused is this wallet's own failure (ErrFenced,
// *KeyExistsError, or a statement error): its savepoint was rolled back and
// the batch carries on. fatal means the transaction is unusable and the whole
// batch must fail, or, errCarefully, be done again with savepoints.
func (s *Store) write(ctx context.Context, r *request, now int64, careful bool) (refused, fatal error) {
	w := r.w
	if !careful {
		err := s.writeRows(ctx, w, &r.rows, now)
		switch {
		case err == nil:
			return nil, nil
		case errors.Is(err, actors.ErrFenced):
			// The fence is the write's first statement: nothing of it was written.
			return fencedErr(w, err), nil
		}
		return nil, errCarefully
	}
	if _, err := s.ws.savepoint.ExecContext(ctx); err != nil {
		return nil, fmt.Errorf("sqlite: savepoint for %s: %w", w.PlayerID, err)
	}
	err := s.writeRows(ctx, w, &r.rows, now)
	if err == nil {
		if _, err := s.ws.release.ExecContext(ctx); err != nil {
			return nil, fmt.Errorf("sqlite: release savepoint of %s: %w", w.PlayerID, err)
		}
		return nil, nil
	}
	if !errors.Is(err, actors.ErrFenced) && !statementLocal(err) {
		// I/O, disk full, busy...: SQLite may have rolled back the whole
		// transaction already, so no savepoint can be trusted.
		return nil, fmt.Errorf("sqlite: append to %s: %w", w.PlayerID, err)
	}
	if _, err := s.ws.rollbackTo.ExecContext(ctx); err != nil {
		return nil, fmt.Errorf("sqlite: roll back savepoint of %s: %w", w.PlayerID, err)
	}
	if _, err := s.ws.release.ExecContext(ctx); err != nil {
		return nil, fmt.Errorf("sqlite: release savepoint of %s: %w", w.PlayerID, err)
	}
	if errors.Is(err, actors.ErrFenced) {
		return fencedErr(w, err), nil
	}
	if sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_UNIQUE {
		keys, qerr := s.existingKeys(ctx, w)
		if qerr != nil {
			return nil, qerr
		}
		if len(keys) > 0 {
			return &actors.KeyExistsError{Keys: keys}, nil
		}
	}
	return fmt.Errorf("sqlite: append to %s: %w", w.PlayerID, err), nil
}

// fencedErr is the refusal of a write its fence stopped.
func fencedErr(w actors.Write, err error) error {
	return fmt.Errorf("sqlite: append to %s at version %d: %w", w.PlayerID, w.Expected, err)
}

// encoded is a write as column values. Encoding (decimal text, JSON) runs
// on the caller's goroutine, where it costs no group-commit time.
type encoded struct {
	balance  any // final balance text; nil keeps the stored one (no events)
	events   [][]any
	snapshot []byte // nil: no snapshot in the write
}

func encode(w actors.Write) (encoded, error) {
	var e encoded
	if n := len(w.Events); n > 0 {
		e.balance = w.Events[n-1].BalanceAfter.String()
	} else if c := w.Create; c != nil {
		e.balance = wallet.Zero(c.Currency).String()
	}
	e.events = make([][]any, len(w.Events))
	for i, ev := range w.Events {
		e.events[i] = []any{
			w.PlayerID, int64(ev.Seq), ev.TxID, string(ev.Kind),
			ev.Amount.String(), ev.BalanceAfter.String(),
			nullable(ev.RoundID), nullable(ev.GameID), nullable(ev.Ref), nullable(ev.BetKey()),
			strings.Join(ev.Settles, ","), boolInt(ev.Tombstone), nanos(ev.At),
		}
	}
	if w.Snapshot != nil {
		data, err := json.Marshal(w.Snapshot)
		if err != nil {
			return encoded{}, fmt.Errorf("sqlite: write of %s: encode snapshot: %w", w.PlayerID, err)
		}
		e.snapshot = data
	}
	return e, nil
}

// writeRows does the statements of one write. A stale version (or an
// existing wallet, for a Create) is actors.ErrFenced.
func (s *Store) writeRows(ctx context.Context, w actors.Write, e *encoded, now int64) error {
	var res sql.Result
	var err error
	if c := w.Create; c != nil {
		// The wallet row is born at the write's final version, saving an
		// UPDATE; DO NOTHING + 0 rows is the "already exists" fence.
		res, err = s.ws.insertWallet.ExecContext(ctx, w.PlayerID, c.Currency.Code, int64(w.Version()), e.balance, nanos(c.CreatedAt), now)
	} else {
		res, err = s.ws.updateWallet.ExecContext(ctx, int64(w.Version()), e.balance, now, w.PlayerID, int64(w.Expected))
	}
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return actors.ErrFenced
	}
	for i, args := range e.events {
		if _, err := s.ws.insertEvent.ExecContext(ctx, args...); err != nil {
			if sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
				// The fence passed, so the journal runs past the wallet's
				// version: the store is inconsistent, not the caller.
				return fmt.Errorf("journal already holds seq %d beyond the wallet's version: %w", w.Events[i].Seq, err)
			}
			return err
		}
	}
	if e.snapshot != nil {
		if _, err := s.ws.upsertSnapshot.ExecContext(ctx, w.PlayerID, int64(w.Snapshot.Version), string(e.snapshot)); err != nil {
			return err
		}
	}
	return nil
}

// existingKeys names the keys of w that the journal already holds (as tx_id
// or as bet key), in the write's order. It runs after the savepoint was
// rolled back, inside the batch, so it also sees earlier writes of the batch.
// When the journal holds none, the clash was inside w itself.
func (s *Store) existingKeys(ctx context.Context, w actors.Write) ([]string, error) {
	var keys []string
	add := func(k string) {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	exists := func(stmt *sql.Stmt, key string) (bool, error) {
		var found bool
		if err := stmt.QueryRowContext(ctx, w.PlayerID, key).Scan(&found); err != nil {
			return false, fmt.Errorf("sqlite: look up key %s of %s: %w", key, w.PlayerID, err)
		}
		return found, nil
	}
	for _, ev := range w.Events {
		found, err := exists(s.ws.txExists, ev.TxID)
		if err != nil {
			return nil, err
		}
		if found {
			add(ev.TxID)
		}
		if bk := ev.BetKey(); bk != "" {
			if found, err = exists(s.ws.betKeyExists, bk); err != nil {
				return nil, err
			}
			if found {
				add(bk)
			}
		}
	}
	if len(keys) == 0 {
		txs, bets := map[string]bool{}, map[string]bool{}
		for _, ev := range w.Events {
			if txs[ev.TxID] {
				add(ev.TxID)
			}
			txs[ev.TxID] = true
			if bk := ev.BetKey(); bk != "" {
				if bets[bk] {
					add(bk)
				}
				bets[bk] = true
			}
		}
	}
	return keys, nil
}

// statementLocal reports whether err failed only its own statement and
// leaves the transaction usable (SQLite rolls back just that statement).
func statementLocal(err error) bool {
	switch sqliteCode(err) & 0xff {
	case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_RANGE:
		return true
	}
	return false
}

// sqliteCode returns SQLite's extended result code of err, or 0.
func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// nanos stores a time as unix nanoseconds; the zero time is 0 (UnixNano of
// it is undefined).
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// writeStmts are prepared once on the write connection; only the writer
// goroutine uses them.
type writeStmts struct {
	begin, commit, rollback        *sql.Stmt
	savepoint, release, rollbackTo *sql.Stmt
	insertWallet, updateWallet     *sql.Stmt
	insertEvent, upsertSnapshot    *sql.Stmt
	txExists, betKeyExists         *sql.Stmt
	stmts
}

func prepareWrite(ctx context.Context, conn *sql.Conn) (*writeStmts, error) {
	ws := &writeStmts{}
	if err := ws.prepare(ctx, conn, []stmtDef{
		// IMMEDIATE takes the write lock up front, so a busy database fails
		// at BEGIN rather than halfway through the batch.
		{&ws.begin, `BEGIN IMMEDIATE`},
		{&ws.commit, `COMMIT`},
		{&ws.rollback, `ROLLBACK`},
		{&ws.savepoint, `SAVEPOINT w`},
		{&ws.release, `RELEASE w`},
		{&ws.rollbackTo, `ROLLBACK TO w`},
		{&ws.insertWallet, `INSERT INTO wallets (player_id, currency, version, balance, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (player_id) DO NOTHING`},
		{&ws.updateWallet, `UPDATE wallets SET version = ?, balance = COALESCE(?, balance), updated_at = ?
			WHERE player_id = ? AND version = ?`},
		{&ws.insertEvent, `INSERT INTO journal (player_id, seq, tx_id, kind, amount, balance_after,
			round_id, game_id, ref_tx_id, bet_key, settles, tombstone, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&ws.upsertSnapshot, `INSERT INTO snapshots (player_id, version, data) VALUES (?, ?, ?)
			ON CONFLICT (player_id) DO UPDATE SET version = excluded.version, data = excluded.data`},
		{&ws.txExists, `SELECT EXISTS (SELECT 1 FROM journal WHERE player_id = ? AND tx_id = ?)`},
		{&ws.betKeyExists, `SELECT EXISTS (SELECT 1 FROM journal WHERE player_id = ? AND bet_key = ?)`},
	}); err != nil {
		return nil, err
	}
	return ws, nil
}
