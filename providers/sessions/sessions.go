// Package sessions keeps the launch tokens of game sessions: the Pragmatic
// Play `token` and the Evolution `sid` that POST /v1/sessions issues and the
// provider adapters check.
//
// A token is opaque and unguessable (256 random bits). It is bound to a
// player, a provider instance and optionally a game, and expires after a
// TTL. Stores never see tokens: they are keyed by the SHA-256 of each token,
// so a copy of a store's data does not hold a single live token, and logs
// name a token only by Fingerprint.
package sessions

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// ErrNotFound: no live session has this token (unknown, expired, or rotated).
var ErrNotFound = errors.New("sessions: no such session")

// Session is what a token stands for.
type Session struct {
	PlayerID  string
	Provider  string // the provider instance it was launched for
	GameID    string // optional
	ExpiresAt time.Time
}

// Store keeps sessions under ids (the SHA-256 of their tokens, see
// Manager). Implementations: Redis, SQLite (embedded), Postgres, Memory.
// They must be safe for concurrent use. Any error other than ErrNotFound
// means the store could not answer (an outage).
type Store interface {
	// Put stores s under id until s.ExpiresAt (it may keep it a little
	// longer; Manager checks the expiry).
	Put(ctx context.Context, id string, s Session) error
	// Get returns the session stored under id, or ErrNotFound.
	Get(ctx context.Context, id string) (Session, error)
	// Move atomically moves the session under from to id to, and returns it:
	// afterwards from is gone. ErrNotFound if from holds nothing; of two
	// concurrent Moves of one id, only one succeeds.
	Move(ctx context.Context, from, to string) (Session, error)
	// Delete removes id; deleting nothing is not an error.
	Delete(ctx context.Context, id string) error
	// Ready returns nil when the store answers.
	Ready(ctx context.Context) error
	// Close releases the store.
	Close() error
}

// Manager issues, checks and rotates tokens over a Store.
type Manager struct {
	store Store
	ttl   time.Duration
	now   func() time.Time
}

// NewManager returns a manager whose tokens live for ttl. now is the clock
// (nil: time.Now).
func NewManager(store Store, ttl time.Duration, now func() time.Time) *Manager {
	if now == nil {
		now = time.Now
	}
	return &Manager{store: store, ttl: ttl, now: now}
}

// TTL is the lifetime of new tokens.
func (m *Manager) TTL() time.Duration { return m.ttl }

// Launch issues a new token for a player of a provider instance (and
// optionally a game).
func (m *Manager) Launch(ctx context.Context, playerID, provider, gameID string) (string, Session, error) {
	token, err := NewToken()
	if err != nil {
		return "", Session{}, err
	}
	s := Session{PlayerID: playerID, Provider: provider, GameID: gameID, ExpiresAt: m.now().Add(m.ttl).UTC().Truncate(time.Millisecond)}
	if err := m.store.Put(ctx, ID(token), s); err != nil {
		return "", Session{}, err
	}
	return token, s, nil
}

// Lookup returns the live session of token, or ErrNotFound.
func (m *Manager) Lookup(ctx context.Context, token string) (Session, error) {
	if token == "" {
		return Session{}, ErrNotFound
	}
	s, err := m.store.Get(ctx, ID(token))
	if err != nil {
		return Session{}, err
	}
	if !m.now().Before(s.ExpiresAt) {
		return Session{}, ErrNotFound
	}
	return s, nil
}

// Rotate replaces a live token by a new one bound to the same session, with
// the same expiry (rotation does not extend a session): the old token is
// refused from then on. ErrNotFound if token is not live.
func (m *Manager) Rotate(ctx context.Context, token string) (string, Session, error) {
	if _, err := m.Lookup(ctx, token); err != nil {
		return "", Session{}, err
	}
	next, err := NewToken()
	if err != nil {
		return "", Session{}, err
	}
	s, err := m.store.Move(ctx, ID(token), ID(next))
	if err != nil {
		return "", Session{}, err
	}
	return next, s, nil
}

// Revoke ends a token's session.
func (m *Manager) Revoke(ctx context.Context, token string) error {
	return m.store.Delete(ctx, ID(token))
}

// NewToken returns 256 bits from crypto/rand, URL-safe base64 (43
// characters of [A-Za-z0-9_-]: they travel in forms, JSON and URLs as is).
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("sessions: random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// ID is the key a store keeps a token's session under: the hex SHA-256 of
// the token.
func ID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Fingerprint names a token in logs without revealing it: the first 8 hex
// digits of its SHA-256.
func Fingerprint(token string) string { return "sha256:" + ID(token)[:8] }
