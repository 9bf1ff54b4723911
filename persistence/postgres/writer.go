package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/persistence/internal/pending"
	"github.com/walletd/walletd/wallet"
)

// request is one write waiting for its batch.
type request struct {
	pending.Reply
	w actors.Write
}

// writer owns a queue, the batch being built and one connection. It drains
// whatever has queued up, commits it as one statement, answers every
// request, and starts over at once: under load batches grow by themselves
// while a commit is in flight, and an idle store commits each write alone.
type writer struct {
	cfg     *pgx.ConnConfig
	opts    Options
	queue   chan *request
	stopped chan struct{}

	conn      *pgx.Conn // nil until needed, and after it breaks
	lastUsed  time.Time
	idleCheck time.Duration // ping the connection first when idle longer
	carry     []*request    // writes held back for the next batch (see collect)
	seen      map[string]bool
	args      batchArgs
	params    paramBuf
	formats   []int16 // every parameter binary (see binary.go)
}

// fastStmt names fastSQL prepared on the writer's connection.
const fastStmt = "walletd_fast_batch"

func newWriter(cfg *pgx.ConnConfig, opts Options, queueSize int) *writer {
	return &writer{
		cfg:       cfg,
		opts:      opts,
		queue:     make(chan *request, queueSize),
		stopped:   make(chan struct{}),
		seen:      make(map[string]bool),
		idleCheck: time.Second,
		formats:   slices.Repeat([]int16{1}, batchParams),
	}
}

// run commits batches until the queue is closed and drained.
func (wr *writer) run() {
	defer close(wr.stopped)
	defer func() {
		if wr.conn != nil {
			closeConn(wr.conn)
		}
	}()
	open := true
	for open || len(wr.carry) > 0 {
		var batch []*request
		batch, open = wr.collect(open)
		if len(batch) > 0 {
			wr.commit(batch)
		}
	}
}

// collect returns the next batch: the writes carried over from the previous
// one first, then whatever has queued, blocking only when there is nothing.
// A batch holds at most one write per wallet, because the fencing statement
// updates each wallet once; a second write of a wallet (possible only when
// two activations of it are alive) waits for the next batch, in order.
func (wr *writer) collect(open bool) (batch []*request, stillOpen bool) {
	clear(wr.seen)
	carried := wr.carry
	wr.carry = nil
	now := time.Now()
	add := func(r *request) {
		if err := r.Gone(now); err != nil {
			// Its caller has given up; not writing it leaves less to
			// reconcile on reload.
			r.Send(fmt.Errorf("postgres: append to %s: not written: %w", r.w.PlayerID, err))
			return
		}
		if wr.seen[r.w.PlayerID] || len(batch) >= wr.opts.MaxBatch {
			wr.carry = append(wr.carry, r)
			return
		}
		wr.seen[r.w.PlayerID] = true
		batch = append(batch, r)
	}
	for _, r := range carried {
		add(r)
	}
	if len(batch) == 0 && len(wr.carry) == 0 && open {
		r, ok := <-wr.queue
		if !ok {
			return nil, false
		}
		add(r)
	}
	// The carry is bounded too: stop draining when it holds a batch's worth.
	for open && len(batch) < wr.opts.MaxBatch && len(wr.carry) < wr.opts.MaxBatch {
		select {
		case r, ok := <-wr.queue:
			if !ok {
				return batch, false
			}
			add(r)
		default:
			return batch, open
		}
	}
	return batch, open
}

// commit writes one batch and answers each of its requests.
func (wr *writer) commit(batch []*request) {
	start := time.Now()
	// The batch runs under its own deadline, not its callers' contexts: a
	// caller going away must not cancel a commit other wallets share.
	ctx, cancel := context.WithTimeout(context.Background(), wr.opts.CommitTimeout)
	defer cancel()

	refused, err := wr.write(ctx, batch)
	// The hook runs before the replies, so whoever holds a reply also
	// finds its batch counted.
	if wr.opts.OnCommit != nil {
		events := 0
		for _, r := range batch {
			events += len(r.w.Events)
		}
		wr.opts.OnCommit(len(batch), events, time.Since(start), err)
	}
	for _, r := range batch {
		if err != nil {
			r.Send(err)
		} else {
			r.Send(refused[r.w.PlayerID]) // nil: committed
		}
	}
}

