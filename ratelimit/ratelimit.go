// Package ratelimit decides walletd's rate limits (wallet-api.md): a sliding
// window of N requests per DURATION, per key, under two policies — auth
// (sessions and provider authentication; keyed per client IP and per player)
// and gameplay (bets, withdrawals and their provider forms; per player).
// Settlements (wins, rollbacks, refunds, cancels) are never asked about:
// refusing them would keep money owed from a player. That choice is the
// callers'; this package only counts.
//
// With a Redis address the window lives in Redis, so every walletd instance
// pointed at the same Redis shares one limit. Each decision is one atomic Lua
// script on a sorted set per key, timed by Redis's own clock (TIME), so
// clock skew between instances cannot stretch or shrink the window. Without
// Redis an in-process limiter keeps the same window in memory.
//
// A rate limiter must never become the outage: every Redis call is bounded
// (Options.Timeout, 50ms by default), and when Redis fails the limiter fails
// open (allows) unless told to fail closed. After a few consecutive failures
// it stops asking Redis for Options.Backoff and lets a single decision probe
// it, so an outage costs wallet traffic nothing beyond one bounded probe per
// backoff. Failures are counted in metrics and logged at most once per
// interval.
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walletd/walletd/wallet"
)

// Policy names a rate-limit policy. The names are the "policy" label of the
// metrics and part of the Redis keys.
type Policy string

// The policies of wallet-api.md.
const (
	// Auth: /v1/sessions, Pragmatic authenticate, Evolution check and sid;
	// keyed per client IP and per player (see CheckAuth).
	Auth Policy = "auth"
	// Gameplay: bets and withdrawals, generic and provider; keyed per player
	// (see CheckGameplay).
	Gameplay Policy = "gameplay"
)

// policies lists every policy, for validation and metric label values.
var policies = [...]Policy{Auth, Gameplay}

// Rate is a policy's limit: at most N requests within any Window; Off
// disables the policy, and so does the zero Rate (a policy nobody
// configured limits nothing). Its fields are those of config.Rate, so cmd
// can convert one into the other: ratelimit.Rate(cfg.RateAuth).
type Rate struct {
	N      int
	Window time.Duration
	Off    bool
}

// off reports whether the rate limits nothing.
func (r Rate) off() bool { return r.Off || r == Rate{} }

func (r Rate) String() string {
	if r.off() {
		return "off"
	}
	return fmt.Sprintf("%d/%s", r.N, r.Window)
}

// MinWindow is the shortest window accepted: Redis keeps timestamps in
// microseconds and expiries in milliseconds.
const MinWindow = time.Millisecond

func (r Rate) validate() error {
	if r.off() {
		return nil
	}
	if r.N <= 0 {
		return fmt.Errorf("rate %s: N must be positive (or the policy off)", r)
	}
	if r.Window < MinWindow {
		return fmt.Errorf("rate %s: the window must be at least %s", r, MinWindow)
	}
	return nil
}

// Defaults of Options.
const (
	DefaultPrefix  = "walletd:rl:"
	DefaultTimeout = 50 * time.Millisecond
	DefaultBackoff = time.Second
	DefaultMaxKeys = 100_000
	// DefaultLogEvery spaces out the log lines about a failing Redis.
	DefaultLogEvery = 10 * time.Second
)

// Options configures a Limiter. The zero value is an in-process limiter with
// both policies off.
type Options struct {
	// Auth and Gameplay are the policies' rates (wallet-api.md defaults are
	// 20/1s and 50/1s; cmd passes the configured ones).
	Auth, Gameplay Rate

	// RedisAddr, when set, keeps the windows in Redis: host:port, or a
	// redis:// or rediss:// URL (password, TLS, database). The limiter owns
	// its client, tuned for bounded latency (no retries, short timeouts),
	// and closes it in Close. Empty: the in-process limiter.
	RedisAddr string
	// Prefix starts every Redis key; keys are Prefix+policy+":"+key
	// (default "walletd:rl:"). Instances sharing a limit share the prefix.
	Prefix string
	// Timeout bounds one Redis decision (default 50ms): the most a decision
	// ever adds to a request.
	Timeout time.Duration
	// Backoff is how long the limiter stops asking Redis after consecutive
	// failures before one decision probes it again (default 1s).
	Backoff time.Duration
	// FailClosed refuses requests when the limiter cannot decide (Redis
	// down) instead of allowing them. The refusal is an UNAVAILABLE error,
	// not RATE_LIMITED: the client is not over any limit, walletd simply
	// cannot tell, and clients and dashboards must see the difference.
	FailClosed bool

	// MaxKeys bounds the in-process limiter's memory: keys per policy
	// (default 100,000). Idle keys (no request within the window) are
	// evicted as a matter of course; at the bound, the least recently
	// admitted key is dropped and its count restarts.
	MaxKeys int
	// Now is the in-process limiter's clock (default time.Now; tests inject
	// one). Redis decisions use Redis's clock.
	Now func() time.Time

	// Registry receives the limiter's metrics. Nil: a registry of the
	// limiter's own (never the global one).
	Registry *prometheus.Registry
	// Logger receives warnings about Redis (at most one line per
	// LogEvery while it fails). Nil: nothing is logged.
	Logger *slog.Logger
	// LogEvery spaces out those lines (default 10s).
	LogEvery time.Duration
}

