package http

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/walletd/walletd/internal/requestid"
	"github.com/walletd/walletd/wallet"
)

// reqInfo is what the access line and the metrics learn while a request is
// served. Only the goroutine serving the request touches it.
type reqInfo struct {
	route    string      // the router pattern; "" for no route
	playerID string      // a valid player id the request is about
	code     wallet.Code // the error code answered, if any
	id       string      // the request id
	base     *slog.Logger
	logger   *slog.Logger   // base with the request id; made on first use
	proxies  []netip.Prefix // Config.TrustedProxies, for ClientIP
}

// log returns the request's logger. Most requests log only their access
// line, which adds the id itself, so the logger is made when asked for.
func (info *reqInfo) log() *slog.Logger {
	if info.logger == nil {
		info.logger = info.base.With(slog.String("request_id", info.id))
	}
	return info.logger
}

type infoKey struct{}

func infoFrom(ctx context.Context) *reqInfo {
	info, _ := ctx.Value(infoKey{}).(*reqInfo)
	return info
}

// RequestLogger returns the logger of the request served with ctx: the
// server's logger with the request's request_id. Outside a request it
// returns a logger that discards everything.
func RequestLogger(ctx context.Context) *slog.Logger {
	if info := infoFrom(ctx); info != nil {
		return info.log()
	}
	return slog.New(slog.DiscardHandler)
}

// SetPlayerID names the player a request is about in its access line.
// Handlers mounted with Mount call it once they have a valid player id;
// call it only from the goroutine serving the request.
func SetPlayerID(ctx context.Context, playerID string) {
	if info := infoFrom(ctx); info != nil && wallet.ValidID(playerID) {
		info.playerID = playerID
	}
}

// serveHTTP wraps the router: it adopts or makes the request id, recovers
// from panics, and writes the access line and the metrics.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := r.Header.Get("X-Request-ID")
	if !requestid.Sane(id) {
		id = requestid.New()
	}
	w.Header().Set("X-Request-ID", id)
	info := &reqInfo{id: id, base: s.logger, proxies: s.cfg.TrustedProxies}
	r = r.WithContext(context.WithValue(requestid.WithID(r.Context(), id), infoKey{}, info))
	sw := &statusWriter{ResponseWriter: w}

	defer func() {
		p := recover()
		if p != nil && p != http.ErrAbortHandler {
			info.log().Error("panic serving request", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if !sw.wroteHeader {
				s.writeError(sw, r, fmt.Errorf("panic: %v", p))
				p = nil
			} else {
				// Part of the reply is out: abort the connection so the
				// client cannot take it for a whole one.
				p = http.ErrAbortHandler
			}
		}
		s.finish(sw, r, info, start)
		if p != nil {
			panic(p)
		}
	}()
	s.router.ServeHTTP(sw, r)
}

// finish writes the access line and the metrics of one request. The line's
// record is made here rather than by Logger.LogAttrs, which also records
// the caller's program counter (a stack walk per request that no handler
// of walletd's uses) and takes its attributes as a slice that escapes.
func (s *Server) finish(sw *statusWriter, r *http.Request, info *reqInfo, start time.Time) {
	now := time.Now()
	elapsed := now.Sub(start)
	status := sw.status
	if status == 0 {
		status = http.StatusOK // nothing written: net/http answers 200
	}
	route := info.route
	if route == "" {
		route = "unmatched"
	}
	method := methodLabel(r.Method)
	s.metrics.observe(route, method, status, elapsed)

	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelWarn
	}
	h := s.logger.Handler()
	if !h.Enabled(r.Context(), level) {
		return
	}
	rec := slog.NewRecord(now, level, "http request", 0)
	rec.AddAttrs(
		slog.String("request_id", info.id),
		slog.String("method", method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.Int64("bytes", sw.bytes),
	)
	if info.route == "" {
		rec.AddAttrs(slog.String("path", clip(r.URL.Path, 200)))
	}
	if info.playerID != "" {
		rec.AddAttrs(slog.String("player_id", info.playerID))
	}
	if info.code != "" {
		rec.AddAttrs(slog.String("code", string(info.code)))
	}
	_ = h.Handle(r.Context(), rec) // as Logger does: a failing log output fails no request
}

// methodLabel keeps the method label of metrics and logs to a fixed set.
func methodLabel(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE":
		return m
	}
	return "OTHER"
}

// authorized reports whether r carries one of the operator keys. The keys
// are compared as SHA-256 digests in constant time, each of them, so neither
// the timing nor an early exit tells which key (or how much of one) matched.
func (s *Server) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	token = strings.TrimSpace(token)
	sum := sha256.Sum256([]byte(token))
	match := 0
	for i := range s.keys {
		match |= subtle.ConstantTimeCompare(sum[:], s.keys[i][:])
	}
	return match == 1 && token != ""
}

// statusWriter records the status and size of a reply.
type statusWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader && code >= 200 {
		w.status = code
		w.wroteHeader = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes flushes through (promhttp and streaming handlers use it).
func (w *statusWriter) Flush() {
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