// write runs the batch statement and returns the writes it refused, by
// wallet. The statement is atomic (an implicit transaction): if it fails,
// nothing of the batch was written. A unique violation (another process
// wrote one of the batch's keys after the statement's snapshot) or a
// deadlock (two processes fencing overlapping wallets) is retried once: the
// rerun sees the other process's rows and refuses only the wallets involved.
func (wr *writer) write(ctx context.Context, batch []*request) (map[string]error, error) {
	// Wallets in a fixed order, so two processes fencing overlapping sets
	// tend to lock them in the same order.
	slices.SortFunc(batch, func(a, b *request) int { return strings.Compare(a.w.PlayerID, b.w.PlayerID) })
	// The fast statement first: it fences each wallet on its version and
	// writes, without probing the journal for the batch's keys. Nearly every
	// batch commits whole this way. A key already in the journal (a retry
	// from beyond the actors' memory, a second activation's write) makes it
	// fail on a unique index and write nothing; a wallet it refuses is not
	// written either. Both go through the careful statement below, which
	// finds out why and writes the rest.
	refusedIDs, err := wr.fast(ctx, batch)
	if err == nil {
		if len(refusedIDs) == 0 {
			return nil, nil
		}
		// Committed except these: classify them alone. Their refusal stands
		// (versions only move on), so the rerun refuses them again, now
		// saying why.
		sub := batch[:0:0]
		for _, r := range batch {
			if slices.Contains(refusedIDs, r.w.PlayerID) {
				sub = append(sub, r)
			}
		}
		batch = sub
	} else if !retryCarefully(err) {
		return nil, err
	}
	if err := wr.args.build(batch); err != nil {
		return nil, err
	}
	var refusals []refusal
	for attempt := 0; attempt < 2; attempt++ {
		refusals, err = wr.exec(ctx)
		if !retryCarefully(err) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*actors.Write, len(batch))
	for _, r := range batch {
		byID[r.w.PlayerID] = &r.w
	}
	refused := make(map[string]error, len(refusals))
	for _, rf := range refusals {
		w, ok := byID[rf.PlayerID]
		if !ok {
			return nil, fmt.Errorf("postgres: batch statement refused %q, which is not in the batch", rf.PlayerID)
		}
		refused[rf.PlayerID] = rf.err(w)
	}
	return refused, nil
}

// retryCarefully reports whether err is a statement the server refused for
// a unique violation (another writer, or the journal beyond the actors'
// memory, holds one of the batch's keys) or a deadlock (two processes fencing
// overlapping wallets): nothing was written, and the careful statement,
// which sees the other rows, refuses only the wallets involved.
func retryCarefully(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "40P01")
}

// exec runs the careful batch statement and collects its refusals.
func (wr *writer) exec(ctx context.Context) ([]refusal, error) {
	rows, err := wr.query(ctx, batchSQL)
	if err != nil {
		return nil, err
	}
	refusals, err := pgx.CollectRows(rows, pgx.RowToStructByPos[refusal])
	if err != nil {
		return nil, wr.failed(err)
	}
	return refusals, nil
}

// fast runs the fast statement with the batch's arguments, encoded by
// encodeBatch as binary arrays (see binary.go), and returns the wallets it
// refused.
func (wr *writer) fast(ctx context.Context, batch []*request) ([]string, error) {
	params, err := wr.params.encodeBatch(batch)
	if err != nil {
		return nil, err
	}
	if err := wr.connect(ctx); err != nil {
		return nil, err
	}
	rr := wr.conn.PgConn().ExecPrepared(ctx, fastStmt, params, wr.formats, nil)
	var refused []string
	for rr.NextRow() {
		refused = append(refused, string(rr.Values()[0]))
	}
	if _, err := rr.Close(); err != nil {
		return nil, wr.failed(err)
	}
	wr.lastUsed = time.Now()
	return refused, nil
}

