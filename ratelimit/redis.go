package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// slidingWindow decides one request for every key in KEYS, atomically: Redis
// runs a script to completion before anything else, so concurrent requests
// from every walletd instance are serialised and exactly N get through.
//
// Each key is a sorted set of admitted requests scored by their time in
// microseconds, read from Redis's clock (TIME), not the caller's, so clock
// skew between instances cannot move the window. Members are unique per
// request (ARGV[3]), so requests in the same microsecond count separately.
//
// ARGV: 1 window in µs, 2 limit N, 3 member, 4 expiry in ms.
// Returns {1, 0} when admitted (added under every key), else {0, wait_µs}
// with wait the time until the request would fit under every key.
var slidingWindow = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local wait = 0
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local n = redis.call('ZCARD', key)
  if n >= limit then
    -- Admission needs n-limit+1 members gone; the last of them, at rank
    -- n-limit, leaves the window at its score + window.
    local m = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
    local w = tonumber(m[2]) + window - now
    if w < 1 then w = 1 end
    if w > wait then wait = w end
  end
end
if wait > 0 then
  return {0, wait}
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, ARGV[4])
end
return {1, 0}
`)

// breakerThreshold is how many consecutive Redis failures stop the limiter
// from asking Redis for Options.Backoff. One slow call is not an outage.
const breakerThreshold = 3

// errBreakerOpen: Redis was not asked, it failed moments ago.
var errBreakerOpen = errors.New("ratelimit: Redis failed repeatedly; not asking it until the backoff ends")

// redisBackend keeps the windows in Redis.
type redisBackend struct {
	c       *redis.Client
	prefix  string
	timeout time.Duration
	backoff time.Duration
	metrics *metrics
	log     *failureLog

	// Members are instance + counter: unique across instances and
	// requests without a random read per request.
	instance string
	seq      atomic.Uint64

	// The breaker. failures counts consecutive failed calls; at the
	// threshold, openUntil is set and no call is made before it; then one
	// caller (probing) asks Redis while the others keep answering without it.
	failures  atomic.Int64
	openUntil atomic.Int64 // unix nanoseconds; 0: closed
	probing   atomic.Bool
}

func newRedis(o Options, m *metrics, log *failureLog) (*redisBackend, error) {
	var opts *redis.Options
	if strings.HasPrefix(o.RedisAddr, "redis://") || strings.HasPrefix(o.RedisAddr, "rediss://") {
		var err error
		if opts, err = redis.ParseURL(o.RedisAddr); err != nil {
			// ParseURL's error may quote the URL, password included.
			return nil, errors.New("ratelimit: invalid Redis URL")
		}
	} else {
		opts = &redis.Options{Addr: o.RedisAddr}
	}
	// Tuned so that no call can outlast Timeout: the context's deadline
	// bounds dials, reads and writes (ContextTimeoutEnabled), nothing is
	// retried (a retry would be a second wait), and a pool exhausted under
	// load is waited on no longer than a call.
	opts.ContextTimeoutEnabled = true
	opts.MaxRetries = -1
	opts.DialerRetries = 1
	opts.DialTimeout = o.Timeout
	opts.ReadTimeout = o.Timeout
	opts.WriteTimeout = o.Timeout
	opts.PoolTimeout = o.Timeout
	// No CLIENT SETINFO and no maintenance-notification handshake: fewer
	// round trips on a new connection, none that older servers refuse.
	opts.DisableIdentity = true
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}

	var id [6]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("ratelimit: instance id: %w", err)
	}
	b := &redisBackend{
		c:        redis.NewClient(opts),
		prefix:   o.Prefix,
		timeout:  o.Timeout,
		backoff:  o.Backoff,
		metrics:  m,
		log:      log,
		instance: hex.EncodeToString(id[:]),
	}
	// Learn Redis's state now (metric and log), bounded; an unreachable
	// Redis is an outage like any other, not a reason to refuse to start.
	ctx, cancel := context.WithTimeout(context.Background(), max(o.Timeout, time.Second))
	defer cancel()
	if err := b.c.Ping(ctx).Err(); err != nil {
		b.fail()
		log.failed(fmt.Errorf("Redis at %s does not answer at start: %w", opts.Addr, err))
	} else {
		m.redisUp.Set(1)
	}
	return b, nil
}

func (b *redisBackend) allow(ctx context.Context, p Policy, r Rate, keys []string) (bool, time.Duration, error) {
	if until := b.openUntil.Load(); until != 0 {
		if time.Now().UnixNano() < until || !b.probing.CompareAndSwap(false, true) {
			return false, 0, errBreakerOpen
		}
		defer b.probing.Store(false)
	}

	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = b.prefix + string(p) + ":" + k
	}
	windowUS := r.Window.Microseconds()
	expiryMS := r.Window.Milliseconds() + 1
	member := b.instance + ":" + strconv.FormatUint(b.seq.Add(1), 36)

	// The caller's cancellation is not ours: a client hanging up must not
	// look like a Redis failure. The timeout bounds the call regardless.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.timeout)
	defer cancel()
	res, err := slidingWindow.Run(ctx, b.c, full, windowUS, r.N, member, expiryMS).Int64Slice()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("ratelimit: unexpected script reply %v", res)
	}
	if err != nil {
		b.fail()
		return false, 0, err
	}
	b.succeed()
	if res[0] == 1 {
		return true, 0, nil
	}
	return false, time.Duration(res[1]) * time.Microsecond, nil
}

// fail counts a failed Redis call and opens the breaker at the threshold.
func (b *redisBackend) fail() {
	b.metrics.redisErrors.Inc()
	b.metrics.redisUp.Set(0)
	if b.failures.Add(1) >= breakerThreshold {
		b.openUntil.Store(time.Now().Add(b.backoff).UnixNano())
	}
}

func (b *redisBackend) succeed() {
	if b.failures.Load() != 0 {
		b.failures.Store(0)
	}
	if b.openUntil.Load() != 0 {
		b.openUntil.Store(0)
	}
	b.metrics.redisUp.Set(1)
	b.log.succeeded()
}

func (b *redisBackend) ready(ctx context.Context) error {
	if err := b.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ratelimit: Redis: %w", err)
	}
	return nil
}

func (b *redisBackend) close() error { return b.c.Close() }
