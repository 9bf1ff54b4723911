package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	wallethttp "github.com/walletd/walletd/http"
	"github.com/walletd/walletd/providers/provider"
	"github.com/walletd/walletd/providers/sessions"
	"github.com/walletd/walletd/wallet"
)

// launchRequest is the body of POST /v1/sessions.
type launchRequest struct {
	PlayerID string `json:"player_id"`
	Provider string `json:"provider"`
	GameID   string `json:"game_id"`
}

// launchReply is its 201 reply. The token is the Pragmatic `token` or the
// Evolution `sid` of the game launch.
type launchReply struct {
	Token     string `json:"token"`
	PlayerID  string `json:"player_id"`
	Provider  string `json:"provider"`
	GameID    string `json:"game_id,omitempty"`
	ExpiresAt string `json:"expires_at"`
}

// launch: POST /v1/sessions {"player_id","provider","game_id"?} → 201.
// The server's Mount has checked the operator key.
func (e *edge) launch(w http.ResponseWriter, r *http.Request) {
	req, err := decodeStrict(w, r, e.cfg.MaxBodyBytes)
	if err != nil {
		e.fail(w, r, err)
		return
	}
	switch {
	case !wallet.ValidID(req.PlayerID):
		e.fail(w, r, wallet.Errorf(wallet.CodeBadRequest, "player_id must be 1-128 characters of [A-Za-z0-9._:@-]"))
		return
	case req.GameID != "" && !wallet.ValidID(req.GameID):
		e.fail(w, r, wallet.Errorf(wallet.CodeBadRequest, "game_id must be 1-128 characters of [A-Za-z0-9._:@-]"))
		return
	}
	wallethttp.SetPlayerID(r.Context(), req.PlayerID)
	if _, ok := e.byName[req.Provider]; !ok {
		e.fail(w, r, wallet.Errorf(wallet.CodeBadRequest, "provider %q is not a configured provider instance", clip(req.Provider, 64)))
		return
	}
	if err := e.allow(r, provider.ClassAuth, req.PlayerID); err != nil {
		e.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), e.cfg.RequestTimeout)
	defer cancel()
	if _, err := e.deps.Wallets.Get(ctx, req.PlayerID); err != nil {
		e.fail(w, r, err)
		return
	}
	token, s, err := e.deps.Sessions.Launch(ctx, req.PlayerID, req.Provider, req.GameID)
	if err != nil {
		wallethttp.RequestLogger(r.Context()).Warn("session store failed", "err", err)
		e.fail(w, r, wallet.Errorf(wallet.CodeUnavailable, "the session store does not answer; retry"))
		return
	}
	wallethttp.RequestLogger(r.Context()).Info("session launched", "player_id", req.PlayerID, "provider", req.Provider,
		"token", sessions.Fingerprint(token), "expires_at", s.ExpiresAt)
	writeJSON(w, http.StatusCreated, launchReply{
		Token: token, PlayerID: s.PlayerID, Provider: s.Provider, GameID: s.GameID,
		ExpiresAt: s.ExpiresAt.UTC().Format(time.RFC3339Nano),
	})
}

// statusOf maps the codes /v1/sessions answers to HTTP statuses, as the
// contract does (wallet-api.md).
var statusOf = map[wallet.Code]int{
	wallet.CodeBadRequest:     http.StatusBadRequest,
	wallet.CodeWalletNotFound: http.StatusNotFound,
	wallet.CodeRateLimited:    http.StatusTooManyRequests,
	wallet.CodeUnavailable:    http.StatusServiceUnavailable,
}

// fail answers err in the contract's error JSON; anything unexpected is an
// internal error whose cause is logged, never sent.
func (e *edge) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := wallet.ErrorCode(err), wallet.ErrorMessage(err)
	status, known := statusOf[code]
	if !known {
		wallethttp.RequestLogger(r.Context()).Error("internal error", "err", err)
		code, msg, status = wallet.CodeInternal, "internal error", http.StatusInternalServerError
	}
	if code == wallet.CodeRateLimited {
		var ra interface{ RetryAfter() time.Duration }
		if errors.As(err, &ra) && ra.RetryAfter() > time.Second {
			w.Header().Set("Retry-After", strconv.Itoa(int(min(math.Ceil(ra.RetryAfter().Seconds()), 86400))))
		}
	}
	writeError(w, status, code, msg)
}

// decodeStrict reads the launch body as the rest of the /v1 API reads
// bodies: one JSON object, no unknown fields, bounded.
func decodeStrict(w http.ResponseWriter, r *http.Request, limit int64) (launchRequest, error) {
	var req launchRequest
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return req, wallet.Errorf(wallet.CodeBadRequest, "the body is too large or unreadable (limit %d bytes)", limit)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, wallet.Errorf(wallet.CodeBadRequest, "the body must be a JSON object {\"player_id\",\"provider\",\"game_id\"?}: %s", clip(err.Error(), 200))
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, wallet.Errorf(wallet.CodeBadRequest, "the body must hold exactly one JSON object")
	}
	return req, nil
}