// query runs sql with the batch's arguments on the writer's connection.
// Its errors, and those of reading its rows passed through failed, say
// whether the batch may have committed.
func (wr *writer) query(ctx context.Context, sql string) (pgx.Rows, error) {
	if err := wr.connect(ctx); err != nil {
		return nil, err
	}
	rows, err := wr.conn.Query(ctx, sql, wr.args.values()...)
	if err != nil {
		return nil, wr.failed(err)
	}
	wr.lastUsed = time.Now()
	return rows, nil
}

// connect makes sure the writer has a live connection with the fast
// statement prepared, dialing one if needed.
func (wr *writer) connect(ctx context.Context) error {
	// A connection that sat idle may have died with nobody noticing (the
	// server restarted, a proxy dropped it). A batch sent on it would fail
	// with an unknown outcome and send every actor of the batch to reload,
	// so check it first; busy connections skip the round trip.
	if wr.conn != nil && time.Since(wr.lastUsed) > wr.idleCheck {
		if err := wr.conn.Ping(ctx); err != nil {
			closeConn(wr.conn)
			wr.conn = nil
		}
	}
	if wr.conn != nil {
		return nil
	}
	c, err := pgx.ConnectConfig(ctx, wr.cfg)
	if err != nil {
		return fmt.Errorf("postgres: batch not committed: connect: %w", err)
	}
	if _, err := c.Prepare(ctx, fastStmt, fastSQL); err != nil {
		closeConn(c)
		return fmt.Errorf("postgres: batch not committed: prepare: %w", err)
	}
	wr.conn = c
	return nil
}

// failed turns an error of the batch statement into one that says whether
// the batch may have committed, dropping the connection if it is unusable.
func (wr *writer) failed(err error) error {
	if wr.conn.IsClosed() || wr.conn.PgConn().TxStatus() != 'I' {
		closeConn(wr.conn)
		wr.conn = nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) || pgconn.SafeToRetry(err) {
		// The server refused the statement, or it was never sent.
		return fmt.Errorf("postgres: batch not committed: %w", err)
	}
	return fmt.Errorf("postgres: batch commit outcome unknown (connection lost or timed out; reload to find out): %w", err)
}

// refusal is a row of the batch statement: a write it did not apply, with
// what the statement saw of the wallet.
type refusal struct {
	PlayerID string
	Version  *int64  // the wallet's version; nil if it does not exist
	Balance  *string // the wallet's balance
	SeqTaken bool    // the journal already holds one of the write's seqs
	Keys     []string
	Bad      bool // the first event does not follow the stored balance
}

// err is the error for w. The version comes first: when the wallet moved on,
// its keys say nothing about the write. Anything not explained by what the
// statement saw is a lost race with another writer: fenced too.
func (rf refusal) err(w *actors.Write) error {
	fenced := func(why string) error {
		return fmt.Errorf("postgres: write of %s at version %d: %s: %w", w.PlayerID, w.Expected, why, actors.ErrFenced)
	}
	switch {
	case w.Create != nil && rf.Version != nil:
		return fenced("the wallet exists")
	case w.Create == nil && rf.Version == nil:
		return fenced("no such wallet")
	case w.Create == nil && uint64(*rf.Version) != w.Expected:
		return fenced(fmt.Sprintf("the store is at version %d", *rf.Version))
	case rf.SeqTaken:
		return fenced("the journal already holds its sequence numbers")
	case len(rf.Keys) > 0:
		return &actors.KeyExistsError{Keys: rf.Keys}
	case rf.Bad:
		bal := "0"
		if rf.Balance != nil {
			bal = *rf.Balance
		}
		return fmt.Errorf("postgres: write of %s does not follow the stored balance %s at version %d: refused", w.PlayerID, bal, w.Expected)
	}
	return fenced("another writer moved the wallet on meanwhile")
}

