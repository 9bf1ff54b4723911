// Package logwriter batches log lines into few writes. Under load walletd
// writes an access line per request; written one by one they cost a write
// system call each, about 5% of the server's CPU in the benchmark. A Writer
// holds lines for at most a flush interval, and a Handler flushes at once
// after a warning or an error, so what explains trouble is never held back.
package logwriter

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/walletd/walletd/internal/jsonlog"
)

// FlushEvery bounds how long a line waits in a NewLogger's buffer: a kill -9
// loses at most this much of the access log.
const FlushEvery = 100 * time.Millisecond

// NewLogger returns the logger walletd writes with, and its Writer: JSON
// lines (jsonlog, the same bytes as slog's JSON handler) at level, held up to
// FlushEvery or 64 KiB and written to out together, warnings and errors at
// once. Close the Writer when done: it writes what is held.
func NewLogger(out io.Writer, level slog.Leveler) (*slog.Logger, *Writer) {
	w := New(out, FlushEvery, 64<<10)
	return slog.New(Handler{Handler: jsonlog.New(w, &slog.HandlerOptions{Level: level}), W: w}), w
}

// Writer buffers writes to an io.Writer and flushes them every interval, when
// the buffer reaches its limit, on Flush and on Close. Writes are whole log
// lines (slog's handlers write each record with one Write), so a flush never
// splits one. Safe for concurrent use.
type Writer struct {
	out   io.Writer
	limit int

	mu     sync.Mutex // guards buf and closed
	buf    []byte
	spare  []byte
	closed bool

	outMu sync.Mutex // serializes writes to out, in order

	stop chan struct{}
	done chan struct{}
}

// New returns a Writer to out that flushes at least every interval and
// whenever limit bytes are held.
func New(out io.Writer, interval time.Duration, limit int) *Writer {
	w := &Writer{out: out, limit: limit, buf: make([]byte, 0, limit), spare: make([]byte, 0, limit),
		stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop(interval)
	return w
}

func (w *Writer) loop(interval time.Duration) {
	defer close(w.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = w.Flush() // a failing output fails the next write as well
		case <-w.stop:
			return
		}
	}
}

// Write holds p for the next flush. After Close it writes through.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		w.outMu.Lock()
		defer w.outMu.Unlock()
		return w.out.Write(p)
	}
	w.buf = append(w.buf, p...)
	full := len(w.buf) >= w.limit
	w.mu.Unlock()
	if full {
		if err := w.Flush(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Flush writes out everything held. Writers are not blocked meanwhile: the
// held lines are swapped for an empty buffer first.
func (w *Writer) Flush() error {
	w.outMu.Lock()
	defer w.outMu.Unlock()
	w.mu.Lock()
	out := w.buf
	w.buf, w.spare = w.spare[:0], nil
	w.mu.Unlock()
	var err error
	if len(out) > 0 {
		_, err = w.out.Write(out)
	}
	if cap(out) > 4*w.limit { // a huge line's buffer is not kept
		out = make([]byte, 0, w.limit)
	}
	w.mu.Lock()
	w.spare = out[:0]
	w.mu.Unlock()
	return err
}

// Close flushes and stops the background flushing; later writes go straight
// to the output.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	<-w.done
	return w.Flush()
}

// Handler wraps a slog.Handler that writes to a Writer: records at Warn and
// above are flushed as soon as they are written.
type Handler struct {
	slog.Handler
	W *Writer
}

// Handle implements slog.Handler.
func (h Handler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		if ferr := h.W.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

// WithAttrs implements slog.Handler.
func (h Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return Handler{Handler: h.Handler.WithAttrs(as), W: h.W}
}

// WithGroup implements slog.Handler.
func (h Handler) WithGroup(name string) slog.Handler {
	return Handler{Handler: h.Handler.WithGroup(name), W: h.W}
}
