package sessions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// DefaultRedisPrefix starts every key walletd keeps in Redis for sessions.
const DefaultRedisPrefix = "walletd:session:"

// Redis is the Store used when WALLET_REDIS_ADDR is set: one key per
// session, expiring with it, so Redis does the purging.
type Redis struct {
	c      *redis.Client
	prefix string
}

// RedisOptions configure OpenRedis.
type RedisOptions struct {
	// Addr is host:port, or a redis:// or rediss:// URL (with a password,
	// a database number, TLS).
	Addr string
	// Prefix starts every key (default DefaultRedisPrefix). Tests use one
	// of their own.
	Prefix string
}

// OpenRedis returns a store on the Redis at o.Addr. It does not wait for
// Redis to answer: walletd must start, and keep settling money (wins,
// refunds, cancels need no session), while Redis is down; until it is
// back, session calls fail and Ready says so.
func OpenRedis(o RedisOptions) (*Redis, error) {
	var opts *redis.Options
	if strings.HasPrefix(o.Addr, "redis://") || strings.HasPrefix(o.Addr, "rediss://") {
		var err error
		if opts, err = redis.ParseURL(o.Addr); err != nil {
			return nil, fmt.Errorf("sessions: redis address: %w", err)
		}
	} else {
		opts = &redis.Options{Addr: o.Addr}
	}
	// Bounded, quick failures: a session check sits on the path of a bet,
	// and while Redis is down it must answer "retry" fast rather than make
	// every bet wait out redial backoffs. One command retry still covers a
	// pooled connection that went stale across a Redis restart.
	opts.DialTimeout = time.Second
	opts.ReadTimeout = time.Second
	opts.WriteTimeout = time.Second
	opts.DialerRetries = 1
	opts.MaxRetries = 1
	// Maintenance notifications are for managed clusters' live upgrades;
	// a plain Redis gains nothing from the handshake and its goroutines.
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	if o.Prefix == "" {
		o.Prefix = DefaultRedisPrefix
	}
	return &Redis{c: redis.NewClient(opts), prefix: o.Prefix}, nil
}

// redisSession is a session's value in Redis.
type redisSession struct {
	PlayerID  string `json:"p"`
	Provider  string `json:"v"`
	GameID    string `json:"g,omitempty"`
	ExpiresMS int64  `json:"e"`
}

func (r *Redis) Put(ctx context.Context, id string, s Session) error {
	b, err := json.Marshal(redisSession{PlayerID: s.PlayerID, Provider: s.Provider, GameID: s.GameID, ExpiresMS: s.ExpiresAt.UnixMilli()})
	if err != nil {
		return err
	}
	// ExpireAt with milliseconds is sent as PXAT: Redis drops the key at
	// the session's own expiry.
	if err := r.c.SetArgs(ctx, r.prefix+id, b, redis.SetArgs{ExpireAt: s.ExpiresAt}).Err(); err != nil {
		return fmt.Errorf("sessions: redis put: %w", err)
	}
	return nil
}

func (r *Redis) Get(ctx context.Context, id string) (Session, error) {
	b, err := r.c.Get(ctx, r.prefix+id).Bytes()
	return r.decode(b, err)
}

// moveScript renames a key only if it exists, and returns its value.
// RENAME keeps the key's expiry; the script runs atomically, so of two
// concurrent moves of one key only one finds it.
var moveScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
redis.call('RENAME', KEYS[1], KEYS[2])
return v`)

func (r *Redis) Move(ctx context.Context, from, to string) (Session, error) {
	b, err := moveScript.Run(ctx, r.c, []string{r.prefix + from, r.prefix + to}).Text()
	return r.decode([]byte(b), err)
}

func (r *Redis) Delete(ctx context.Context, id string) error {
	if err := r.c.Del(ctx, r.prefix+id).Err(); err != nil {
		return fmt.Errorf("sessions: redis delete: %w", err)
	}
	return nil
}

func (r *Redis) Ready(ctx context.Context) error { return r.c.Ping(ctx).Err() }

func (r *Redis) Close() error { return r.c.Close() }

func (r *Redis) decode(b []byte, err error) (Session, error) {
	if errors.Is(err, redis.Nil) {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("sessions: redis read: %w", err)
	}
	var v redisSession
	if err := json.Unmarshal(b, &v); err != nil {
		return Session{}, fmt.Errorf("sessions: redis value: %w", err)
	}
	return Session{PlayerID: v.PlayerID, Provider: v.Provider, GameID: v.GameID, ExpiresAt: time.UnixMilli(v.ExpiresMS).UTC()}, nil
}