// batchInputs opens both batch statements: the writes ($1-$7) as w, their
// events ($8-$20) as e.
const batchInputs = `WITH w AS (
	SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bool[], $6::text[], $7::timestamptz[])
		AS w(id, expected, version, balance, is_create, currency, created_at)
),
e AS (
	SELECT id, seq, tx, kind, amount::numeric AS amount, bal::numeric AS bal, round, game, ref, bet_key,
		settles::text[] AS settles, tomb, at
	FROM unnest($8::text[], $9::bigint[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
		$15::text[], $16::text[], $17::text[], $18::text[], $19::bool[], $20::timestamptz[])
		AS e(id, seq, tx, kind, amount, bal, round, game, ref, bet_key, settles, tomb, at)
),
`

// batchOutputs closes both batch statements, after their fencing statements
// (created, updated): the events and snapshots ($21-$23) of the wallets that
// passed the fence are written.
const batchOutputs = `ok AS (SELECT player_id FROM created UNION ALL SELECT player_id FROM updated),
journaled AS (
	INSERT INTO journal (player_id, seq, tx_id, kind, amount, balance_after, round_id, game_id, ref_tx_id, bet_key, settles, tombstone, created_at)
	SELECT id, seq, tx, kind, amount, bal, round, game, ref, bet_key, settles, tomb, at FROM e
	WHERE e.id IN (SELECT player_id FROM ok)
),
snapped AS (
	INSERT INTO snapshots AS s (player_id, version, data, updated_at)
	SELECT n.id, n.version, n.data::jsonb, now()
	FROM unnest($21::text[], $22::bigint[], $23::text[]) AS n(id, version, data)
	WHERE n.id IN (SELECT player_id FROM ok)
	ON CONFLICT (player_id) DO UPDATE SET version = excluded.version, data = excluded.data, updated_at = excluded.updated_at
		WHERE s.version < excluded.version
)
`

// fastSQL commits a batch in one statement when none of its keys is in the
// journal yet, which is nearly always. It has batchSQL's parameters and
// fence: a wallet is written only if its row is at the version its write
// expects (re-checked on the newest row version when a concurrent
// transaction moved it) and its first event follows the stored balance. It
// does not look for the batch's keys in the journal: a key already there
// fails the whole statement on a unique index, writing nothing, and the
// writer falls back to batchSQL. It returns the wallets it refused.
const fastSQL = batchInputs + `f AS (
	SELECT w.*, e.kind, e.amount, e.bal FROM w LEFT JOIN e ON e.id = w.id AND e.seq = w.expected + 1
),
created AS (
	INSERT INTO wallets (player_id, currency, version, balance, created_at, updated_at)
	SELECT f.id, f.currency, f.version, f.balance::numeric, f.created_at, now() FROM f
	WHERE f.is_create AND (f.kind IS NULL OR journal_delta(f.kind, f.amount) = f.bal)
	ON CONFLICT (player_id) DO NOTHING
	RETURNING player_id
),
updated AS (
	UPDATE wallets t SET version = f.version, balance = coalesce(f.balance::numeric, t.balance), updated_at = now()
	FROM f
	WHERE t.player_id = ANY($1::text[]) AND t.player_id = f.id AND NOT f.is_create AND t.version = f.expected
		AND (f.kind IS NULL OR t.balance + journal_delta(f.kind, f.amount) = f.bal)
	RETURNING t.player_id
),
` + batchOutputs + `SELECT w.id FROM w WHERE w.id NOT IN (SELECT player_id FROM ok)`

