package bench

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
)

// DropEvery is a deliberately broken server: a reverse proxy in front of a
// real one that, for every nth money write, answers 200 with a plausible
// success reply and never forwards the request — an acknowledged write that
// is lost. It exists to prove that the harness's correctness check catches
// lost money: a run through it must report discrepancies and fail.
type DropEvery struct {
	N       int
	backend *httputil.ReverseProxy
	writes  atomic.Int64
	dropped atomic.Int64
}

// NewDropEvery returns the proxy to target (a base URL).
func NewDropEvery(target string, n int) (*DropEvery, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	return &DropEvery{N: n, backend: httputil.NewSingleHostReverseProxy(u)}, nil
}

// Dropped is the number of writes answered and never forwarded.
func (d *DropEvery) Dropped() int64 { return d.dropped.Load() }

func (d *DropEvery) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind := ""
	if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/wallets/") {
		// The generic API's money endpoints.
		switch k := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]; k {
		case "deposit", "withdraw", "bet", "win", "rollback":
			kind = k
		}
	}
	if kind == "" || d.writes.Add(1)%int64(d.N) != 0 {
		d.backend.ServeHTTP(w, r)
		return
	}
	d.dropped.Add(1)
	body, _ := io.ReadAll(r.Body)
	var req struct {
		TxID   string          `json:"tx_id"`
		Amount json.RawMessage `json:"amount"`
	}
	_ = json.Unmarshal(body, &req)
	player := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/wallets/"), "/"+kind)
	amount := strings.Trim(string(req.Amount), `"`)
	if amount == "" {
		amount = "0.00"
	}
	reply, _ := json.Marshal(map[string]any{
		"tx_id": req.TxID, "player_id": player, "kind": kind, "amount": amount,
		"balance": "0.00", "version": d.writes.Load(), "duplicate": false,
	})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(bytes.TrimSpace(reply))
}
