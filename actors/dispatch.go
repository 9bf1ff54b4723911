package actors

import (
	"runtime"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// workers is the dispatcher of the local engine's wallet actors: it runs
// mailboxes on long-lived goroutines. Proto.Actor's default starts a new
// goroutine each time a mailbox gets messages; its stack starts small and a
// wallet decision (decimal arithmetic, a few calls deep) grew it again every
// time: about 6% of the server's CPU went to copying stacks under load. A
// worker's stack stays grown. Wallet actors never block in Receive, so a
// few workers per core keep up; when all are busy a mailbox gets a goroutine
// of its own as before, so nothing ever waits for a worker.
type workers struct {
	throughput int
	mu         sync.RWMutex // Schedule (read) against close (write)
	closed     bool
	work       chan func()
	done       sync.WaitGroup
}

var _ actor.Dispatcher = (*workers)(nil)

func newWorkers(throughput int) *workers {
	n := max(4, 2*runtime.GOMAXPROCS(0))
	d := &workers{throughput: throughput, work: make(chan func(), 64*n)}
	d.done.Add(n)
	for range n {
		go func() {
			defer d.done.Done()
			for fn := range d.work {
				fn()
			}
		}()
	}
	return d
}

// Schedule implements actor.Dispatcher.
func (d *workers) Schedule(fn func()) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if !d.closed {
		select {
		case d.work <- fn:
			return
		default:
		}
	}
	go fn()
}

// Throughput implements actor.Dispatcher: messages a mailbox processes
// before it lets other mailboxes run.
func (d *workers) Throughput() int { return d.throughput }

// close stops the workers once they have run what was scheduled; later
// mailboxes get goroutines of their own.
func (d *workers) close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	close(d.work)
	d.mu.Unlock()
	d.done.Wait()
}
