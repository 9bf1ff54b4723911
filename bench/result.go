package bench

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Result is one scenario's figures. The first fields are the JSON shape the
// issue fixes; the rest say how they were obtained.
type Result struct {
	System        string  `json:"system"`
	Scenario      string  `json:"scenario"`
	Users         int     `json:"users"`
	Wallets       int     `json:"wallets"`
	DurationS     float64 `json:"duration_s"`
	Requests      int64   `json:"requests"`
	OK            int64   `json:"ok"`
	Errors        int64   `json:"errors"`
	RPS           float64 `json:"rps"`
	LatencyMS     Latency `json:"latency_ms"`
	Discrepancies int     `json:"discrepancies"`

	Mode    string  `json:"mode"`           // closed or open
	Rate    float64 `json:"rate,omitempty"` // open loop: requests/s due
	Mix     string  `json:"mix"`
	Skew    string  `json:"skew"`
	Format  string  `json:"format"` // wire format: generic, pragmatic, evolution
	WarmupS float64 `json:"warmup_s"`
	Checked bool    `json:"checked"` // false: a stateless target, nothing to check
	// What the check covered: wallets read back, journal entries verified,
	// operations whose outcome the harness did not learn (timeouts).
	CheckedWallets      int              `json:"checked_wallets,omitempty"`
	CheckedTransactions int              `json:"checked_transactions,omitempty"`
	InDoubt             int              `json:"in_doubt,omitempty"`
	DiscrepancyDetails  []Discrepancy    `json:"discrepancy_details,omitempty"`
	ErrorCodes          map[string]int64 `json:"error_codes,omitempty"`
	CPU                 *CPUUse          `json:"cpu_cores,omitempty"`
	Engine              *EngineStats     `json:"engine,omitempty"` // walletd's group commit, from its /metrics
	// Timeline: the measured phase in about 20 slices.
	Timeline []Point `json:"timeline,omitempty"`
	// Repeats: when the suite ran the scenario several times (-repeat),
	// every run's headline figures in run order. The figures above are then
	// those of the median run by throughput, except discrepancies and their
	// details, which add up every run's.
	Repeats []RunFigures `json:"repeats,omitempty"`
}

// RunFigures are one repeated run's headline figures.
type RunFigures struct {
	RPS           float64 `json:"rps"`
	P99MS         float64 `json:"p99_ms"`
	Requests      int64   `json:"requests"`
	OK            int64   `json:"ok"`
	Discrepancies int     `json:"discrepancies"`
}

// MedianRun folds repeated runs of one scenario into one result: the run
// with the median throughput (the lower of the two middle ones for an even
// count), carrying every run's figures in Repeats and the discrepancies of
// all of them. One run is returned as it is.
func MedianRun(runs []Result) Result {
	if len(runs) == 1 {
		return runs[0]
	}
	byRPS := slices.Clone(runs)
	slices.SortStableFunc(byRPS, func(a, b Result) int { return cmp.Compare(a.RPS, b.RPS) })
	m := byRPS[(len(byRPS)-1)/2]
	m.Discrepancies, m.DiscrepancyDetails, m.Repeats = 0, nil, nil
	for _, x := range runs {
		m.Repeats = append(m.Repeats, RunFigures{RPS: x.RPS, P99MS: x.LatencyMS.P99, Requests: x.Requests, OK: x.OK, Discrepancies: x.Discrepancies})
		m.Discrepancies += x.Discrepancies
		m.DiscrepancyDetails = append(m.DiscrepancyDetails, x.DiscrepancyDetails...)
	}
	return m
}

// LowestSuccessPct is SuccessPct of the worst of the repeated runs (of the
// one run when not repeated).
func (r Result) LowestSuccessPct() float64 {
	low := r.SuccessPct()
	for _, x := range r.Repeats {
		low = min(low, Result{Requests: x.Requests, OK: x.OK}.SuccessPct())
	}
	return low
}

