package bench

import (
	"context"
	"testing"
	"time"
)

// The probe measures: both figures positive, the round trip of a real
// connection bounded by what loopback TCP can be (more than a microsecond,
// less than a second), and a cancelled context ends it with an error.
func TestMeasureSpeed(t *testing.T) {
	sp, err := MeasureSpeed(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sp.HashMBps <= 0 || sp.LoopbackRTTus < 1 || sp.LoopbackRTTus > 1e6 {
		t.Fatalf("speed %+v", sp)
	}
	t.Logf("SHA-256 %.0f MB/s, loopback round trip %.1f µs", sp.HashMBps, sp.LoopbackRTTus)

	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	if _, err := loopbackRTT(ctx, 0, 1_000_000); err == nil {
		t.Fatal("a cancelled probe returned no error")
	}
}