// backend keeps the windows: Redis or memory.
type backend interface {
	// allow admits one request under every key (all or none) or answers how
	// long until it would be admitted. An error means no decision was made.
	allow(ctx context.Context, p Policy, r Rate, keys []string) (ok bool, wait time.Duration, err error)
	ready(ctx context.Context) error
	close() error
}

// Limiter decides rate limits. It is safe for concurrent use. A nil
// *Limiter allows everything, so callers need no "limits configured?" check.
type Limiter struct {
	rates      [len(policies)]Rate
	backend    backend
	failClosed bool
	metrics    *metrics
	failures   *failureLog
}

// New returns a Limiter. With a Redis address it does not wait for Redis to
// answer: an unreachable Redis at start is logged and handled like any
// outage (fail open or closed), so Redis being down never keeps walletd
// from starting. Errors are only for invalid options.
func New(o Options) (*Limiter, error) {
	if err := o.Auth.validate(); err != nil {
		return nil, fmt.Errorf("ratelimit: auth policy: %w", err)
	}
	if err := o.Gameplay.validate(); err != nil {
		return nil, fmt.Errorf("ratelimit: gameplay policy: %w", err)
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LogEvery <= 0 {
		o.LogEvery = DefaultLogEvery
	}

	l := &Limiter{
		failClosed: o.FailClosed,
		metrics:    newMetrics(o.Registry, o.RedisAddr != ""),
	}
	l.rates[policyIndex(Auth)] = o.Auth
	l.rates[policyIndex(Gameplay)] = o.Gameplay
	l.failures = &failureLog{logger: o.Logger, every: o.LogEvery, failClosed: o.FailClosed}

	if o.RedisAddr == "" {
		l.backend = newMemory(o.MaxKeys, o.Now, l.metrics)
		return l, nil
	}
	rb, err := newRedis(o, l.metrics, l.failures)
	if err != nil {
		return nil, err
	}
	l.backend = rb
	return l, nil
}

// policyIndex returns p's index in policies, or -1.
func policyIndex(p Policy) int {
	for i, q := range policies {
		if p == q {
			return i
		}
	}
	return -1
}

// Allow decides one request under policy p for every key given: it is
// admitted, and counted under each key, only if every key is under the limit
// (one atomic decision; a refused request counts under none). Empty keys are
// ignored.
//
//   - admitted: (true, 0, nil); also when the policy is off, no key is given,
//     or the limiter cannot decide and fails open.
//   - over the limit: (false, wait, nil), wait > 0 being how long until this
//     request would be admitted.
//   - cannot decide and fails closed: (false, 0, err), err's code being
//     wallet.CodeUnavailable.
//   - unknown policy: (false, 0, err), a programming error.
func (l *Limiter) Allow(ctx context.Context, p Policy, keys ...string) (ok bool, retryAfter time.Duration, err error) {
	if l == nil {
		return true, 0, nil
	}
	i := policyIndex(p)
	if i < 0 {
		return false, 0, fmt.Errorf("ratelimit: unknown policy %q", p)
	}
	rate := l.rates[i]
	if rate.off() {
		return true, 0, nil
	}
	keys = normKeys(keys)
	if len(keys) == 0 {
		return true, 0, nil
	}

	start := time.Now()
	ok, wait, berr := l.backend.allow(ctx, p, rate, keys)
	var decision int
	switch {
	case berr == nil && ok:
		decision = decisionAllowed
	case berr == nil:
		decision = decisionLimited
	case l.failClosed:
		decision = decisionErrorClosed
		ok, wait = false, 0
		err = fmt.Errorf("%w: %w", wallet.Errorf(wallet.CodeUnavailable,
			"the rate limiter cannot decide right now; nothing was applied, retry shortly"), berr)
	default:
		decision = decisionErrorOpen
		ok, wait = true, 0
	}
	if berr != nil {
		l.failures.failed(berr)
	}
	l.metrics.observe(i, decision, time.Since(start))
	return ok, wait, err
}

// Check is Allow as an error: nil when the request may proceed, a
// *LimitedError (code RATE_LIMITED, with RetryAfter) when it is over the
// limit, or Allow's error. The http package answers each of them as the
// contract wants (429 with Retry-After, 503); provider adapters map the code
// to their own.
func (l *Limiter) Check(ctx context.Context, p Policy, keys ...string) error {
	ok, wait, err := l.Allow(ctx, p, keys...)
	if err != nil {
		return err
	}
	if !ok {
		return &LimitedError{Policy: p, Wait: wait}
	}
	return nil
}

// CheckAuth applies the auth policy to a request from clientIP (as returned
// by http.ClientIP) about playerID: one decision over both keys, so neither
// an address spraying players nor a player's session from many addresses
// gets past it. Either may be "" when unknown (Evolution check before the
// player is known, say).
func (l *Limiter) CheckAuth(ctx context.Context, clientIP, playerID string) error {
	if l.off(Auth) {
		return nil
	}
	return l.Check(ctx, Auth, IPKey(clientIP), PlayerKey(playerID))
}

// CheckGameplay applies the gameplay policy to a request that takes money
// from playerID (a bet, a withdrawal, a provider debit). Never call it for
// settlements.
func (l *Limiter) CheckGameplay(ctx context.Context, playerID string) error {
	if l.off(Gameplay) {
		return nil
	}
	return l.Check(ctx, Gameplay, PlayerKey(playerID))
}

// off reports whether p admits everything, so the helpers above can skip
// building keys (two allocations per bet otherwise, for nothing).
func (l *Limiter) off(p Policy) bool {
	if l == nil {
		return true
	}
	i := policyIndex(p)
	return i >= 0 && l.rates[i].off()
}

// Ready reports whether the limiter can decide: nil without Redis, else
// whether Redis answers a PING within ctx (readiness probes).
func (l *Limiter) Ready(ctx context.Context) error {
	if l == nil {
		return nil
	}
	return l.backend.ready(ctx)
}

// Close releases the Redis client, if any. Decisions after Close fail (open
// or closed, per Options).
func (l *Limiter) Close() error {
	if l == nil {
		return nil
	}
	return l.backend.close()
}

// PlayerKey is the key of a player under a policy ("" for "").
func PlayerKey(playerID string) string {
	if playerID == "" {
		return ""
	}
	return "player:" + playerID
}

// IPKey is the key of a client address under a policy ("" for ""). An IPv6
// client is keyed by its /64: one subscriber usually holds a whole /64, and
// keying single addresses would hand an attacker 2^64 fresh limits. A text
// that is not an address is used as it is (a Unix socket's "@", say).
func IPKey(ip string) string {
	if ip == "" {
		return ""
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "ip:" + ip
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		return "ip:" + netip.PrefixFrom(a, 64).Masked().String()
	}
	return "ip:" + a.String()
}

// maxKeyLen bounds the length of a key as stored; longer ones are hashed.
const maxKeyLen = 200

// normKeys drops empty keys and duplicates and hashes over-long ones, so
// neither Redis nor memory holds caller-sized keys.
func normKeys(keys []string) []string {
	if len(keys) == 1 && keys[0] != "" && len(keys[0]) <= maxKeyLen {
		return keys // the common case, without allocating
	}
	out := keys[:0:0]
	for _, k := range keys {
		if k == "" {
			continue
		}
		if len(k) > maxKeyLen {
			sum := sha256.Sum256([]byte(k))
			k = "sha256:" + hex.EncodeToString(sum[:])
		}
		dup := false
		for _, o := range out {
			if o == k {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, k)
		}
	}
	return out
}

// LimitedError refuses a request over its policy. Its code is RATE_LIMITED
// (it unwraps to a *wallet.Error) and its RetryAfter method gives the wait,
// which the http package sends as Retry-After in whole seconds.
type LimitedError struct {
	Policy Policy
	// Wait is how long until the request would be admitted.
	Wait time.Duration
}

func (e *LimitedError) Error() string { return e.domain().Error() }

// RetryAfter is how long the client should wait before retrying.
func (e *LimitedError) RetryAfter() time.Duration { return e.Wait }

// Unwrap gives the domain error, so wallet.ErrorCode(err) is RATE_LIMITED.
func (e *LimitedError) Unwrap() error { return e.domain() }

func (e *LimitedError) domain() *wallet.Error {
	secs := int64((e.Wait + time.Second - 1) / time.Second)
	return wallet.Errorf(wallet.CodeRateLimited, "too many %s requests; retry in %ds", e.Policy, max(secs, 1))
}
