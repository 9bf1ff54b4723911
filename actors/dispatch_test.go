package actors

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Everything scheduled runs exactly once: on a worker, on a goroutine of its
// own when the workers are busy or closed, and while close races Schedule.
func TestWorkersRunEverything(t *testing.T) {
	for _, tc := range []struct {
		name  string
		block bool // hold every worker busy while scheduling
	}{
		{"idle workers", false},
		{"busy workers", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newWorkers(10)
			release := make(chan struct{})
			if tc.block {
				for range 1000 { // more than the workers and their queue
					d.Schedule(func() { <-release })
				}
			}
			const n = 2000
			var ran atomic.Int64
			var wg sync.WaitGroup
			wg.Add(n)
			for i := range n {
				if i == n/2 {
					go func() {
						if tc.block {
							close(release)
						}
						d.close()
					}()
				}
				d.Schedule(func() { ran.Add(1); wg.Done() })
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(time.Minute):
				t.Fatalf("%d of %d scheduled functions ran", ran.Load(), n)
			}
			d.close() // again: a no-op
			if got := ran.Load(); got != n {
				t.Fatalf("%d runs, want %d", got, n)
			}
		})
	}
}
