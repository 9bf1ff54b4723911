package bench

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// The suite waits for a busy machine to settle, window by window, and gives
// up after the limit, saying so.
func TestSettle(t *testing.T) {
	for _, tc := range []struct {
		name    string
		busy    []float64 // what each window measures (the last repeats)
		want    Quiet
		samples int
	}{
		{"quiet at once", []float64{0.04}, Quiet{BusyCores: 0.04, WaitedS: 0, Settled: true}, 1},
		{"settles after a build", []float64{1.9, 1.2, 0.3, 0.1}, Quiet{BusyCores: 0.1, WaitedS: 3, Settled: true}, 4},
		{"exactly the limit is quiet", []float64{0.5, 0.2}, Quiet{BusyCores: 0.2, WaitedS: 1, Settled: true}, 2},
		{"never settles", []float64{1.5}, Quiet{BusyCores: 1.5, WaitedS: 5, Settled: false}, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			sample := func(context.Context) (float64, error) {
				v := tc.busy[min(n, len(tc.busy)-1)]
				n++
				return v, nil
			}
			got, err := settle(context.Background(), sample, time.Second, 0.2, 5*time.Second)
			if err != nil || got != tc.want || n != tc.samples {
				t.Fatalf("got %+v after %d samples (%v), want %+v after %d", got, n, err, tc.want, tc.samples)
			}
		})
	}
	boom := errors.New("cancelled")
	if _, err := settle(context.Background(), func(context.Context) (float64, error) { return 0, boom }, time.Second, 0.2, time.Second); !errors.Is(err, boom) {
		t.Fatalf("a failing sample: %v", err)
	}
}

// The real sampler sees a core kept busy, and never more cores than the
// machine has.
func TestMachineBusyOver(t *testing.T) {
	stop := make(chan struct{})
	spun := make(chan struct{})
	go func() {
		defer close(spun)
		for {
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	busy, err := machineBusyOver(300 * time.Millisecond)(context.Background())
	close(stop)
	<-spun
	if err != nil || busy < 0.5 || busy > float64(runtime.NumCPU())+0.5 {
		t.Fatalf("busy %v cores while one spins, %v", busy, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := machineBusyOver(time.Hour)(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}
