package sessions

import (
	"context"
	"time"
)

// Options choose and configure the Store that Open returns; they mirror
// walletd's configuration.
type Options struct {
	RedisAddr   string // WALLET_REDIS_ADDR: when set, sessions live in Redis
	RedisPrefix string // default DefaultRedisPrefix
	PGDSN       string // WALLET_PG_DSN: else, when set, in Postgres
	DataDir     string // WALLET_DATA_DIR: else in DataDir/sessions.db
	Now         func() time.Time
}

// Open returns the Store the options select: Redis when RedisAddr is set
// (shared by every walletd, with expiry of its own; Open does not wait for
// it to answer), else Postgres when PGDSN is set (shared too), else the
// embedded SQLite file. It returns a string naming the kind, for the
// startup log.
func Open(ctx context.Context, o Options) (Store, string, error) {
	// Each branch returns a nil interface on error, never a typed nil.
	switch {
	case o.RedisAddr != "":
		s, err := OpenRedis(RedisOptions{Addr: o.RedisAddr, Prefix: o.RedisPrefix})
		if err != nil {
			return nil, "redis", err
		}
		return s, "redis", nil
	case o.PGDSN != "":
		s, err := OpenPostgres(ctx, o.PGDSN, o.Now)
		if err != nil {
			return nil, "postgres", err
		}
		return s, "postgres", nil
	default:
		s, err := OpenSQLite(ctx, o.DataDir, o.Now)
		if err != nil {
			return nil, "embedded", err
		}
		return s, "embedded", nil
	}
}
