package sessions

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is the Store for deployments whose wallet store is Postgres: a
// table walletd_sessions on a pool of its own, so sessions never take
// connections from the journal.
type Postgres struct {
	pool *pgxpool.Pool
	now  func() time.Time
	puts atomic.Uint64
}

// pgSchemaLock is the advisory lock that serialises schema creation, since
// CREATE TABLE IF NOT EXISTS can still fail when two processes race on it.
const pgSchemaLock = 0x77616c6c657473 // "wallets"

// OpenPostgres connects to dsn with a small pool and creates the table if
// needed. now is the clock used to purge expired sessions (nil: time.Now).
func OpenPostgres(ctx context.Context, dsn string, now func() time.Time) (*Postgres, error) {
	if now == nil {
		now = time.Now
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("sessions: postgres DSN: %w", err)
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("sessions: postgres: %w", err)
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(pgSchemaLock)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
CREATE TABLE IF NOT EXISTS walletd_sessions (
	id         text PRIMARY KEY,
	player_id  text NOT NULL,
	provider   text NOT NULL,
	game_id    text NOT NULL,
	expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS walletd_sessions_expiry ON walletd_sessions (expires_at);`)
		return err
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("sessions: postgres schema: %w", err)
	}
	return &Postgres{pool: pool, now: now}, nil
}

func (p *Postgres) Put(ctx context.Context, id string, s Session) error {
	_, err := p.pool.Exec(ctx,
		`INSERT INTO walletd_sessions (id, player_id, provider, game_id, expires_at) VALUES ($1, $2, $3, $4, $5)
		 ON CONFLICT (id) DO UPDATE SET player_id = EXCLUDED.player_id, provider = EXCLUDED.provider,
		   game_id = EXCLUDED.game_id, expires_at = EXCLUDED.expires_at`,
		id, s.PlayerID, s.Provider, s.GameID, s.ExpiresAt)
	if err != nil {
		return fmt.Errorf("sessions: put: %w", err)
	}
	if p.puts.Add(1)%purgeEvery == 0 {
		_, err = p.pool.Exec(ctx,
			`DELETE FROM walletd_sessions WHERE id IN (SELECT id FROM walletd_sessions WHERE expires_at <= $1 LIMIT 1000)`,
			p.now())
		if err != nil {
			return fmt.Errorf("sessions: purge: %w", err)
		}
	}
	return nil
}

func (p *Postgres) Get(ctx context.Context, id string) (Session, error) {
	return scanPG(p.pool.QueryRow(ctx,
		`SELECT player_id, provider, game_id, expires_at FROM walletd_sessions WHERE id = $1`, id))
}

func (p *Postgres) Move(ctx context.Context, from, to string) (Session, error) {
	// The row lock of the UPDATE makes a concurrent move of the same id
	// wait, then find no row: only one succeeds.
	return scanPG(p.pool.QueryRow(ctx,
		`UPDATE walletd_sessions SET id = $1 WHERE id = $2 RETURNING player_id, provider, game_id, expires_at`, to, from))
}

func (p *Postgres) Delete(ctx context.Context, id string) error {
	if _, err := p.pool.Exec(ctx, `DELETE FROM walletd_sessions WHERE id = $1`, id); err != nil {
		return fmt.Errorf("sessions: delete: %w", err)
	}
	return nil
}

func (p *Postgres) Ready(ctx context.Context) error { return p.pool.Ping(ctx) }

func (p *Postgres) Close() error {
	p.pool.Close()
	return nil
}

func scanPG(row pgx.Row) (Session, error) {
	var s Session
	if err := row.Scan(&s.PlayerID, &s.Provider, &s.GameID, &s.ExpiresAt); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return Session{}, ErrNotFound
		}
		return Session{}, fmt.Errorf("sessions: read: %w", err)
	}
	s.ExpiresAt = s.ExpiresAt.UTC()
	return s, nil
}