// batchSQL commits a whole batch in one statement. $1-$7 are the writes,
// $8-$20 their events, $21-$23 their snapshots. All sub-statements see one
// snapshot; the inserts consume the RETURNING of the fencing statements, so
// only wallets that passed the fence are journaled. A wallet moved on by a
// concurrent transaction after the snapshot fails the version re-check of
// its row, and as every journal writer moves the version in the same
// transaction, no key can be inserted behind the collision check of a wallet
// that passes. The result lists the refused writes only.
const batchSQL = batchInputs + `hit AS (
	SELECT e.id, e.tx AS key FROM e JOIN journal j ON j.player_id = e.id AND j.tx_id = e.tx
	UNION ALL
	SELECT e.id, e.bet_key FROM e JOIN journal j ON j.player_id = e.id AND j.bet_key = e.bet_key
		WHERE j.bet_key IS NOT NULL
	UNION ALL
	SELECT e.id, NULL FROM e JOIN journal j ON j.player_id = e.id AND j.seq = e.seq
),
cur AS (SELECT player_id, version, balance FROM wallets WHERE player_id = ANY($1::text[])),
bad AS (
	SELECT w.id FROM w JOIN e ON e.id = w.id AND e.seq = w.expected + 1
		LEFT JOIN cur t ON t.player_id = w.id AND NOT w.is_create
	WHERE coalesce(t.balance, 0) + journal_delta(e.kind, e.amount) <> e.bal
),
blocked AS (SELECT id FROM hit UNION SELECT id FROM bad),
created AS (
	INSERT INTO wallets (player_id, currency, version, balance, created_at, updated_at)
	SELECT w.id, w.currency, w.version, w.balance::numeric, w.created_at, now() FROM w
	WHERE w.is_create AND w.id NOT IN (SELECT id FROM blocked)
	ON CONFLICT (player_id) DO NOTHING
	RETURNING player_id
),
updated AS (
	UPDATE wallets t SET version = w.version, balance = coalesce(w.balance::numeric, t.balance), updated_at = now()
	FROM w
	WHERE t.player_id = ANY($1::text[]) AND t.player_id = w.id AND NOT w.is_create AND t.version = w.expected
		AND w.id NOT IN (SELECT id FROM blocked)
	RETURNING t.player_id
),
` + batchOutputs + `SELECT w.id, t.version, t.balance::text,
	EXISTS (SELECT 1 FROM hit h WHERE h.id = w.id AND h.key IS NULL),
	ARRAY(SELECT DISTINCT h.key FROM hit h WHERE h.id = w.id AND h.key IS NOT NULL ORDER BY 1),
	w.id IN (SELECT id FROM bad)
FROM w LEFT JOIN cur t ON t.player_id = w.id
WHERE w.id NOT IN (SELECT player_id FROM ok)`

// batchArgs holds the column arrays of batchSQL. The writer reuses them from
// batch to batch; pgx encodes them before Query returns.
type batchArgs struct {
	// writes
	wID        []string
	wExpected  []int64
	wVersion   []int64
	wBalance   []*string // nil: no events, the balance stays
	wCreate    []bool
	wCurrency  []string
	wCreatedAt []time.Time
	// events
	eID, eTx, eKind, eAmount, eBal, eRound, eGame, eRef []string
	eSeq                                                []int64
	eBetKey, eSettles                                   []*string
	eTomb                                               []bool
	eAt                                                 []time.Time
	// snapshots
	sID      []string
	sVersion []int64
	sData    []string
}

