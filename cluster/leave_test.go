package cluster

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	pcluster "github.com/asynkron/protoactor-go/cluster"
)

// Close bounds the leave and the teardown after it differently: a leave
// that does not finish in time is an error, a teardown of remoting that
// does not (the member already left) only a warning. Either way it returns
// when the shutdown time runs out: a step that hangs here never ends until
// the test lets it, so waiting for it would hang the test.
func TestLeaveWithin(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		leaveHangs, stopHang bool
		wantErr, wantWarn    bool
		wantStopRun          bool
	}{
		{"both finish", false, false, false, false, true},
		{"teardown hangs after leaving", false, true, false, true, true},
		{"leave hangs", true, false, true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs syncBuffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			release := make(chan struct{})
			defer close(release)
			step := func(hangs bool) {
				if hangs {
					<-release
				}
			}
			stopStarted := make(chan struct{})
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			err := leaveWithin(ctx, log,
				func() { step(tc.leaveHangs) },
				func() { close(stopStarted); step(tc.stopHang) })
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if warned := strings.Contains(logs.String(), "remoting had not stopped"); warned != tc.wantWarn {
				t.Fatalf("warned %v, want %v; log: %s", warned, tc.wantWarn, logs.String())
			}
			select {
			case <-stopStarted:
				if !tc.wantStopRun {
					t.Fatal("remoting was stopped before the leave finished")
				}
			default:
				if tc.wantStopRun {
					t.Fatal("remoting was never stopped")
				}
			}
		})
	}
}

// fakeProvider is a membership provider whose Shutdown returns err, or
// blocks until release is closed.
type fakeProvider struct {
	err     error
	release chan struct{} // nil: Shutdown returns at once
}

func (p *fakeProvider) StartMember(*pcluster.Cluster) error { return nil }
func (p *fakeProvider) StartClient(*pcluster.Cluster) error { return nil }
func (p *fakeProvider) Shutdown(bool) error {
	if p.release != nil {
		<-p.release
	}
	return p.err
}

// A deregistration that cannot finish (etcd unreachable) is given up after
// the wait, so the leave goes on; one that finishes reports its outcome.
func TestDeregister(t *testing.T) {
	refused := errors.New("etcdserver: permission denied")
	for _, tc := range []struct {
		name    string
		p       *fakeProvider
		wantErr string // "" for none
	}{
		{"deregistered", &fakeProvider{}, ""},
		{"the provider refused", &fakeProvider{err: refused}, "permission denied"},
		{"the provider hangs", &fakeProvider{release: make(chan struct{})}, "still not deregistered after 50ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.p.release != nil {
				defer close(tc.p.release)
			}
			err := deregister(tc.p, 50*time.Millisecond)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("err %v, want none", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err %v, want one saying %q", err, tc.wantErr)
			}
		})
	}
}