// SuccessPct is the share of measured requests that succeeded.
func (r Result) SuccessPct() float64 {
	if r.Requests == 0 {
		return 0
	}
	return 100 * float64(r.OK) / float64(r.Requests)
}

// Failed reports whether the run must fail the invocation: money went
// missing or appeared, or it measured nothing.
func (r Result) Failed() bool {
	failed := r.Discrepancies > 0 || r.Requests == 0
	for _, x := range r.Repeats {
		failed = failed || x.Discrepancies > 0 || x.Requests == 0
	}
	return failed
}

// Latency percentiles in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// Point is one slice of a run.
type Point struct {
	T     float64 `json:"t"` // seconds since measuring began, at the slice's end
	RPS   float64 `json:"rps"`
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
}

// Histogram bounds: 1 µs to 5 minutes at 3 significant digits, so every
// percentile is within 0.1% of the exact value.
const (
	histMinUS = 1
	histMaxUS = int64(5 * time.Minute / time.Microsecond)
	histDigit = 3
)

// newHistogram returns an HDR histogram of microseconds.
func newHistogram() *hdrhistogram.Histogram { return hdrhistogram.New(histMinUS, histMaxUS, histDigit) }

// latencyOf reads the percentiles of h (microseconds) in milliseconds;
// max is exact, from the samples.
func latencyOf(h *hdrhistogram.Histogram, maxLat time.Duration) Latency {
	top := round3(float64(maxLat) / float64(time.Millisecond))
	// The histogram answers a bucket's highest value, which may pass the
	// exact maximum by up to 0.1%.
	ms := func(us int64) float64 { return min(round3(float64(us)/1000), top) }
	return Latency{
		P50:  ms(h.ValueAtPercentile(50)),
		P95:  ms(h.ValueAtPercentile(95)),
		P99:  ms(h.ValueAtPercentile(99)),
		P999: ms(h.ValueAtPercentile(99.9)),
		Max:  top,
	}
}

func record(h *hdrhistogram.Histogram, d time.Duration) {
	us := max(int64(d/time.Microsecond), histMinUS)
	_ = h.RecordValue(min(us, histMaxUS)) // clamped: cannot fail
}

// summarize computes the figures of the measured samples over window.
// Latency covers every request, failed or not (a fast error is still an
// answer a player waited for); throughput counts them all too.
func summarize(samples []sample, window time.Duration) Result {
	h := newHistogram()
	var ok int64
	var maxLat time.Duration
	// About 20 points over the window (at least 100 ms each): enough to see
	// a stall or a drift even in a short run.
	bucket := max(window/20, 100*time.Millisecond).Round(50 * time.Millisecond)
	perBucket := make([][]time.Duration, max(int(math.Ceil(float64(window)/float64(bucket))), 1))
	for _, s := range samples {
		record(h, s.lat)
		maxLat = max(maxLat, s.lat)
		if s.ok {
			ok++
		}
		// Bucketed by completion: what a dashboard watching the server sees.
		if i := int((s.at + s.lat) / bucket); i >= 0 && i < len(perBucket) {
			perBucket[i] = append(perBucket[i], s.lat)
		}
	}
	n := int64(len(samples))
	r := Result{
		DurationS: round3(window.Seconds()),
		Requests:  n,
		OK:        ok,
		Errors:    n - ok,
		LatencyMS: latencyOf(h, maxLat),
	}
	if window > 0 {
		r.RPS = round1(float64(n) / window.Seconds())
	}
	for i, lats := range perBucket {
		if len(lats) == 0 {
			continue
		}
		sorted := lats
		slices.Sort(sorted)
		r.Timeline = append(r.Timeline, Point{
			T:     round3((time.Duration(i+1) * bucket).Seconds()),
			RPS:   round1(float64(len(lats)) / bucket.Seconds()),
			P50MS: round3(float64(quantile(sorted, 0.50)) / float64(time.Millisecond)),
			P99MS: round3(float64(quantile(sorted, 0.99)) / float64(time.Millisecond)),
		})
	}
	return r
}

// quantile of sorted durations (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
