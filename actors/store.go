package actors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/walletd/walletd/wallet"
)

// Store is what wallet actors need from persistence. The actors own this
// interface; persistence/sqlite and persistence/postgres implement it, and
// persistence/storetest is the conformance suite every implementation passes.
//
// Implementations must be safe for concurrent use by many actors.
type Store interface {
	// Load returns what activation needs: the wallet, its latest snapshot
	// and the journal events after it (all events when there is none), in
	// sequence order. It returns ErrNotFound when the wallet does not exist.
	Load(ctx context.Context, playerID string) (Loaded, error)

	// Append durably commits one wallet's write. Writes of many wallets are
	// committed together (group commit); Append returns only once its own
	// write is durable (fsync, or a Postgres commit) or has failed. One
	// wallet's failure never fails another wallet's write in the same batch.
	//
	// Errors:
	//   - ErrFenced: the wallet's version in the store is not w.Expected (or,
	//     for a Create, the wallet exists): another writer got there first.
	//     Nothing of w was written.
	//   - *KeyExistsError: an event's tx_id or bet key is already in the
	//     wallet's journal. Nothing of w was written.
	//   - anything else: the store is unavailable; w may or may not have been
	//     committed (a lost commit acknowledgement). Reload to find out.
	Append(ctx context.Context, w Write) error

	// Lookup returns the wallet's journal events whose tx_id or ref is one
	// of ids, plus, for each bet among them, the wins of its round that come
	// after it: everything wallet.State.Recall needs to answer for ids that
	// have left memory. ErrNotFound when the wallet does not exist.
	Lookup(ctx context.Context, playerID string, ids []string) ([]wallet.Event, error)

	// History returns up to limit committed events with seq < before (before
	// 0: from the newest), newest first. ErrNotFound when the wallet does
	// not exist.
	History(ctx context.Context, playerID string, before uint64, limit int) ([]wallet.Event, error)

	// Ready returns nil when the store can commit.
	Ready(ctx context.Context) error

	// Close flushes what is queued and releases the store.
	Close() error
}

// AsyncAppender is a Store that can also take a write without a goroutine
// waiting on it. The actors use it when the store offers it: a write per
// wallet commit is the hottest path there is, and a goroutine, a context and
// a channel per write were a measurable part of it.
type AsyncAppender interface {
	// AppendAsync queues w like Append and returns at once. done is called
	// exactly once, from a goroutine of the store, with what Append would
	// have returned; it must not block. A write not taken into a batch by
	// deadline is not written and done gets an error. When the store cannot
	// take w without waiting (its queue is full), AppendAsync returns false,
	// never calls done, and the caller uses Append instead.
	AppendAsync(w Write, deadline time.Time, done func(error)) bool
}

// Wallet is a wallet's identity, fixed at creation.
type Wallet struct {
	PlayerID  string
	Currency  wallet.Currency
	CreatedAt time.Time
}

// Write is one wallet's part of a group commit.
type Write struct {
	PlayerID string
	// Create makes the wallet (at version 0); Expected is then 0.
	Create *Wallet
	// Expected is the wallet's version in the store before this write: the
	// fencing token. The store refuses the write if it differs.
	Expected uint64
	// Events are contiguous: Events[i].Seq == Expected+1+i.
	Events []wallet.Event
	// Snapshot, if set, is the state after the last event; the store keeps it
	// to bound activation time.
	Snapshot *wallet.Snapshot
}

// Version is the wallet's version after the write.
func (w Write) Version() uint64 { return w.Expected + uint64(len(w.Events)) }

// Validate checks the write's own consistency; stores call it before writing.
func (w Write) Validate() error {
	if w.Create != nil && (w.Expected != 0 || w.Create.PlayerID != w.PlayerID) {
		return fmt.Errorf("store: create of %s must be at version 0", w.PlayerID)
	}
	for i, ev := range w.Events {
		if ev.Seq != w.Expected+1+uint64(i) {
			return fmt.Errorf("store: write of %s: event %d has seq %d, want %d", w.PlayerID, i, ev.Seq, w.Expected+1+uint64(i))
		}
	}
	if w.Snapshot != nil && w.Snapshot.Version != w.Version() {
		return fmt.Errorf("store: write of %s: snapshot at %d, write ends at %d", w.PlayerID, w.Snapshot.Version, w.Version())
	}
	return nil
}

// Loaded is a wallet as activation reads it.
type Loaded struct {
	Wallet   Wallet
	Snapshot *wallet.Snapshot
	Tail     []wallet.Event
}

// ErrNotFound: the wallet does not exist.
var ErrNotFound = errors.New("store: wallet not found")

// ErrFenced: another writer changed the wallet; reload before writing again.
var ErrFenced = errors.New("store: wallet version moved on (fenced)")

// KeyExistsError: the write reused tx_ids or bet keys the journal already
// holds, beyond what the wallet had in memory.
type KeyExistsError struct {
	Keys []string
}

func (e *KeyExistsError) Error() string {
	return "store: keys already in the journal: " + strings.Join(e.Keys, ", ")
}