func (a *batchArgs) build(batch []*request) error {
	*a = batchArgs{
		wID: a.wID[:0], wExpected: a.wExpected[:0], wVersion: a.wVersion[:0], wBalance: a.wBalance[:0],
		wCreate: a.wCreate[:0], wCurrency: a.wCurrency[:0], wCreatedAt: a.wCreatedAt[:0],
		eID: a.eID[:0], eTx: a.eTx[:0], eKind: a.eKind[:0], eAmount: a.eAmount[:0], eBal: a.eBal[:0],
		eRound: a.eRound[:0], eGame: a.eGame[:0], eRef: a.eRef[:0], eSeq: a.eSeq[:0],
		eBetKey: a.eBetKey[:0], eSettles: a.eSettles[:0], eTomb: a.eTomb[:0], eAt: a.eAt[:0],
		sID: a.sID[:0], sVersion: a.sVersion[:0], sData: a.sData[:0],
	}
	for _, r := range batch {
		w := &r.w
		var bal *string
		if n := len(w.Events); n > 0 {
			s := w.Events[n-1].BalanceAfter.String()
			bal = &s
		}
		var (
			code    string
			created time.Time
		)
		if w.Create != nil {
			code, created = w.Create.Currency.Code, w.Create.CreatedAt
			if bal == nil {
				s := wallet.Zero(w.Create.Currency).String()
				bal = &s
			}
		}
		a.wID = append(a.wID, w.PlayerID)
		a.wExpected = append(a.wExpected, int64(w.Expected))
		a.wVersion = append(a.wVersion, int64(w.Version()))
		a.wBalance = append(a.wBalance, bal)
		a.wCreate = append(a.wCreate, w.Create != nil)
		a.wCurrency = append(a.wCurrency, code)
		a.wCreatedAt = append(a.wCreatedAt, created)

		for i := range w.Events {
			ev := &w.Events[i]
			a.eID = append(a.eID, w.PlayerID)
			a.eSeq = append(a.eSeq, int64(ev.Seq))
			a.eTx = append(a.eTx, ev.TxID)
			a.eKind = append(a.eKind, string(ev.Kind))
			a.eAmount = append(a.eAmount, ev.Amount.String())
			a.eBal = append(a.eBal, ev.BalanceAfter.String())
			a.eRound = append(a.eRound, ev.RoundID)
			a.eGame = append(a.eGame, ev.GameID)
			a.eRef = append(a.eRef, ev.Ref)
			var key, settles *string
			if k := ev.BetKey(); k != "" {
				key = &k
			}
			if len(ev.Settles) > 0 {
				s := arrayLiteral(ev.Settles)
				settles = &s
			}
			a.eBetKey = append(a.eBetKey, key)
			a.eSettles = append(a.eSettles, settles)
			a.eTomb = append(a.eTomb, ev.Tombstone)
			a.eAt = append(a.eAt, ev.At)
		}
		if w.Snapshot != nil {
			data, err := json.Marshal(w.Snapshot)
			if err != nil {
				return fmt.Errorf("postgres: batch not committed: snapshot of %s: %w", w.PlayerID, err)
			}
			a.sID = append(a.sID, w.PlayerID)
			a.sVersion = append(a.sVersion, int64(w.Snapshot.Version))
			a.sData = append(a.sData, string(data))
		}
	}
	return nil
}

func (a *batchArgs) values() []any {
	return []any{
		a.wID, a.wExpected, a.wVersion, a.wBalance, a.wCreate, a.wCurrency, a.wCreatedAt,
		a.eID, a.eSeq, a.eTx, a.eKind, a.eAmount, a.eBal, a.eRound, a.eGame, a.eRef, a.eBetKey, a.eSettles, a.eTomb, a.eAt,
		a.sID, a.sVersion, a.sData,
	}
}

// arrayLiteral renders ids as a Postgres text[] literal. A per-row list
// cannot travel inside a column array (Postgres arrays are rectangular), so
// it travels as text and the statement casts it back.
func arrayLiteral(ids []string) string { return string(appendArrayLiteral(nil, ids)) }

func appendArrayLiteral(b []byte, ids []string) []byte {
	b = append(b, '{')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		for _, c := range []byte(id) {
			if c == '"' || c == '\\' {
				b = append(b, '\\')
			}
			b = append(b, c)
		}
		b = append(b, '"')
	}
	return append(b, '}')
}

// closeConn closes c, bounding the polite Terminate message so a dead
// server cannot stall the writer.
func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.Close(ctx) // the connection is discarded either way
}
