package bench

import (
	"math"
	"strings"
	"testing"
)

func TestCompare(t *testing.T) {
	run := func(rps, serverCores float64) Result {
		return Result{Requests: 100, OK: 100, RPS: rps, CPU: &CPUUse{Server: serverCores}}
	}
	pair := func(a, b float64) Pair { return Pair{A: run(a, 1), B: run(b, 1)} }
	for _, tc := range []struct {
		name    string
		pairs   []Pair
		median  float64
		faster  int
		verdict string
		failed  bool
	}{
		{"B better in every pair", []Pair{pair(100, 110), pair(90, 95), pair(120, 121)}, 1.0556, 3, "B served more in all 3 pairs", false},
		{"B worse in every pair", []Pair{pair(100, 90), pair(100, 99), pair(100, 80), pair(100, 95)}, 0.925, 0, "B served less in all 4 pairs", false},
		{"mixed", []Pair{pair(100, 130), pair(100, 90), pair(100, 95), pair(100, 105), pair(100, 70)}, 0.95, 2, "no clear difference: B served more in 2 of 5 pairs", false},
		{"too few", []Pair{pair(100, 150), pair(100, 150)}, 1.5, 2, "2 pairs are too few", false},
		{"a broken run", []Pair{pair(100, 110), {A: run(100, 1), B: Result{Requests: 100, OK: 100, RPS: 100, Discrepancies: 1}}, pair(100, 110)}, 1.1, 2, "failed its correctness check", true},
		{"none", nil, 0, 0, "nothing measured", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Compare(tc.pairs)
			if math.Abs(c.RPSMedian-tc.median) > 1e-3 || c.BFaster != tc.faster || c.Failed != tc.failed {
				t.Errorf("median %.4f, B faster %d, failed %v; want %.4f, %d, %v", c.RPSMedian, c.BFaster, c.Failed, tc.median, tc.faster, tc.failed)
			}
			if !strings.Contains(c.Verdict, tc.verdict) {
				t.Errorf("verdict %q, want it to say %q", c.Verdict, tc.verdict)
			}
			if txt := c.Text(tc.pairs); !strings.Contains(txt, c.Verdict) || strings.Count(txt, "\n") != len(tc.pairs)+3+boolInt(len(c.CPURatios) > 0) {
				t.Errorf("text:\n%s", txt)
			}
		})
	}
}

// CPU per request is compared beside throughput, and left out when a run
// did not measure it.
func TestCompareCPU(t *testing.T) {
	a := Result{Requests: 1, OK: 1, RPS: 1000, CPU: &CPUUse{Server: 0.5}} // 500 µs per request
	b := Result{Requests: 1, OK: 1, RPS: 1000, CPU: &CPUUse{Server: 0.4}} // 400
	c := Compare([]Pair{{A: a, B: b}, {A: a, B: b}, {A: a, B: b}})
	if len(c.CPURatios) != 3 || math.Abs(c.CPUMedian-0.8) > 1e-9 || a.CPUPerRequest() != 500 {
		t.Errorf("CPU ratios %v, median %v, A %v µs/req", c.CPURatios, c.CPUMedian, a.CPUPerRequest())
	}
	b.CPU = nil
	if c := Compare([]Pair{{A: a, B: b}, {A: a, B: a}, {A: a, B: a}}); c.CPURatios != nil || c.CPUMedian != 0 {
		t.Errorf("a run without CPU: ratios %v, median %v", c.CPURatios, c.CPUMedian)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
