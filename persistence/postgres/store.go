// Package postgres is the Postgres implementation of actors.Store.
//
// Writes of all wallets go through a bounded queue to one writer goroutine
// (or several, each owning a shard of the wallets) that commits whatever has
// queued up, up to MaxBatch writes, as a single SQL statement: one round trip
// and one commit per batch, whatever the number of wallets in it. The
// statement fences every wallet on its expected version, refuses reused
// tx_ids and bet keys per wallet, and journals only the wallets that pass,
// so one wallet's failure never fails another's write.
//
// Goroutines and ownership: each writer owns its queue's receiving end, its
// batch and one dedicated connection (outside the pool, with its own
// session settings). Reads (Load, Lookup, History, Ready, Verify) use a
// pgxpool holding the remaining connections. Store.mu guards closing: an
// Append holds it shared while it enqueues, Close takes it exclusively to
// close the queues.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"maps"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/persistence/internal/pending"
	"github.com/walletd/walletd/wallet"
)

// Options tune the store; zero values take the defaults, sized for a 2-core
// machine.
type Options struct {
	// MaxConns bounds the connections to Postgres: one per writer, the rest
	// for reads. Default 8.
	MaxConns int
	// Writers is the number of writer goroutines. Default 1. With more, each
	// owns the wallets that hash to it, so one wallet's writes stay ordered.
	Writers int
	// QueueSize bounds the writes waiting to be committed (across writers).
	// When it is full Append waits until its context is done. Default 16384.
	QueueSize int
	// MaxBatch bounds the writes committed together. Default 2048.
	MaxBatch int
	// CommitTimeout bounds each batch (connecting included), so a stalled
	// Postgres fails requests within a bound instead of hanging them.
	// Default 5s.
	CommitTimeout time.Duration
	// OnCommit, if set, is called by the writer after each batch with its
	// number of writes and events, the time the commit took and the error
	// that failed the whole batch (nil when it committed, even if some of
	// its wallets were refused). It must not block.
	OnCommit func(writes, events int, took time.Duration, err error)
}

func (o Options) withDefaults() Options {
	if o.MaxConns <= 0 {
		o.MaxConns = 8
	}
	if o.Writers <= 0 {
		o.Writers = 1
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 16384
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 2048
	}
	if o.CommitTimeout <= 0 {
		o.CommitTimeout = 5 * time.Second
	}
	return o
}

// ErrClosed is returned by calls on a closed store.
var ErrClosed = errors.New("postgres: store is closed")

// readyTimeout bounds Ready, whatever its caller's context says: a health
// probe must answer quickly.
const readyTimeout = 2 * time.Second

// Store is an actors.Store on Postgres. It is safe for concurrent use.
type Store struct {
	opts    Options
	pool    *pgxpool.Pool
	writers []*writer
	seed    maphash.Seed // shards wallets among writers

	mu     sync.RWMutex
	closed bool

	closeOnce sync.Once
}

var (
	_ actors.Store         = (*Store)(nil)
	_ actors.AsyncAppender = (*Store)(nil)
)

// Open connects to the database named by dsn (a postgres:// URL or a
// keyword/value string), applies pending migrations and starts the writers.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if opts.MaxConns < opts.Writers+1 {
		return nil, fmt.Errorf("postgres: MaxConns %d leaves no connection for reads beside %d writers", opts.MaxConns, opts.Writers)
	}
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse dsn: %w", err)
	}
	cfg := pcfg.ConnConfig
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "walletd"
	}
	pcfg.MaxConns = int32(opts.MaxConns - opts.Writers)
	if err := Migrate(ctx, dsn); err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: pool: %w", err)
	}
	s := &Store{opts: opts, pool: pool, seed: maphash.MakeSeed()}

	wcfg := cfg.Copy()
	maps.Copy(wcfg.RuntimeParams, writerParams(opts.CommitTimeout))

	perShard := max(1, opts.QueueSize/opts.Writers)
	for range opts.Writers {
		w := newWriter(wcfg, opts, perShard)
		s.writers = append(s.writers, w)
		go w.run()
	}
	return s, nil
}

