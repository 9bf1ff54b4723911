package ratelimit

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Decisions, indexes into decisionNames (the values of the decision label).
const (
	decisionAllowed     = iota
	decisionLimited     // over the limit; refused
	decisionErrorOpen   // could not decide; allowed
	decisionErrorClosed // could not decide; refused
)

var decisionNames = [...]string{"allowed", "limited", "error_open", "error_closed"}

// metrics of the limiter. Labels are bounded: policy is one of policies,
// decision one of the four above; keys never become labels.
type metrics struct {
	decisions *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	// The series resolved once: a decision then costs no label hashing.
	byDecision [len(policies)][len(decisionNames)]prometheus.Counter
	byPolicy   [len(policies)]prometheus.Observer
	// Redis only (nil without Redis, so an in-process walletd exports no
	// redis_up = 0 for alerts to fire on).
	redisUp     prometheus.Gauge
	redisErrors prometheus.Counter
	// In-process only.
	evictions prometheus.Counter
}

// newMetrics registers the metrics of a limiter with Redis (withRedis) or
// in-process; each exports only the series that mean something for it.
func newMetrics(reg *prometheus.Registry, withRedis bool) *metrics {
	m := &metrics{
		decisions: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walletd_ratelimit_decisions_total",
			Help: "Rate-limit decisions by policy and decision (allowed, limited, error_open: could not decide and allowed, error_closed: could not decide and refused).",
		}, []string{"policy", "decision"})),
		duration: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "walletd_ratelimit_decision_duration_seconds",
			Help:    "Time to take a rate-limit decision, by policy (Redis round trip included).",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25},
		}, []string{"policy"})),
	}
	// Every series exists from the start at 0, so rate() and alerts see the
	// first rejection or error instead of a series appearing out of nowhere.
	for i, p := range policies {
		for d, name := range decisionNames {
			m.byDecision[i][d] = m.decisions.WithLabelValues(string(p), name)
		}
		m.byPolicy[i] = m.duration.WithLabelValues(string(p))
	}
	if withRedis {
		m.redisUp = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "walletd_ratelimit_redis_up",
			Help: "1 when the last Redis call of the rate limiter succeeded, 0 when it failed.",
		}))
		m.redisErrors = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "walletd_ratelimit_redis_errors_total",
			Help: "Redis calls of the rate limiter that failed or timed out.",
		}))
	} else {
		m.evictions = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "walletd_ratelimit_memory_evictions_total",
			Help: "Keys the in-process limiter dropped while still inside their window because it held MaxKeys keys (their counts restarted).",
		}))
	}
	return m
}

// observe counts a decision of the policy at index policy.
func (m *metrics) observe(policy, decision int, d time.Duration) {
	m.byDecision[policy][decision].Inc()
	m.byPolicy[policy].Observe(d.Seconds())
}

// register adds c to reg, or returns the collector already registered under
// the same description (two limiters on one registry share their metrics).
func register[C prometheus.Collector](reg *prometheus.Registry, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// failureLog logs the limiter's failures without flooding: during an
// outage every request fails, and one line per request would bury
// everything else (and cost more than the requests). The first failure is
// logged at once, then at most one line per interval with the number of
// failures in between; the recovery is logged once. Lock-free: failures
// arrive from every request goroutine at once.
type failureLog struct {
	logger     *slog.Logger
	every      time.Duration
	failClosed bool

	down       atomic.Bool
	lastLog    atomic.Int64 // unix nanoseconds of the last line; 0: none yet
	suppressed atomic.Int64 // failures since the last line
}

func (f *failureLog) failed(err error) {
	f.down.Store(true)
	now := time.Now().UnixNano()
	last := f.lastLog.Load()
	if last != 0 && now-last < int64(f.every) || !f.lastLog.CompareAndSwap(last, now) {
		f.suppressed.Add(1)
		return
	}
	mode := "failing open: requests are allowed unlimited"
	if f.failClosed {
		mode = "failing closed: limited requests are refused with UNAVAILABLE"
	}
	f.logger.Warn("rate limiter cannot decide; "+mode,
		"err", err, "failures_since_last_line", f.suppressed.Swap(0), "next_line_after", f.every.String())
}

// succeeded notes a working Redis; it logs the recovery after an outage.
// The fast path is one atomic load.
func (f *failureLog) succeeded() {
	if !f.down.Load() || !f.down.CompareAndSwap(true, false) {
		return
	}
	f.logger.Info("rate limiter: Redis answers again", "failures_since_last_line", f.suppressed.Swap(0))
	f.lastLog.Store(0) // the next outage is logged at once
}
