package http

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/walletd/walletd/wallet"
)

// Codes of the HTTP layer itself, for requests that reach no endpoint.
const (
	codeNotFound         wallet.Code = "NOT_FOUND"
	codeMethodNotAllowed wallet.Code = "METHOD_NOT_ALLOWED"
)

// statusOf is the one map from error code to HTTP status (wallet-api.md).
// A code missing here is answered as an internal error.
var statusOf = map[wallet.Code]int{
	wallet.CodeBadRequest:        http.StatusBadRequest,
	wallet.CodeInvalidAmount:     http.StatusBadRequest,
	wallet.CodeUnauthorized:      http.StatusUnauthorized,
	wallet.CodeWalletNotFound:    http.StatusNotFound,
	wallet.CodeBetNotFound:       http.StatusNotFound,
	wallet.CodeTxConflict:        http.StatusConflict,
	wallet.CodeBetRolledBack:     http.StatusConflict,
	wallet.CodeBetAlreadySettled: http.StatusConflict,
	wallet.CodeCurrencyMismatch:  http.StatusUnprocessableEntity,
	wallet.CodeInsufficientFunds: http.StatusUnprocessableEntity,
	wallet.CodeRateLimited:       http.StatusTooManyRequests,
	wallet.CodeUnavailable:       http.StatusServiceUnavailable,
	wallet.CodeInternal:          http.StatusInternalServerError,
	codeNotFound:                 http.StatusNotFound,
	codeMethodNotAllowed:         http.StatusMethodNotAllowed,
}

var errUnauthorized = wallet.Errorf(wallet.CodeUnauthorized, "missing or wrong operator key: send Authorization: Bearer <key>")

// httpError is a domain error answered with a transport status other than
// its code's (413 or 415 for a BAD_REQUEST body).
type httpError struct {
	status int
	err    *wallet.Error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func badRequest(format string, args ...any) error {
	return wallet.Errorf(wallet.CodeBadRequest, format, args...)
}

// errorBody is the contract's error JSON.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    wallet.Code `json:"code"`
	Message string      `json:"message"`
}

// writeError answers err as the contract's error JSON. Anything that is not
// a *wallet.Error is an internal error: its cause is logged, never sent. A
// deadline from the wallets is UNAVAILABLE (retry with the same tx_id).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := wallet.ErrorCode(err), wallet.ErrorMessage(err)
	if code == wallet.CodeInternal && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		code, msg = wallet.CodeUnavailable, "the wallet did not answer in time; retry with the same tx_id"
	}
	status, known := statusOf[code]
	var he *httpError
	if errors.As(err, &he) {
		status = he.status
	}
	if !known || code == wallet.CodeInternal {
		RequestLogger(r.Context()).Error("internal error", "err", err)
		code, msg, status = wallet.CodeInternal, "internal error", http.StatusInternalServerError
	}
	if code == wallet.CodeUnavailable || code == wallet.CodeRateLimited {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter(err)))
	}
	if info := infoFrom(r.Context()); info != nil {
		info.code = code
	}
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: msg}})
}

// retryAfter is the number of seconds a client should wait: 1, unless err
// (a rate limiter's, say) says more with a RetryAfter method.
func retryAfter(err error) int {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		if d := ra.RetryAfter(); d > time.Second {
			return int(min(math.Ceil(d.Seconds()), 86400))
		}
	}
	return 1
}

// writeJSON writes v as the reply with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own reply types are marshaled; this cannot happen.
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"INTERNAL","message":"internal error"}}`)
	}
	writeJSONBytes(w, status, b)
}

// The reply headers every JSON answer carries, shared (net/http only reads
// them): setting them one by one allocated on every request.
var (
	jsonContentType = []string{"application/json; charset=utf-8"}
	noStore         = []string{"no-store"}
	noSniff         = []string{"nosniff"}
)

// writeJSONBytes answers with the JSON document b (and a newline).
func writeJSONBytes(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(b) + 1)}
	h["Cache-Control"] = noStore
	h["X-Content-Type-Options"] = noSniff
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// handleNotFound answers a path that is no route.
func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, wallet.Errorf(codeNotFound, "no endpoint %s %s", clip(r.Method, 16), clip(r.URL.Path, 200)))
}

// handleMethodNotAllowed answers a route asked with the wrong method; the
// router has set the Allow header.
func (s *Server) handleMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, wallet.Errorf(codeMethodNotAllowed, "method %s is not allowed here (allowed: %s)", clip(r.Method, 16), w.Header().Get("Allow")))
}

// clip shortens caller-supplied text quoted in messages and logs.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
