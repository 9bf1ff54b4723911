package logwriter

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink records each Write call it receives.
type sink struct {
	mu     sync.Mutex
	writes []string
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes = append(s.writes, string(p))
	return len(p), nil
}

func (s *sink) all() (n int, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.writes), strings.Join(s.writes, "")
}

func TestWriter(t *testing.T) {
	for _, tc := range []struct {
		name      string
		lines     []string
		limit     int
		action    func(*Writer)
		wantCalls int // writes reaching the output after action
		want      string
	}{
		{name: "held until flushed", lines: []string{"a\n", "b\n"}, limit: 1 << 10, action: func(*Writer) {}, wantCalls: 0, want: ""},
		{name: "flush writes all held lines at once", lines: []string{"a\n", "b\n", "c\n"}, limit: 1 << 10,
			action: func(w *Writer) { w.Flush() }, wantCalls: 1, want: "a\nb\nc\n"},
		{name: "limit flushes", lines: []string{"aaaa\n", "bbbb\n", "c\n"}, limit: 8,
			action: func(*Writer) {}, wantCalls: 1, want: "aaaa\nbbbb\n"},
		{name: "close flushes and writes through after", lines: []string{"a\n"}, limit: 1 << 10,
			action: func(w *Writer) { w.Close(); w.Write([]byte("late\n")) }, wantCalls: 2, want: "a\nlate\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := &sink{}
			w := New(out, time.Hour, tc.limit)
			defer w.Close()
			for _, l := range tc.lines {
				if n, err := w.Write([]byte(l)); n != len(l) || err != nil {
					t.Fatalf("write %q: %d %v", l, n, err)
				}
			}
			tc.action(w)
			if n, text := out.all(); n != tc.wantCalls || text != tc.want {
				t.Fatalf("output: %d writes %q, want %d writes %q", n, text, tc.wantCalls, tc.want)
			}
		})
	}
}

func TestWriterFlushesOnItsOwn(t *testing.T) {
	out := &sink{}
	w := New(out, 5*time.Millisecond, 1<<10)
	defer w.Close()
	w.Write([]byte("line\n"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, text := out.all(); text == "line\n" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the held line was never flushed by the interval")
		}
		time.Sleep(time.Millisecond)
	}
}

// Lines from many goroutines come out whole and, per goroutine, in order.
func TestWriterConcurrent(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	w := New(writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) }), time.Millisecond, 64)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				fmt.Fprintf(w, "g%d %d\n", g, i)
			}
		}()
	}
	wg.Wait()
	w.Close()
	next := make(map[string]int)
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 8*500 {
		t.Fatalf("%d lines, want %d", len(lines), 8*500)
	}
	for _, l := range lines {
		var g string
		var i int
		if _, err := fmt.Sscanf(l, "%s %d", &g, &i); err != nil || next[g] != i {
			t.Fatalf("line %q: out of order or torn (want %s %d)", l, g, next[g])
		}
		next[g]++
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestHandlerFlushesWarnings(t *testing.T) {
	for _, tc := range []struct {
		level   slog.Level
		flushed bool
	}{
		{slog.LevelDebug, false}, {slog.LevelInfo, false}, {slog.LevelWarn, true}, {slog.LevelError, true},
	} {
		t.Run(tc.level.String(), func(t *testing.T) {
			out := &sink{}
			w := New(out, time.Hour, 1<<10)
			defer w.Close()
			log := slog.New(Handler{Handler: slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}), W: w}).
				With("request_id", "r1").WithGroup("g")
			log.Log(context.Background(), tc.level, "hello", "k", "v")
			_, text := out.all()
			if got := text != ""; got != tc.flushed {
				t.Fatalf("flushed %v, want %v (output %q)", got, tc.flushed, text)
			}
			if tc.flushed && !strings.Contains(text, `"request_id":"r1","g":{"k":"v"}`) {
				t.Fatalf("attrs lost through the wrapper: %s", text)
			}
		})
	}
}

// NewLogger: JSON lines at its level, info held until Close, a warning
// written at once with what was held before it.
func TestNewLogger(t *testing.T) {
	out := &sink{}
	log, w := NewLogger(out, slog.LevelInfo)
	log.Debug("dropped")
	log.Info("held", "n", 1, "ms", 1.5)
	if n, _ := out.all(); n != 0 {
		t.Fatalf("%d writes before any flush", n)
	}
	log.With("request_id", "r1").Warn("at once")
	n, text := out.all()
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if n != 1 || len(lines) != 2 || !strings.Contains(lines[0], `"level":"INFO","msg":"held","n":1,"ms":1.5}`) ||
		!strings.Contains(lines[1], `"level":"WARN","msg":"at once","request_id":"r1"}`) {
		t.Fatalf("%d writes: %q", n, text)
	}
	log.Info("last")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, text := out.all(); !strings.HasSuffix(text, `"msg":"last"}`+"\n") || strings.Contains(text, "dropped") {
		t.Fatalf("after Close: %q", text)
	}
}
