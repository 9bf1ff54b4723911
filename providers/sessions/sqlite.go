package sessions

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// SQLiteFile is the sessions database inside the data folder. It is a file
// of its own, apart from the wallet store: sessions are disposable and must
// never slow down or lock the journal.
const SQLiteFile = "sessions.db"

// SQLite is the embedded Store: one SQLite file.
type SQLite struct {
	db   *sql.DB
	now  func() time.Time
	puts atomic.Uint64
}

// OpenSQLite opens (creating if needed) dir/sessions.db. now is the clock
// used to purge expired sessions (nil: time.Now).
func OpenSQLite(ctx context.Context, dir string, now func() time.Time) (*SQLite, error) {
	if now == nil {
		now = time.Now
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("sessions: folder %q: %w", dir, err)
	}
	if strings.ContainsRune(abs, '?') {
		return nil, fmt.Errorf("sessions: folder %q: a '?' in the path is not supported", abs)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("sessions: create folder: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	// NORMAL: a power cut may lose the last sessions issued, which only
	// makes their players relaunch; the journal's durability is elsewhere.
	q.Add("_pragma", "synchronous(NORMAL)")
	path := filepath.Join(abs, SQLiteFile)
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sessions: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	const schema = `
CREATE TABLE IF NOT EXISTS sessions (
	id         TEXT PRIMARY KEY,
	player_id  TEXT NOT NULL,
	provider   TEXT NOT NULL,
	game_id    TEXT NOT NULL,
	expires_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions (expires_ms);`
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("sessions: create schema in %s: %w", path, err)
	}
	return &SQLite{db: db, now: now}, nil
}

func (s *SQLite) Put(ctx context.Context, id string, sess Session) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO sessions (id, player_id, provider, game_id, expires_ms) VALUES (?, ?, ?, ?, ?)
		 ON CONFLICT (id) DO UPDATE SET player_id = excluded.player_id, provider = excluded.provider,
		   game_id = excluded.game_id, expires_ms = excluded.expires_ms`,
		id, sess.PlayerID, sess.Provider, sess.GameID, sess.ExpiresAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("sessions: put: %w", err)
	}
	if s.puts.Add(1)%purgeEvery == 0 {
		// Bounded, so one purge never holds the write lock for long.
		_, err = s.db.ExecContext(ctx,
			`DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_ms <= ? LIMIT 1000)`,
			s.now().UnixMilli())
		if err != nil {
			return fmt.Errorf("sessions: purge: %w", err)
		}
	}
	return nil
}

func (s *SQLite) Get(ctx context.Context, id string) (Session, error) {
	return scanSQL(s.db.QueryRowContext(ctx,
		`SELECT player_id, provider, game_id, expires_ms FROM sessions WHERE id = ?`, id))
}

func (s *SQLite) Move(ctx context.Context, from, to string) (Session, error) {
	// One statement: SQLite runs it atomically, so of two concurrent moves
	// of one id only one finds the row.
	return scanSQL(s.db.QueryRowContext(ctx,
		`UPDATE sessions SET id = ? WHERE id = ? RETURNING player_id, provider, game_id, expires_ms`, to, from))
}

func (s *SQLite) Delete(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE id = ?`, id); err != nil {
		return fmt.Errorf("sessions: delete: %w", err)
	}
	return nil
}

func (s *SQLite) Ready(ctx context.Context) error { return s.db.PingContext(ctx) }

func (s *SQLite) Close() error { return s.db.Close() }

func scanSQL(row *sql.Row) (Session, error) {
	var sess Session
	var ms int64
	if err := row.Scan(&sess.PlayerID, &sess.Provider, &sess.GameID, &ms); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Session{}, ErrNotFound
		}
		return Session{}, fmt.Errorf("sessions: read: %w", err)
	}
	sess.ExpiresAt = time.UnixMilli(ms).UTC()
	return sess, nil
}
