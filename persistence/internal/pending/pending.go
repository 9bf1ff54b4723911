// Package pending is how a store's writer answers a queued write: the caller
// of Append waits on a channel, while an actor's AppendAsync gets a callback
// and waits for nothing. Both stores' writers use it.
package pending

import (
	"context"
	"time"
)

// Reply is the way back to whoever queued one write.
type Reply struct {
	ctx      context.Context // a waiting caller's; nil for a callback
	deadline time.Time       // a callback's
	done     chan error
	callback func(error)
}

// Waiting is the reply to a caller that waits (Done) while ctx lasts.
func Waiting(ctx context.Context) Reply {
	return Reply{ctx: ctx, done: make(chan error, 1)} // buffered: the writer never waits for the caller
}

// Callback is the reply to a caller that is called back with fn, and that
// wants the write only if a batch takes it by deadline.
func Callback(deadline time.Time, fn func(error)) Reply {
	return Reply{deadline: deadline, callback: fn}
}

// Done delivers the outcome to a waiting caller.
func (r *Reply) Done() <-chan error { return r.done }

// Gone reports why the write should no longer be written, if it should not:
// its caller gave up, or its deadline passed.
func (r *Reply) Gone(now time.Time) error {
	if r.ctx != nil {
		return r.ctx.Err()
	}
	if now.After(r.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// Send hands over the outcome; the writer calls it exactly once.
func (r *Reply) Send(err error) {
	if r.callback != nil {
		r.callback(err)
		return
	}
	r.done <- err
}
