package pending

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestReply(t *testing.T) {
	now := time.Now()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	boom := errors.New("boom")
	var got []error
	for _, tc := range []struct {
		name string
		r    Reply
		gone error
	}{
		{"waiting caller still there", Waiting(context.Background()), nil},
		{"waiting caller gave up", Waiting(cancelled), context.Canceled},
		{"callback before its deadline", Callback(now.Add(time.Second), func(err error) { got = append(got, err) }), nil},
		{"callback past its deadline", Callback(now.Add(-time.Second), func(err error) { got = append(got, err) }), context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.r.Gone(now); !errors.Is(err, tc.gone) || (tc.gone == nil) != (err == nil) {
				t.Fatalf("Gone: %v, want %v", err, tc.gone)
			}
			got = nil
			tc.r.Send(boom)
			if tc.r.Done() != nil {
				if err := <-tc.r.Done(); err != boom {
					t.Fatalf("Done delivered %v", err)
				}
				return
			}
			if len(got) != 1 || got[0] != boom {
				t.Fatalf("callback got %v", got)
			}
		})
	}
}
