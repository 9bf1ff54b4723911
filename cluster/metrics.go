package cluster

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// nodeMetrics make the membership visible to operators: how many members
// this one sees, how many wallets it hosts, what forwarding costs, and
// whether its standing holds.
type nodeMetrics struct {
	forward         *prometheus.HistogramVec
	retries         *prometheus.CounterVec
	unknown         prometheus.Counter
	topologyChanges prometheus.Counter
	stalls          prometheus.Counter
	evicted         prometheus.Gauge
}

func newNodeMetrics(reg *prometheus.Registry, n *Node) *nodeMetrics {
	m := &nodeMetrics{
		forward: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "walletd_cluster_forward_duration_seconds",
			Help:    "One attempt of a wallet call through the cluster, from lookup to the grain's answer (which includes its commit), by where the grain was (local or remote).",
			Buckets: []float64{.0001, .00025, .0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"target"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walletd_cluster_forward_retries_total",
			Help: "Wallet call attempts repeated, by the reason of the previous failure: unanswered (timeout, member gone), moved (the grain was stopping), unconfirmed (this member's standing was not confirmed).",
		}, []string{"reason"}),
		unknown: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "walletd_cluster_calls_gave_up_total",
			Help: "Wallet calls answered UNAVAILABLE after the retry budget (the caller retries with the same tx_id).",
		}),
		topologyChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "walletd_cluster_topology_changes_total", Help: "Cluster topology changes this member saw.",
		}),
		stalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "walletd_cluster_stalls_total", Help: "Times this process was found not to have run for longer than the stall threshold.",
		}),
		evicted: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "walletd_cluster_evicted", Help: "1 once the rest of the cluster dropped this member: it serves nothing more and must be restarted.",
		}),
	}
	for _, t := range []string{"local", "remote"} {
		m.forward.WithLabelValues(t)
	}
	for _, r := range []string{"unanswered", "moved", "unconfirmed"} {
		m.retries.WithLabelValues(r)
	}
	reg.MustRegister(m.forward, m.retries, m.unknown, m.topologyChanges, m.stalls, m.evicted,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "walletd_cluster_members", Help: "Members in this member's cluster topology (itself included).",
		}, func() float64 { return float64(n.Members()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "walletd_cluster_owned_activations", Help: "Wallet grains living on this member.",
		}, func() float64 { return float64(n.Active()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "walletd_cluster_ready", Help: "1 while this member has joined and its standing is confirmed, else 0.",
		}, func() float64 {
			if n.Ready(context.Background()) != nil {
				return 0
			}
			return 1
		}),
	)
	return m
}
