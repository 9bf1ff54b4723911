// Package provider is the contract between walletd's provider edge
// (package providers, which serves /providers/{instance}/…) and the adapters
// that speak one game provider's wallet callback API each
// (providers/pragmatic, providers/evolution).
//
// An adapter only translates: it verifies the caller, turns one provider
// request into calls of actors.Wallets, and turns their outcomes into the
// provider's reply. Every money rule stays in the wallet domain; an adapter
// never computes a balance.
//
// The package is a leaf of providers/: the adapters import it, and the
// registry in package providers imports the adapters.
package provider

import (
	"context"
	"net/url"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/providers/sessions"
)

// Class says which rate policy (wallet-api.md) a provider method falls under.
type Class uint8

const (
	// ClassRead reads a balance.
	ClassRead Class = iota
	// ClassAuth authenticates or issues a player session (policy "auth").
	ClassAuth
	// ClassGameplay takes money from a player (policy "gameplay").
	ClassGameplay
	// ClassSettle pays or refunds money already owed. Never rate limited:
	// refusing it would keep a player's money from them.
	ClassSettle
)

func (c Class) String() string {
	switch c {
	case ClassRead:
		return "read"
	case ClassAuth:
		return "auth"
	case ClassGameplay:
		return "gameplay"
	case ClassSettle:
		return "settle"
	}
	return "unknown"
}

// Method is one call of a provider's API.
type Method struct {
	Name  string // canonical name, as the provider's documentation spells it
	Class Class
}

// Request is one provider request as the edge read it. The edge bounds the
// body; adapters see bytes, not an *http.Request, so they can be exercised
// (and fuzzed) without a network.
type Request struct {
	Body []byte
	// Oversize: the body exceeded the edge's limit and Body is empty. The
	// adapter answers with its own "bad request" reply.
	Oversize bool
	// Query is the URL's query (Evolution authenticates with one).
	Query url.Values
}

// Reply is an adapter's answer, written by the edge as JSON.
type Reply struct {
	Status int // HTTP status; provider protocols mostly want 200 whatever happened
	Body   any // marshaled with encoding/json
	// Code is the provider's own result code ("0", "OK", "INVALID_SID"), for
	// logs and metrics.
	Code string
}

// Call is a decoded, authenticated provider request.
type Call interface {
	Method() Method
	// PlayerID is the wallet the call is about ("" when the call names none).
	PlayerID() string
}

// Adapter serves one provider instance: one wire protocol (its kind) with
// one instance's secrets and policies. The edge drives it in three steps,
// so that cross-cutting concerns (body limits, rate limits, timeouts,
// access logs) live in one place:
//
//  1. Lookup resolves the last path segment to a method (false: 404).
//  2. Decode verifies the caller (signature, token) and parses the request.
//     It does no I/O. A refusal comes back as the reply to send.
//  3. Execute performs the call against the wallets and the session store
//     and returns the provider's reply. Its context carries the request's
//     values but not its cancellation: a provider hanging up must never
//     cancel a money write halfway.
//
// Refuse answers a decoded call that the edge itself refused (a rate limit:
// err's code is wallet.CodeRateLimited, or wallet.CodeUnavailable when the
// limiter could not decide) in the provider's format.
//
// Implementations must be safe for concurrent use.
type Adapter interface {
	Kind() string
	Name() string
	Lookup(segment string) (Method, bool)
	Decode(m Method, req Request) (Call, *Reply)
	Execute(ctx context.Context, c Call) Reply
	Refuse(ctx context.Context, c Call, err error) Reply
}

// Deps is what an adapter needs from the process. Adapters log through
// http.RequestLogger(ctx), so their lines carry the request id.
type Deps struct {
	Wallets  actors.Wallets
	Sessions *sessions.Manager
}