// writerParams are the session settings of the writer connections.
//
// The server aborts a batch statement that outlives the commit timeout too,
// so a statement abandoned by a timed-out writer does not linger holding
// row locks.
//
// Generic plans: the batch statements are prepared once per connection and
// never planned again (planning one took about 0.3 ms, a third of a small
// batch's commit). A generic plan cannot see the array sizes, so with a
// small table a cost-based choice could be to read all of it; sequential
// scans are therefore off, and the statements name the batch's wallets
// (player_id = ANY) wherever they read a table, so that the cheapest plan
// left is index lookups of the batch's keys at any table size. The batch
// statements are the only statements these connections run. (Autovacuum's
// ANALYZE as tables grow invalidates the plans, which are then made anew.)
//
// No JIT: a large batch's estimated cost can cross jit_above_cost, and
// compiling takes longer than running it.
func writerParams(commitTimeout time.Duration) map[string]string {
	return map[string]string{
		"statement_timeout": strconv.FormatInt(commitTimeout.Milliseconds(), 10),
		"plan_cache_mode":   "force_generic_plan",
		"enable_seqscan":    "off",
		"jit":               "off",
	}
}

// Append queues w for the next batch of its writer and waits for the outcome.
// See actors.Store for the errors. A write whose ctx ends before the writer
// takes it into a batch is not written. Once in a batch, it commits or fails
// with the batch whatever happens to ctx, and if ctx ends first Append
// returns an error saying the write may still commit.
func (s *Store) Append(ctx context.Context, w actors.Write) error {
	if err := validate(w); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("postgres: append to %s: not written: %w", w.PlayerID, err)
	}
	req := &request{Reply: pending.Waiting(ctx), w: w}
	if err := s.enqueue(ctx, req); err != nil {
		return err
	}
	select {
	case err := <-req.Done():
		return err
	case <-ctx.Done():
		return fmt.Errorf("postgres: append to %s: stopped waiting, the write may still commit: %w", w.PlayerID, ctx.Err())
	}
}

// AppendAsync implements actors.AsyncAppender.
func (s *Store) AppendAsync(w actors.Write, deadline time.Time, done func(error)) bool {
	if err := validate(w); err != nil {
		done(err)
		return true
	}
	req := &request{Reply: pending.Callback(deadline, done), w: w}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		done(ErrClosed)
		return true
	}
	select {
	case s.writerOf(w.PlayerID).queue <- req:
		return true
	default:
		return false // full: Append waits for room
	}
}

// writerOf returns the writer that commits the wallet's writes, always the
// same one, so that a wallet's writes commit in order.
func (s *Store) writerOf(playerID string) *writer {
	if len(s.writers) == 1 {
		return s.writers[0]
	}
	return s.writers[maphash.String(s.seed, playerID)%uint64(len(s.writers))]
}

func (s *Store) enqueue(ctx context.Context, req *request) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	wr := s.writerOf(req.w.PlayerID)
	// Room in the queue wins over a context that ends at the same moment.
	select {
	case wr.queue <- req:
		return nil
	default:
	}
	// The queue is full: backpressure. Wait for room, but never drop.
	select {
	case wr.queue <- req:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("postgres: append to %s: write queue full: %w", req.w.PlayerID, ctx.Err())
	}
}

