package jsonlog

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// both runs the same logging through this handler and slog.JSONHandler at
// once (each record, with its time, goes to both) and fails if their output
// differs by a byte.
func both(t testing.TB, opts *slog.HandlerOptions, log func(*slog.Logger)) {
	t.Helper()
	var fast, want bytes.Buffer
	tee := &tee{t: t, a: New(&fast, opts), b: slog.NewJSONHandler(&want, opts)}
	log(slog.New(tee))
	if fast.String() != want.String() {
		t.Fatalf("output differs\n got: %q\nwant: %q", fast.String(), want.String())
	}
}

// tee hands everything to two handlers, which must agree on what is
// enabled.
type tee struct {
	t    testing.TB
	a, b slog.Handler
}

func (h *tee) Enabled(ctx context.Context, l slog.Level) bool {
	a, b := h.a.Enabled(ctx, l), h.b.Enabled(ctx, l)
	if a != b {
		h.t.Errorf("level %v: enabled %v, slog %v", l, a, b)
	}
	return a || b
}

func (h *tee) Handle(ctx context.Context, r slog.Record) error {
	ea, eb := h.a.Handle(ctx, r.Clone()), h.b.Handle(ctx, r.Clone())
	if (ea == nil) != (eb == nil) {
		h.t.Errorf("error %v, slog %v", ea, eb)
	}
	return ea
}

func (h *tee) WithAttrs(as []slog.Attr) slog.Handler {
	return &tee{t: h.t, a: h.a.WithAttrs(as), b: h.b.WithAttrs(as)}
}

func (h *tee) WithGroup(name string) slog.Handler {
	return &tee{t: h.t, a: h.a.WithGroup(name), b: h.b.WithGroup(name)}
}

type valuer struct{}

func (valuer) LogValue() slog.Value { return slog.StringValue("resolved") }

// Every kind of value and shape of record slog can be given, including the
// ones the fast path hands to slog: the same bytes either way.
func TestSameAsSlog(t *testing.T) {
	at := time.Date(2026, 11, 27, 10, 17, 13, 123456789, time.UTC)
	for _, tc := range []struct {
		name string
		log  func(*slog.Logger)
	}{
		{"access line", func(l *slog.Logger) {
			l.LogAttrs(context.Background(), slog.LevelInfo, "http request",
				slog.String("request_id", "01J3ZQ"), slog.String("method", "POST"), slog.String("route", "/v1/wallets/:id/bet"),
				slog.Int("status", 200), slog.Float64("duration_ms", 1.234), slog.Int64("bytes", 181), slog.String("player_id", "p-1"))
		}},
		{"no attributes", func(l *slog.Logger) { l.Info("hello") }},
		{"levels", func(l *slog.Logger) {
			for _, lv := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, slog.LevelInfo + 2, slog.LevelError + 7, -9} {
				l.Log(context.Background(), lv, "m", "k", 1)
			}
		}},
		{"escapes", func(l *slog.Logger) {
			l.Info("q\"b\\n\n\r\t\x00\x1f\x7f<>&é\u2028\u2029\xff\xc3", "k\"ey\n", "v\x01\u2028\xfe€")
		}},
		{"numbers", func(l *slog.Logger) {
			l.Info("n", "i", -42, "u", uint64(math.MaxUint64), "z", 0.0, "negz", math.Copysign(0, -1),
				"f", 1.5, "tiny", 1e-7, "small", 0.000001, "big", 1e21, "below", 999999999999999999999.0, "neg", -2.5e-9,
				"max", math.MaxFloat64, "min", math.SmallestNonzeroFloat64, "ms", float64(1234)/1000)
		}},
		{"not JSON floats", func(l *slog.Logger) { l.Info("n", "nan", math.NaN(), "inf", math.Inf(1), "ninf", math.Inf(-1)) }},
		{"other kinds", func(l *slog.Logger) {
			l.Info("k", "b", true, "d", 1500*time.Millisecond, "t", at, "tloc", at.In(time.FixedZone("X", 3600)), "tmono", time.Now().Truncate(time.Hour).Add(time.Nanosecond))
		}},
		{"years slog refuses", func(l *slog.Logger) { l.Info("y", "t", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)) }},
		{"any values", func(l *slog.Logger) {
			l.Info("a", "err", errors.New("boom"), "nil", nil, "slice", []string{"x", "y"}, "map", map[string]int{"a": 1}, "v", valuer{})
		}},
		{"groups", func(l *slog.Logger) {
			l.Info("g", slog.Group("req", "id", 1, "path", "/x"), slog.Group("empty"), "after", 2)
			l.WithGroup("s").Info("in group", "k", "v")
			l.WithGroup("s").With("a", 1).WithGroup("t").Info("nested", "k", "v")
			l.WithGroup("s").Info("no attrs")
		}},
		{"empty keys", func(l *slog.Logger) {
			l.Info("e", "", "v", slog.Attr{}, "", 0, slog.Any("", nil))
			l.With("", "x").Info("with empty")
		}},
		{"with attributes", func(l *slog.Logger) {
			w := l.With("lib", "protoactor", "n", 3)
			w.Info("one", "k", "v")
			w.With("request_id", "r1").Warn("two")
			w.With("err", errors.New("e")).Info("three", "k", 1.5)
			l.With().Info("nothing added")
		}},
		{"record time zero", func(l *slog.Logger) {
			r := slog.NewRecord(time.Time{}, slog.LevelInfo, "untimed", 0)
			r.AddAttrs(slog.String("k", "v"))
			_ = l.Handler().Handle(context.Background(), r)
			r = slog.NewRecord(at, slog.LevelWarn, "timed", 0)
			_ = l.Handler().Handle(context.Background(), r)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { both(t, nil, tc.log) })
	}
}

