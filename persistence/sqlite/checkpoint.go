package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// checkpointEvery is how often the checkpointer moves committed WAL frames
// into the database file while commits keep coming.
const checkpointEvery = 250 * time.Millisecond

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
	db    *sql.DB
	dirty chan struct{} // capacity 1: "there were commits since the last run"
	stop  chan struct{}
	done  chan struct{}
}

func startCheckpointer(path string, busy time.Duration) (*checkpointer, error) {
	db, err := sql.Open("sqlite", dsn(path, busy, false))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	c := &checkpointer{db: db, dirty: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c, nil
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
	tick := time.NewTicker(checkpointEvery)
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
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		// A failed or partial checkpoint is harmless: frames stay in the WAL,
		// readers still see them, the next run tries again.
		_, _ = c.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
		cancel()
	}
}

func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	return c.db.Close()
}
