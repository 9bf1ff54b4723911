package bench

import (
	"fmt"
	"slices"
	"strings"
)

// Pair is one round of an A/B comparison: the same run against build A and
// against build B, back to back (walletbench compare alternates which goes
// first, so a machine drifting during a round weighs on both alike).
type Pair struct {
	A, B Result
}

// Comparison sums up the pairs of an A/B comparison. On a shared or
// virtual machine one pair says little: the same binary run twice can
// differ by a third. What can be trusted is a difference that shows in
// every pair, in throughput and in CPU per request.
type Comparison struct {
	Pairs int `json:"pairs"`
	// RPSRatios[i] is B's throughput over A's in pair i (> 1: B serves more).
	RPSRatios []float64 `json:"rps_ratios"`
	// CPURatios[i] is B's server CPU per request over A's (< 1: B is
	// cheaper); empty when a run did not measure CPU.
	CPURatios []float64 `json:"cpu_ratios,omitempty"`
	// Median, smallest and largest of RPSRatios and CPURatios.
	RPSMedian float64 `json:"rps_median"`
	RPSMin    float64 `json:"rps_min"`
	RPSMax    float64 `json:"rps_max"`
	CPUMedian float64 `json:"cpu_median,omitempty"`
	CPUMin    float64 `json:"cpu_min,omitempty"`
	CPUMax    float64 `json:"cpu_max,omitempty"`
	// BFaster counts the pairs where B served more.
	BFaster int `json:"b_faster"`
	// Verdict says in words what the pairs support.
	Verdict string `json:"verdict"`
	// Failed: a run lost or invented money, or measured nothing.
	Failed bool `json:"failed"`
}

// CPUPerRequest is the server's CPU in microseconds per request
// (CPUUse.PerRequest), 0 when not measured.
func (r Result) CPUPerRequest() float64 {
	if r.CPU == nil {
		return 0
	}
	_, server, _ := r.CPU.PerRequest(r.RPS)
	return server
}

// Compare sums up pairs.
func Compare(pairs []Pair) Comparison {
	c := Comparison{Pairs: len(pairs)}
	cpu := true
	for _, p := range pairs {
		c.Failed = c.Failed || p.A.Failed() || p.B.Failed()
		if p.A.RPS <= 0 {
			continue
		}
		ratio := p.B.RPS / p.A.RPS
		c.RPSRatios = append(c.RPSRatios, ratio)
		if ratio > 1 {
			c.BFaster++
		}
		a, b := p.A.CPUPerRequest(), p.B.CPUPerRequest()
		if a <= 0 || b <= 0 {
			cpu = false
			continue
		}
		c.CPURatios = append(c.CPURatios, b/a)
	}
	if !cpu {
		c.CPURatios = nil
	}
	c.RPSMedian, c.RPSMin, c.RPSMax = spread(c.RPSRatios)
	c.CPUMedian, c.CPUMin, c.CPUMax = spread(c.CPURatios)
	c.Verdict = c.verdict()
	return c
}

func (c Comparison) verdict() string {
	n := len(c.RPSRatios)
	switch {
	case c.Failed:
		return "a run failed its correctness check: no comparison"
	case n == 0:
		return "nothing measured"
	case n < 3:
		return fmt.Sprintf("%d pairs are too few to tell anything on a noisy machine; run at least 5", n)
	case c.BFaster == n:
		return fmt.Sprintf("B served more in all %d pairs (median %+.1f%%)", n, 100*(c.RPSMedian-1))
	case c.BFaster == 0:
		return fmt.Sprintf("B served less in all %d pairs (median %+.1f%%)", n, 100*(c.RPSMedian-1))
	}
	return fmt.Sprintf("no clear difference: B served more in %d of %d pairs (median %+.1f%%, from %+.1f%% to %+.1f%%)",
		c.BFaster, n, 100*(c.RPSMedian-1), 100*(c.RPSMin-1), 100*(c.RPSMax-1))
}

// spread returns the median (the mean of the two middle values for an even
// count), the smallest and the largest of xs; zeros for none.
func spread(xs []float64) (median, lo, hi float64) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	median = s[m]
	if len(s)%2 == 0 {
		median = (s[m-1] + s[m]) / 2
	}
	return median, s[0], s[len(s)-1]
}

// Text renders the comparison: one line per pair, then the summary.
func (c Comparison) Text(pairs []Pair) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-5s %10s %10s %8s %12s %12s %8s\n", "pair", "A req/s", "B req/s", "B/A", "A µs/req", "B µs/req", "B/A")
	for i, p := range pairs {
		ratio, cpuRatio := "-", "-"
		if p.A.RPS > 0 {
			ratio = fmt.Sprintf("%.3f", p.B.RPS/p.A.RPS)
		}
		a, bb := p.A.CPUPerRequest(), p.B.CPUPerRequest()
		if a > 0 && bb > 0 {
			cpuRatio = fmt.Sprintf("%.3f", bb/a)
		}
		fmt.Fprintf(&b, "%-5d %10.0f %10.0f %8s %12.1f %12.1f %8s\n", i+1, p.A.RPS, p.B.RPS, ratio, a, bb, cpuRatio)
	}
	fmt.Fprintf(&b, "throughput B/A: median %.3f (%.3f–%.3f)\n", c.RPSMedian, c.RPSMin, c.RPSMax)
	if len(c.CPURatios) > 0 {
		fmt.Fprintf(&b, "server CPU per request B/A: median %.3f (%.3f–%.3f)\n", c.CPUMedian, c.CPUMin, c.CPUMax)
	}
	fmt.Fprintln(&b, c.Verdict)
	return b.String()
}