// The level option is honoured; AddSource and ReplaceAttr get slog's own
// handler.
func TestOptions(t *testing.T) {
	both(t, &slog.HandlerOptions{Level: slog.LevelWarn}, func(l *slog.Logger) {
		l.Info("dropped", "k", 1)
		l.Warn("kept", "k", 2)
		if l.Enabled(context.Background(), slog.LevelInfo) {
			t.Error("info enabled at warn")
		}
	})
	var lv slog.LevelVar
	lv.Set(slog.LevelError)
	both(t, &slog.HandlerOptions{Level: &lv}, func(l *slog.Logger) { l.Warn("dropped"); l.Error("kept") })
	opts := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return a }}
	if _, ok := New(io.Discard, opts).(*slog.JSONHandler); !ok {
		t.Error("ReplaceAttr: want slog's handler")
	}
	if _, ok := New(io.Discard, &slog.HandlerOptions{AddSource: true}).(*slog.JSONHandler); !ok {
		t.Error("AddSource: want slog's handler")
	}
}

// Lines from many goroutines, through the fast path and slog's, come out
// whole: one Write per line, under one lock.
func TestConcurrentLinesStayWhole(t *testing.T) {
	var w lineChecker
	l := slog.New(New(&w, nil))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if i%3 == 0 {
					l.Info("slow", "err", errors.New("e"), "g", g)
				} else {
					l.With("g", g).Info("fast", "i", i)
				}
			}
		}()
	}
	wg.Wait()
	if w.lines != 1600 || w.bad != 0 {
		t.Fatalf("%d lines, %d not a whole line", w.lines, w.bad)
	}
}

type lineChecker struct {
	mu         sync.Mutex
	busy       bool
	lines, bad int
}

func (w *lineChecker) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.busy {
		w.bad++ // two writes at once
	}
	w.busy = true
	w.mu.Unlock()
	time.Sleep(time.Microsecond)
	w.mu.Lock()
	w.busy = false
	w.lines++
	if bytes.Count(p, []byte("\n")) != 1 || p[len(p)-1] != '\n' || p[0] != '{' {
		w.bad++
	}
	w.mu.Unlock()
	return len(p), nil
}

