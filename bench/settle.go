package bench

import (
	"context"
	"time"
)

// Quiet is what the machine was doing just before the first measured run:
// the suite starts every system and opens its wallets first, which leaves
// builds, checkpoints and vacuums behind it, and anything else running on
// the box takes cores from whatever is measured first.
type Quiet struct {
	// BusyCores is the CPU in use on the whole machine over the last sample
	// window before the runs began (cores; 2.0 is all of a 2-core box).
	BusyCores float64 `json:"busy_cores"`
	// WaitedS is how long the suite waited for the machine to settle.
	WaitedS float64 `json:"waited_s"`
	// Settled is false when the machine was still busier than the limit
	// when the suite gave up waiting and ran anyway.
	Settled bool `json:"settled"`
}

// settle samples the machine's busy cores, one window per sample, until
// they are at most limit or maxWait has gone by in windows after the first,
// and says what it saw. sample blocks for one window and returns the busy
// cores in it.
func settle(ctx context.Context, sample func(context.Context) (float64, error), window time.Duration, limit float64, maxWait time.Duration) (Quiet, error) {
	for n := 0; ; n++ {
		busy, err := sample(ctx)
		if err != nil {
			return Quiet{}, err
		}
		waited := time.Duration(n) * window
		q := Quiet{BusyCores: round3(busy), WaitedS: round1(waited.Seconds()), Settled: busy <= limit}
		if q.Settled || waited >= maxWait {
			return q, nil
		}
	}
}

// machineBusyOver is a settle sampler: the machine's busy cores over d.
func machineBusyOver(d time.Duration) func(context.Context) (float64, error) {
	probe := NewCPUProbe(0, false)
	return func(ctx context.Context) (float64, error) {
		a := probe.Sample()
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		return probe.Sample().Sub(a).Machine, nil
	}
}
