// Package sqlite is walletd's embedded default store: an actors.Store on a
// single SQLite file (modernc.org/sqlite, pure Go) in WAL mode with
// synchronous=FULL, so a successful Append means the write is fsynced.
//
// Ownership: one writer goroutine owns the write connection and every
// prepared statement on it; Append only hands it requests through a bounded
// queue (group commit, see writer.go). Reads go through a separate pool of
// query-only connections, which WAL lets run while the writer commits. An
// exclusive flock on <dir>/LOCK keeps a second process off the same folder.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/persistence/internal/pending"
)

// DBFile is the name of the database file inside the store's folder.
const DBFile = "walletd.db"

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("sqlite: store is closed")

// Options tune a Store. The zero value is usable: every field has a default.
type Options struct {
	// QueueSize bounds the writes waiting for the writer (default 8192).
	// When it is full, Append waits until its context is done.
	QueueSize int
	// MaxBatch bounds the writes committed in one transaction (default 1024).
	MaxBatch int
	// BusyTimeout is how long a connection waits for a lock (default 5s). Only
	// checkpoints and readers ever contend here: the flock keeps out other
	// writers.
	BusyTimeout time.Duration
	// ReadConns bounds the read-only connection pool (default 2×GOMAXPROCS, at least 4).
	ReadConns int
	// Now stamps wallets.updated_at (default time.Now). Event times come
	// from the events themselves.
	Now func() time.Time
	// OnCommit, if set, is called by the writer after each batch has been
	// answered: writes is the number of writes in the batch, events the
	// number of journal events that committed, took the time from BEGIN to
	// the end of COMMIT, err the batch's commit error (nil when it committed;
	// per-wallet refusals such as ErrFenced do not count). It runs on the
	// writer goroutine, so it must be quick.
	OnCommit func(writes, events int, took time.Duration, err error)
	// WALLimit is the WAL size past which the writer runs a RESTART
	// checkpoint between batches (default DefaultWALLimit; see checkpointer).
	WALLimit int64
	// checkpointEvery: the checkpointer's period (default checkpointEvery);
	// tests shorten it so a short burst of writes spans many periods.
	checkpointEvery time.Duration
}

func (o Options) withDefaults() Options {
	if o.QueueSize <= 0 {
		o.QueueSize = 8192
	}
	if o.checkpointEvery <= 0 {
		o.checkpointEvery = checkpointEvery
	}
	if o.WALLimit <= 0 {
		o.WALLimit = DefaultWALLimit
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 1024
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	if o.ReadConns <= 0 {
		o.ReadConns = max(4, 2*runtime.GOMAXPROCS(0))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Store is the SQLite implementation of actors.Store.
type Store struct {
	dir  string
	opts Options
	lock *os.File

	wdb   *sql.DB
	wconn *sql.Conn // owned by the writer goroutine once Open returns
	ws    *writeStmts

	rdb *sql.DB
	rs  *readStmts

	ckpt *checkpointer

	queue chan *request
	// mu makes "check closed, then send" atomic against Close closing the
	// queue: senders hold it shared while they send, Close takes it
	// exclusively, so nothing is ever sent on a closed channel and nothing
	// slips in after the writer's final drain.
	mu         sync.RWMutex
	closed     bool        // guarded by mu
	isClosed   atomic.Bool // lock-free copy of closed for the read paths
	writerDone chan struct{}

	closeOnce sync.Once
	closeErr  error
}

var (
	_ actors.Store         = (*Store)(nil)
	_ actors.AsyncAppender = (*Store)(nil)
)

// Open opens (creating if needed) the store in dir: dir/walletd.db, with an
// exclusive lock on dir/LOCK held until Close.
func Open(dir string, opts Options) (_ *Store, err error) {
	opts = opts.withDefaults()
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("sqlite: store folder %q: %w", dir, err)
	}
	if strings.ContainsRune(abs, '?') {
		// The driver splits its DSN at the first '?'.
		return nil, fmt.Errorf("sqlite: store folder %q: a '?' in the path is not supported", abs)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: create store folder: %w", err)
	}
	lock, err := lockDir(abs)
	if err != nil {
		return nil, err
	}
	s := &Store{
		dir:        abs,
		opts:       opts,
		lock:       lock,
		queue:      make(chan *request, opts.QueueSize),
		writerDone: make(chan struct{}),
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.release())
		}
	}()

	path := filepath.Join(abs, DBFile)
	ctx := context.Background()
	if s.wdb, err = sql.Open("sqlite", dsn(path, opts.BusyTimeout, false)); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s.wdb.SetMaxOpenConns(1)
	if s.wconn, err = s.wdb.Conn(ctx); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := setupFile(ctx, s.wconn); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	if err := migrate(ctx, s.wconn, opts.Now()); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	if s.ws, err = prepareWrite(ctx, s.wconn); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}

	if s.rdb, err = sql.Open("sqlite", dsn(path, opts.BusyTimeout, true)); err != nil {
		return nil, fmt.Errorf("sqlite: open %s for reading: %w", path, err)
	}
	s.rdb.SetMaxOpenConns(opts.ReadConns)
	s.rdb.SetMaxIdleConns(opts.ReadConns)
	if s.rs, err = prepareRead(ctx, s.rdb); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}

	if s.ckpt, err = startCheckpointer(path, opts.BusyTimeout, opts.WALLimit, opts.checkpointEvery); err != nil {
		return nil, fmt.Errorf("sqlite: open %s for checkpoints: %w", path, err)
	}

	go s.run()
	return s, nil
}

