package sqlite

import (
	"context"
	"database/sql"
	"sync/atomic"
	"time"
)

// checkpointEvery is how often the checkpointer moves committed WAL frames
// into the database file while commits keep coming.
const checkpointEvery = 250 * time.Millisecond

// DefaultWALLimit bounds the WAL (Options.WALLimit). A PASSIVE checkpoint only copies the frames that
// existed when it began; under continuous commits it never catches up, and
// SQLite reuses the WAL from its start only after a checkpoint that did. So
// past the limit the checkpointer asks the writer for a RESTART checkpoint,
// which the writer runs between two batches on its own connection (from
// another connection it would lose every race for the write lock): a short
// pause, since the PASSIVE runs already copied all but the newest frames,
// after which the next commit starts the WAL over. journal_size_limit then
// truncates the file back to the limit.
//
// 128 MB: a busy embedded store writes the WAL at over 100 MB/s (every
// event dirties a few random 4 KB pages), and each RESTART pauses the
// group commit. At 32 MB they came several times a second and set the P99
// of a 50-user benchmark at 22-24 ms; at 128 MB it was 13-16 ms, with the
// same throughput (walletbench run -target embedded -wallets 10000).
const DefaultWALLimit = 128 << 20

// checkpointer runs WAL checkpoints on a connection of its own. SQLite's
// default would run them inside the writer's COMMIT every 1,000 WAL pages,
// copying pages and fsyncing the database file while every wallet in the
// batch waits: the latency spikes of the group commit. A PASSIVE checkpoint
// from another connection runs beside the writer instead; the writer's
// commit only appends to the WAL and fsyncs it (which is what durability
// needs). It runs only after commits (dirty is set by the writer), stops
// with the store, and a final checkpoint happens when the write connection
// closes.
type checkpointer struct {
	db       *sql.DB
	pageSize int64
	limit    int64         // bytes of WAL that call for a RESTART
	every    time.Duration // period of the PASSIVE checkpoints
	dirty    chan struct{} // capacity 1: "there were commits since the last run"
	restart  atomic.Bool   // the writer should run a RESTART checkpoint
	stop     chan struct{}
	done     chan struct{}
}

func startCheckpointer(path string, busy time.Duration, limit int64, every time.Duration) (*checkpointer, error) {
	db, err := sql.Open("sqlite", dsn(path, busy, false))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	var pageSize int64
	if err := db.QueryRow("PRAGMA page_size").Scan(&pageSize); err != nil {
		db.Close()
		return nil, err
	}
	c := &checkpointer{db: db, pageSize: pageSize, limit: limit, every: every, dirty: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c, nil
}

// restartIfAsked runs on the writer goroutine between batches.
func (c *checkpointer) restartIfAsked(conn *sql.Conn) {
	if !c.restart.CompareAndSwap(true, false) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = conn.ExecContext(ctx, "PRAGMA wal_checkpoint(RESTART)")
}

// committed tells the checkpointer there is new WAL content; it never blocks.
func (c *checkpointer) committed() {
	select {
	case c.dirty <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	tick := time.NewTicker(c.every)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		select {
		case <-c.dirty:
		default:
			continue // nothing committed since the last checkpoint
		}
		c.checkpoint()
	}
}

// checkpoint runs one PASSIVE checkpoint, and asks the writer for a RESTART
// one when the WAL has passed its limit. A failed or partial checkpoint is
// harmless: frames stay in the WAL, readers still see them, the next run
// tries again.
func (c *checkpointer) checkpoint() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	frames, err := c.passive(ctx)
	if err != nil || frames*c.pageSize <= c.limit {
		return
	}
	// Before the writer's RESTART, catch up: the frames appended while that
	// checkpoint ran (a few hundred at 100+ MB/s of WAL) are what the
	// RESTART would copy, and fsync into the database file, while every
	// wallet's commit waits. A pass copies only what the previous one left;
	// two or three leave a few batches' worth. The RESTART pause went from
	// 10–17 ms to 3–6 ms, and the P99.9 of walletbench's embedded 10,000-
	// wallet run at 50 users from 36–45 ms to 26–32 (its P99, 13–15 ms, is
	// set by the checkpoints' disk traffic beside the commits, not by these
	// pauses).
	for range maxCatchUp {
		now, err := c.passive(ctx)
		if err != nil {
			break
		}
		grew := now - frames
		frames = now
		if grew < catchUpFrames {
			break
		}
	}
	c.restart.Store(true)
}

// passive runs a PASSIVE checkpoint and returns the frames in the WAL.
func (c *checkpointer) passive(ctx context.Context) (frames int64, err error) {
	var busy, copied int64
	err = c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
	return frames, err
}

// Catch-up passes before a RESTART: at most maxCatchUp, until a pass finds
// fewer than catchUpFrames new frames.
const (
	maxCatchUp    = 3
	catchUpFrames = 256
)

func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	return c.db.Close()
}
