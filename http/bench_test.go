package http

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/internal/jsonlog"
	"github.com/walletd/walletd/wallet"
)

// instantWallets answers every Apply at once with a fixed applied result:
// what BenchmarkServeBet measures is the HTTP layer alone.
type instantWallets struct{ res wallet.Result }

func (w instantWallets) Open(context.Context, string, wallet.Currency) (actors.View, bool, error) {
	return actors.View{}, false, nil
}
func (w instantWallets) Get(context.Context, string) (actors.View, error) { return actors.View{}, nil }
func (w instantWallets) Apply(_ context.Context, _ string, cmd wallet.Command) (wallet.Result, error) {
	r := w.res
	r.TxID, r.Kind = cmd.TxID, cmd.Kind
	return r, nil
}
func (w instantWallets) History(context.Context, string, uint64, int) ([]wallet.Event, error) {
	return nil, nil
}

// BenchmarkServeBet: walletd's HTTP layer for one bet — routing, the
// operator key, request id, decoding and validating the body, the reply, the
// access line (walletd's JSON handler, to io.Discard, at info level) and the metrics — over wallets
// that answer at once. The network and the engine are not in it.
//
//	go test -run '^$' -bench BenchmarkServeBet -benchmem ./http/
func BenchmarkServeBet(b *testing.B) {
	eur := wallet.Currency{Code: "EUR", Minor: 2}
	amt, _ := wallet.ParseAmount("1.50", eur)
	bal, _ := wallet.ParseAmount("98.50", eur)
	w := instantWallets{res: wallet.Result{Amount: amt, Balance: bal, Version: 7, Outcome: wallet.OutcomeApplied, Currency: eur,
		At: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}}
	srv := NewServer(Config{
		APIKeys:  []string{testKey},
		Registry: prometheus.NewRegistry(),
		Logger:   slog.New(jsonlog.New(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Version:  "bench",
	}, w)
	h := srv.Handler()
	body := `{"tx_id":"bet-000000000000000000001","round_id":"round-0000000000000001","game_id":"g1","amount":"1.50","currency":"EUR"}`
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r := httptest.NewRequest("POST", "/v1/wallets/p-0001/bet", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+testKey)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}
