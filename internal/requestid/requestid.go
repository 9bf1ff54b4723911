// Package requestid carries the id of one request through its context, so
// every log line about the request (and every reply) can name it.
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"github.com/walletd/walletd/wallet"
)

// MaxLen is the longest id accepted from a caller.
const MaxLen = 128

type ctxKey struct{}

// WithID returns a copy of ctx that carries id.
func WithID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the id carried by ctx, or "" when there is none.
func FromContext(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// New returns a fresh random id: 16 random bytes in hex (32 characters).
func New() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand aborts the program if it cannot read)
	var h [32]byte  // one allocation (the string) instead of hex.EncodeToString's two
	hex.Encode(h[:], b[:])
	return string(h[:])
}

// Sane reports whether id, as sent by a caller, is safe to adopt: 1–128
// characters of [A-Za-z0-9._:@-]. Anything else (spaces, quotes, control
// characters, non-ASCII) could forge or garble log lines and is replaced.
func Sane(id string) bool {
	// The same alphabet and length as the contract's identifiers.
	return len(id) <= MaxLen && wallet.ValidID(id)
}
