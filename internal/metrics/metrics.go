// Package metrics turns what the engine and the store report into
// Prometheus metrics on one registry of walletd's own. It implements
// actors.Observer and the stores' OnCommit hook; nothing else in walletd
// imports Prometheus for engine metrics.
package metrics

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/wallet"
)

// Engine holds the engine and store metrics.
type Engine struct {
	transactions *prometheus.CounterVec
	calls        *prometheus.CounterVec
	activations  prometheus.Counter
	passivations prometheus.Counter
	overloads    *prometheus.CounterVec
	queueDepth   prometheus.Histogram
	walletWrites *prometheus.CounterVec
	snapshots    prometheus.Counter

	batchWrites   prometheus.Histogram
	batchEvents   prometheus.Histogram
	commitSeconds prometheus.Histogram
	commitErrors  prometheus.Counter
}

var _ actors.Observer = (*Engine)(nil)

// NewEngine registers the engine and store metrics on reg.
func NewEngine(reg *prometheus.Registry) *Engine {
	m := &Engine{
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walletd_wallet_transactions_total",
			Help: "Money commands by kind and outcome: applied, duplicate, tombstoned, already_rolled_back, or the error code in lower case.",
		}, []string{"kind", "outcome"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walletd_wallet_calls_total",
			Help: "Non-money wallet calls (open, get) by result.",
		}, []string{"op", "outcome"}),
		activations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "walletd_wallet_activations_total", Help: "Wallet actors that loaded their state from the store.",
		}),
		passivations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "walletd_wallet_passivations_total", Help: "Wallet actors stopped (idle or shutdown).",
		}),
		overloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walletd_wallet_overload_refusals_total", Help: "Requests refused with UNAVAILABLE by an in-flight bound, by scope (wallet or engine).",
		}, []string{"scope"}),
		queueDepth: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "walletd_wallet_queue_depth",
			Help:    "Requests a wallet already held when another arrived.",
			Buckets: []float64{0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096},
		}),
		walletWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walletd_wallet_writes_total", Help: "Wallet writes handed to the store, by result (ok, failed).",
		}, []string{"result"}),
		snapshots: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "walletd_snapshot_writes_total", Help: "Wallet snapshots written with a commit.",
		}),
		batchWrites: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "walletd_journal_batch_writes",
			Help:    "Wallet writes committed together in one group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		batchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "walletd_journal_batch_events",
			Help:    "Journal events committed in one group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13),
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "walletd_journal_commit_duration_seconds",
			Help:    "Time of one group commit, from begin to durable.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5},
		}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "walletd_journal_commit_errors_total", Help: "Group commits that failed as a whole.",
		}),
	}
	reg.MustRegister(m.transactions, m.calls, m.activations, m.passivations, m.overloads, m.queueDepth,
		m.walletWrites, m.snapshots, m.batchWrites, m.batchEvents, m.commitSeconds, m.commitErrors)
	// Make every business code visible at 0 from the start, so dashboards
	// and alerts see the series before the first refusal.
	for _, k := range []wallet.Kind{wallet.KindDeposit, wallet.KindWithdraw, wallet.KindBet, wallet.KindWin, wallet.KindRollback} {
		m.transactions.WithLabelValues(string(k), string(wallet.OutcomeApplied))
		m.transactions.WithLabelValues(string(k), string(wallet.OutcomeDuplicate))
		m.transactions.WithLabelValues(string(k), outcomeOf("", wallet.CodeUnavailable))
	}
	for _, scope := range []string{"wallet", "engine"} {
		m.overloads.WithLabelValues(scope)
	}
	m.walletWrites.WithLabelValues("ok")
	m.walletWrites.WithLabelValues("failed")
	return m
}

func outcomeOf(o wallet.Outcome, code wallet.Code) string {
	if code != "" {
		return strings.ToLower(string(code))
	}
	return string(o)
}

// Request implements actors.Observer.
func (m *Engine) Request(op string, kind wallet.Kind, outcome wallet.Outcome, code wallet.Code) {
	if op == "apply" && kind.Valid() {
		m.transactions.WithLabelValues(string(kind), outcomeOf(outcome, code)).Inc()
		return
	}
	if code == "" {
		code = "ok"
	}
	m.calls.WithLabelValues(op, strings.ToLower(string(code))).Inc()
}

func (m *Engine) Activated()              { m.activations.Inc() }
func (m *Engine) Passivated()             { m.passivations.Inc() }
func (m *Engine) Overloaded(scope string) { m.overloads.WithLabelValues(scope).Inc() }
func (m *Engine) Queued(depth int)        { m.queueDepth.Observe(float64(depth)) }
func (m *Engine) Snapshotted()            { m.snapshots.Inc() }

func (m *Engine) Flushed(events int, err error) {
	if err != nil {
		m.walletWrites.WithLabelValues("failed").Inc()
		return
	}
	m.walletWrites.WithLabelValues("ok").Inc()
}

// OnCommit is the stores' group-commit hook.
func (m *Engine) OnCommit(writes, events int, took time.Duration, err error) {
	if err != nil {
		m.commitErrors.Inc()
		return
	}
	m.batchWrites.Observe(float64(writes))
	m.batchEvents.Observe(float64(events))
	m.commitSeconds.Observe(took.Seconds())
}

// RegisterActive registers walletd_wallet_actors_active, read from active.
func RegisterActive(reg *prometheus.Registry, active func() int64) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "walletd_wallet_actors_active", Help: "Wallet actors currently in memory.",
	}, func() float64 { return float64(active()) }))
}

// RegisterUp registers a gauge `name` that is 1 when check succeeds within
// a second at scrape time, else 0 (walletd_store_up, walletd_redis_up).
func RegisterUp(reg *prometheus.Registry, name, help string, check func(context.Context) error) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if check(ctx) != nil {
			return 0
		}
		return 1
	}))
}