// dsn builds the driver's connection string. A plain path (no "file:") makes
// the driver strip the query before opening, so the path needs no escaping.
func dsn(path string, busy time.Duration, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "temp_store(MEMORY)") // savepoint and statement journals stay off disk
	if readOnly {
		q.Add("_pragma", "cache_size(-8192)")
		q.Add("_pragma", "query_only(1)")
	} else {
		// FULL: in WAL mode every COMMIT fsyncs the WAL, so an acknowledged
		// write survives power loss, as the durability rule requires.
		q.Add("_pragma", "synchronous(FULL)")
		q.Add("_pragma", "cache_size(-65536)")
		// Checkpoints run on the checkpointer's connection, never inside a
		// group commit (see checkpointer).
		q.Add("_pragma", "wal_autocheckpoint(0)")
		q.Add("_pragma", fmt.Sprintf("journal_size_limit(%d)", DefaultWALLimit))
	}
	return path + "?" + q.Encode()
}

// pageSize is the page size of new database files. Each event dirties a
// random leaf of the journal and of its tx_id index (rows are clustered by
// wallet), and every dirty page goes whole into the WAL and the checkpoint,
// so smaller pages looked tempting; 1024 and 2048 measured no better than
// SQLite's default on BenchmarkAppend, so the default stays. It only applies
// to a new file.
const pageSize = 4096

// setupFile sets the page size of a new database file, which must happen
// before it turns to WAL, and then WAL mode, checking that it took.
func setupFile(ctx context.Context, conn *sql.Conn) error {
	var pages int64
	if err := conn.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		return fmt.Errorf("read page count: %w", err)
	}
	if pages == 0 {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA page_size = %d", pageSize)); err != nil {
			return fmt.Errorf("set page size: %w", err)
		}
	}
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return fmt.Errorf("set WAL mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, want wal", mode)
	}
	return nil
}

// Close stops accepting writes, commits everything already queued, closes
// the connections and releases the folder lock. It is safe to call twice.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.isClosed.Store(true)
		close(s.queue) // the writer drains what is queued, then exits
		s.mu.Unlock()
		<-s.writerDone
		s.closeErr = s.release()
	})
	return s.closeErr
}

// release closes whatever Open managed to set up, readers first so that the
// write connection is the last one and SQLite checkpoints the WAL into the
// database file as it closes.
func (s *Store) release() error {
	var errs []error
	if s.ckpt != nil {
		errs = append(errs, s.ckpt.close())
	}
	if s.rs != nil {
		errs = append(errs, s.rs.close())
	}
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	if s.ws != nil {
		errs = append(errs, s.ws.close())
	}
	if s.wconn != nil {
		errs = append(errs, s.wconn.Close())
	}
	if s.wdb != nil {
		errs = append(errs, s.wdb.Close())
	}
	errs = append(errs, unlockDir(s.lock))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close %s: %w", s.dir, err)
	}
	return nil
}

// Ready returns nil when the store can commit: it sends a probe through the
// writer, so it reports a full queue or a failing commit, not just an open
// file.
func (s *Store) Ready(ctx context.Context) error {
	r := &request{Reply: pending.Waiting(ctx), probe: true}
	if err := s.enqueue(ctx, r); err != nil {
		if errors.Is(err, ErrClosed) {
			return err
		}
		return fmt.Errorf("sqlite: not ready: %w", err)
	}
	select {
	case err := <-r.Done():
		if err != nil {
			return fmt.Errorf("sqlite: not ready: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sqlite: not ready: %w", ctx.Err())
	}
}