// validate checks what the batch statement relies on, so that a malformed
// write fails alone instead of failing its whole batch on a constraint.
func validate(w actors.Write) error {
	if err := w.Validate(); err != nil {
		return err
	}
	if w.PlayerID == "" {
		return errors.New("postgres: write without a player id")
	}
	if w.Expected > math.MaxInt64-uint64(len(w.Events)) {
		return fmt.Errorf("postgres: write of %s: version %d out of range", w.PlayerID, w.Expected)
	}
	if w.Create != nil {
		if _, ok := wallet.LookupCurrency(w.Create.Currency.Code); !ok {
			return fmt.Errorf("postgres: create of %s: unknown currency %q", w.PlayerID, w.Create.Currency.Code)
		}
	}
	// Keys repeated within the write: the journal's unique indexes would
	// fail the whole batch on them, so they are refused here, alone, as the
	// journal would refuse them one by one.
	var (
		txs, bets map[string]bool // only for more than one event: most writes hold one
		dups      []string
	)
	if len(w.Events) > 1 {
		txs, bets = make(map[string]bool, len(w.Events)), make(map[string]bool)
	}
	for _, ev := range w.Events {
		if !ev.Kind.Valid() || ev.TxID == "" {
			return fmt.Errorf("postgres: write of %s: event %d has kind %q and tx_id %q", w.PlayerID, ev.Seq, ev.Kind, ev.TxID)
		}
		if ev.Amount.Sign() < 0 || ev.BalanceAfter.Sign() < 0 {
			return fmt.Errorf("postgres: write of %s: event %d has a negative amount or balance", w.PlayerID, ev.Seq)
		}
		if txs == nil {
			continue
		}
		if txs[ev.TxID] {
			dups = append(dups, ev.TxID)
		}
		txs[ev.TxID] = true
		if k := ev.BetKey(); k != "" {
			if bets[k] {
				dups = append(dups, k)
			}
			bets[k] = true
		}
	}
	if len(dups) > 0 {
		slices.Sort(dups)
		return &actors.KeyExistsError{Keys: slices.Compact(dups)}
	}
	return nil
}

// Close flushes the queued writes, stops the writers and closes the
// connections. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		for _, w := range s.writers {
			close(w.queue)
		}
		s.mu.Unlock()
		for _, w := range s.writers {
			<-w.stopped
		}
		s.pool.Close()
	})
	return nil
}

// Ready returns nil when the store can commit: Postgres answers within 2s,
// is not a read-only standby, and the store is open.
func (s *Store) Ready(ctx context.Context) error {
	if s.isClosed() {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var standby bool
	if err := s.pool.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&standby); err != nil {
		return fmt.Errorf("postgres: not ready: %w", err)
	}
	if standby {
		return errors.New("postgres: not ready: the server is a read-only standby")
	}
	return nil
}

func (s *Store) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

// eventColumns are the journal columns scanEvent reads, amounts as text so
// they come back exactly as written.
const eventColumns = `j.seq, j.tx_id, j.kind, j.amount::text, j.balance_after::text,
	j.round_id, j.game_id, j.ref_tx_id, j.settles, j.tombstone, j.created_at`

// scanEvents reads rows of eventColumns into events of currency c.
func scanEvents(rows pgx.Rows, c wallet.Currency) ([]wallet.Event, error) {
	defer rows.Close()
	var evs []wallet.Event
	for rows.Next() {
		var (
			ev          wallet.Event
			seq         int64
			kind        string
			amount, bal string
		)
		if err := rows.Scan(&seq, &ev.TxID, &kind, &amount, &bal, &ev.RoundID, &ev.GameID, &ev.Ref, &ev.Settles, &ev.Tombstone, &ev.At); err != nil {
			return nil, err
		}
		var err error
		if ev.Amount, err = wallet.ParseStored(amount, c); err != nil {
			return nil, fmt.Errorf("event %d: %w", seq, err)
		}
		if ev.BalanceAfter, err = wallet.ParseStored(bal, c); err != nil {
			return nil, fmt.Errorf("event %d: %w", seq, err)
		}
		ev.Seq, ev.Kind = uint64(seq), wallet.Kind(kind)
		if len(ev.Settles) == 0 {
			ev.Settles = nil
		}
		evs = append(evs, ev)
	}
	return evs, rows.Err()
}

// Load reads the wallet, its snapshot and the journal after the snapshot.
func (s *Store) Load(ctx context.Context, playerID string) (actors.Loaded, error) {
	l, err := s.load(ctx, playerID)
	if err != nil && !errors.Is(err, actors.ErrNotFound) {
		err = fmt.Errorf("postgres: load %s: %w", playerID, err)
	}
	return l, err
}