// Random records of random values: the same bytes as slog's handler.
func TestRandomRecords(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		attrs := make([]slog.Attr, r.IntN(8))
		for i := range attrs {
			attrs[i] = randomAttr(r)
		}
		with := make([]any, 0, 4)
		for range r.IntN(3) {
			with = append(with, randomAttr(r))
		}
		msg := randomString(r)
		level := slog.Level(r.IntN(20) - 8)
		both(t, nil, func(l *slog.Logger) {
			if len(with) > 0 {
				l = l.With(with...)
			}
			l.LogAttrs(context.Background(), level, msg, attrs...)
		})
	}
}

func randomAttr(r *rand.Rand) slog.Attr {
	key := randomString(r)
	if r.IntN(20) == 0 {
		key = ""
	}
	switch r.IntN(9) {
	case 0:
		return slog.String(key, randomString(r))
	case 1:
		return slog.Int64(key, int64(r.Uint64()))
	case 2:
		return slog.Uint64(key, r.Uint64())
	case 3:
		return slog.Float64(key, math.Float64frombits(r.Uint64()))
	case 4:
		return slog.Float64(key, float64(r.IntN(1e7))/1000*math.Pow(10, float64(r.IntN(60)-30)))
	case 5:
		return slog.Bool(key, r.IntN(2) == 0)
	case 6:
		return slog.Duration(key, time.Duration(r.Int64()))
	case 7:
		return slog.Time(key, time.Unix(r.Int64N(1<<36)-1<<35, r.Int64N(1e9)).In(time.FixedZone("", (r.IntN(48)-24)*1800)))
	default:
		return slog.Any(key, errors.New(randomString(r)))
	}
}

func randomString(r *rand.Rand) string {
	const alphabet = "ab\"\\\n\r\t\x00\x1f\x7f<>&é€\u2028\u2029\xff\xc3 "
	var sb strings.Builder
	for range r.IntN(12) {
		if r.IntN(3) == 0 {
			// a single byte, possibly half of a multi-byte character
			sb.WriteByte(alphabet[r.IntN(len(alphabet))])
		} else {
			sb.WriteString(string([]rune(alphabet)[r.IntN(len([]rune(alphabet)))]))
		}
	}
	return sb.String()
}

// FuzzSameAsSlog: a message and string and float attributes of any value:
// the same bytes as slog's handler.
func FuzzSameAsSlog(f *testing.F) {
	f.Add("http request", "route", "/v1/wallets/:id/bet", 1.234)
	f.Add("q\"\n\xff\u2028", "", "\x00", math.Inf(1))
	f.Add("", "k", "v", 1e-7)
	f.Fuzz(func(t *testing.T, msg, key, val string, x float64) {
		both(t, nil, func(l *slog.Logger) {
			l.Info(msg, key, val, "x", x, key, x)
			l.With(key, val).Info(msg)
		})
	})
}

// The access line of a money request through this handler and through
// slog's (go test -bench . ./internal/jsonlog/).
func BenchmarkAccessLine(b *testing.B) {
	for _, tc := range []struct {
		name string
		h    slog.Handler
	}{
		{"jsonlog", New(io.Discard, nil)},
		{"slog", slog.NewJSONHandler(io.Discard, nil)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			l := slog.New(tc.h)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				l.LogAttrs(ctx, slog.LevelInfo, "http request",
					slog.String("request_id", "01J3ZQ8X4M2K7"), slog.String("method", "POST"), slog.String("route", "/v1/wallets/:id/bet"),
					slog.Int("status", 200), slog.Float64("duration_ms", 1.234), slog.Int64("bytes", 181), slog.String("player_id", "wb-1a2b3c4d-917"))
			}
		})
	}
}