func (s *Store) load(ctx context.Context, playerID string) (actors.Loaded, error) {
	if s.isClosed() {
		return actors.Loaded{}, ErrClosed
	}
	var (
		l        actors.Loaded
		code     string
		snapVer  *int64
		snapData []byte
	)
	err := s.pool.QueryRow(ctx, `SELECT w.currency, w.created_at, s.version, s.data
		FROM wallets w LEFT JOIN snapshots s ON s.player_id = w.player_id
		WHERE w.player_id = $1`, playerID).Scan(&code, &l.Wallet.CreatedAt, &snapVer, &snapData)
	if errors.Is(err, pgx.ErrNoRows) {
		return l, actors.ErrNotFound
	}
	if err != nil {
		return l, err
	}
	cur, ok := wallet.LookupCurrency(code)
	if !ok {
		return l, fmt.Errorf("unknown currency %q", code)
	}
	l.Wallet.PlayerID, l.Wallet.Currency = playerID, cur
	after := int64(0)
	if snapVer != nil {
		var sn wallet.Snapshot
		if err := json.Unmarshal(snapData, &sn); err != nil {
			return l, fmt.Errorf("snapshot: %w", err)
		}
		if sn.Version != uint64(*snapVer) {
			return l, fmt.Errorf("snapshot row at version %d holds version %d", *snapVer, sn.Version)
		}
		l.Snapshot, after = &sn, *snapVer
	}
	// The tail starts after the snapshot just read; journal rows are never
	// removed, so it is complete even if a newer snapshot is written
	// meanwhile.
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM journal j
		WHERE j.player_id = $1 AND j.seq > $2 ORDER BY j.seq`, playerID, after)
	if err != nil {
		return l, err
	}
	l.Tail, err = scanEvents(rows, cur)
	return l, err
}

// lookupSQL finds the events whose tx_id or ref is one of $2, then the wins
// of the rounds of the bets among them that follow each bet. Each branch is a
// separate SELECT so each uses its own index.
const lookupSQL = `WITH hit AS (
	SELECT * FROM journal WHERE player_id = $1 AND tx_id = ANY($2)
	UNION
	SELECT * FROM journal WHERE player_id = $1 AND ref_tx_id = ANY($2) AND ref_tx_id <> ''
)
SELECT ` + eventColumns + ` FROM hit j
UNION
SELECT ` + eventColumns + ` FROM hit b JOIN journal j
	ON j.player_id = $1 AND j.kind = 'win' AND j.round_id <> '' AND j.round_id = b.round_id AND j.seq > b.seq
	WHERE b.kind = 'bet'
ORDER BY 1`

// Lookup returns what wallet.State.Recall needs about ids (see actors.Store).
func (s *Store) Lookup(ctx context.Context, playerID string, ids []string) ([]wallet.Event, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return s.readEvents(ctx, "lookup", playerID, lookupSQL, playerID, ids)
}

// History returns up to limit events with seq < before (0: from the newest),
// newest first.
func (s *Store) History(ctx context.Context, playerID string, before uint64, limit int) ([]wallet.Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	if before == 0 || before > math.MaxInt64 {
		before = math.MaxInt64
	}
	return s.readEvents(ctx, "history", playerID, historySQL, playerID, int64(before), limit)
}

// historySQL pages backwards along the journal's primary key.
const historySQL = `SELECT ` + eventColumns + ` FROM journal j
	WHERE j.player_id = $1 AND j.seq < $2 ORDER BY j.seq DESC LIMIT $3`

// readEvents runs a query of eventColumns for one wallet, pipelined with the
// read of the wallet's currency (needed to parse the amounts) in one round
// trip. A wallet that does not exist is ErrNotFound.
func (s *Store) readEvents(ctx context.Context, op, playerID, sql string, args ...any) ([]wallet.Event, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	evs, err := func() ([]wallet.Event, error) {
		b := &pgx.Batch{}
		b.Queue("SELECT currency FROM wallets WHERE player_id = $1", playerID)
		b.Queue(sql, args...)
		br := s.pool.SendBatch(ctx, b)
		defer br.Close()
		var code string
		err := br.QueryRow().Scan(&code)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, actors.ErrNotFound
		}
		if err != nil {
			return nil, err
		}
		cur, ok := wallet.LookupCurrency(code)
		if !ok {
			return nil, fmt.Errorf("unknown currency %q", code)
		}
		rows, err := br.Query()
		if err != nil {
			return nil, err
		}
		evs, err := scanEvents(rows, cur)
		if err != nil {
			return nil, err
		}
		return evs, br.Close()
	}()
	if err != nil {
		if errors.Is(err, actors.ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("postgres: %s %s: %w", op, playerID, err)
	}
	return evs, nil
}
