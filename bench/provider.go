package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/walletd/walletd/providers/evolution"
	"github.com/walletd/walletd/providers/pragmatic"
	"github.com/walletd/walletd/providers/sim"
)

// Wire formats of RunProvider.
const (
	FormatGeneric   = "generic"
	FormatPragmatic = pragmatic.Kind
	FormatEvolution = evolution.Kind
)

// ProviderSpec is a load run in a game provider's wire format. The
// simulator (providers/sim) plays the rounds — signed requests, sessions,
// retries of the same reference, refunds and cancels — and checks every
// reply and every final balance against its own ledger; the harness times
// each provider request and reports it like any other run.
type ProviderSpec struct {
	Target Target
	// Format is pragmatic or evolution; Instance the provider instance
	// walletd serves it as (default: the format's name, which is what
	// WALLET_PRAGMATIC_SECRET and WALLET_EVOLUTION_AUTH_TOKEN configure).
	Format   string
	Instance string
	// Secret is the Pragmatic secret key or the Evolution authToken.
	Secret string
	// Users: players, each a wallet of its own played by one goroutine.
	Users int
	// Rounds per player; WarmupRounds are played first on other wallets
	// and left out of the figures.
	Rounds       int
	WarmupRounds int
	// RetryRate: the simulator's share of requests resent with the same
	// reference (0: its default, 0.2; negative: none).
	RetryRate float64
	Seed      uint64
	CPU       *CPUProbe
}

// RunProvider plays spec with the simulator and returns its figures. The
// simulator's ledger mismatches are the run's discrepancies.
func RunProvider(ctx context.Context, spec ProviderSpec) (Result, error) {
	if spec.Users <= 0 || spec.Rounds <= 0 {
		return Result{}, errors.New("bench: provider runs need users and rounds")
	}
	prov := sim.Provider{Instance: spec.Instance, Kind: spec.Format}
	if prov.Instance == "" {
		prov.Instance = spec.Format
	}
	switch spec.Format {
	case FormatPragmatic:
		prov.Secret = spec.Secret
	case FormatEvolution:
		prov.AuthToken = spec.Secret
	default:
		return Result{}, fmt.Errorf("bench: wire format %q: want %s or %s", spec.Format, FormatPragmatic, FormatEvolution)
	}
	rec := &recorder{base: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2*spec.Users + 16,
		MaxIdleConnsPerHost: 2*spec.Users + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}, codes: map[string]int64{}}
	defer rec.base.CloseIdleConnections()
	cfg := sim.Config{
		BaseURL: spec.Target.URL, APIKey: spec.Target.APIKey, Providers: []sim.Provider{prov},
		Players: spec.Users, RetryRate: spec.RetryRate, Seed: spec.Seed,
		Client: &http.Client{Timeout: 30 * time.Second, Transport: rec},
	}
	if spec.WarmupRounds > 0 {
		warm := cfg
		warm.Rounds, warm.RunID = spec.WarmupRounds, "warm"+runTag()
		if _, err := sim.Run(ctx, warm); err != nil {
			return Result{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	var cpu0 CPUSample
	if spec.CPU != nil {
		cpu0 = spec.CPU.Sample()
	}
	rec.begin(time.Now())
	cfg.Rounds, cfg.RunID = spec.Rounds, runTag()
	rep, err := sim.Run(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	samples, codes, window := rec.end()
	if len(samples) == 0 && len(rep.Mismatches) > 0 {
		return Result{}, fmt.Errorf("no provider request was served: %s", rep.Mismatches[0])
	}
	res := summarize(samples, window)
	res.System, res.Scenario, res.Users, res.Wallets = spec.Target.System, spec.Format+"-rounds", spec.Users, spec.Users
	res.Mode, res.Format, res.Skew = "closed", spec.Format, "one wallet per player"
	res.Mix = fmt.Sprintf("simulator rounds (%d per player, retry rate %g)", spec.Rounds, spec.RetryRate)
	if spec.CPU != nil {
		u := spec.CPU.Sample().Sub(cpu0)
		res.CPU = &u
	}
	if len(codes) > 0 {
		res.ErrorCodes = codes
	}
	res.Checked = true
	res.CheckedWallets = spec.Users
	res.Discrepancies = rep.MismatchCount
	for _, m := range rep.Mismatches[:min(len(rep.Mismatches), 20)] {
		res.DiscrepancyDetails = append(res.DiscrepancyDetails, Discrepancy{Kind: "simulator", Detail: m})
	}
	return res, nil
}

// recorder times the provider requests (/providers/…) that pass through
// it, from sending to the last byte of the reply; the simulator's operator
// calls (wallets, deposits, sessions, the final balance reads) are setup.
type recorder struct {
	base    *http.Transport
	mu      sync.Mutex
	on      bool
	start   time.Time
	last    time.Time
	samples []sample
	codes   map[string]int64
}

func (r *recorder) begin(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on, r.start, r.last, r.samples = true, t, t, nil
}

func (r *recorder) end() ([]sample, map[string]int64, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on = false
	return r.samples, r.codes, r.last.Sub(r.start)
}

func (r *recorder) add(t0 time.Time, ok bool, code string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.on {
		return
	}
	r.samples = append(r.samples, sample{at: t0.Sub(r.start), lat: now.Sub(t0), ok: ok})
	if now.After(r.last) {
		r.last = now
	}
	if !ok {
		r.codes[code]++
	}
}

// RoundTrip implements http.RoundTripper.
func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.HasPrefix(req.URL.Path, "/providers/") {
		return r.base.RoundTrip(req)
	}
	t0 := time.Now()
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		r.add(t0, false, "TRANSPORT")
		return nil, err
	}
	// Provider protocols answer refusals (insufficient funds, unknown
	// bet) with HTTP 200 and a code of their own; the simulator judges
	// those. A non-200 status is a failure of the server.
	ok := resp.StatusCode == http.StatusOK
	resp.Body = &timedBody{ReadCloser: resp.Body, done: func() { r.add(t0, ok, fmt.Sprintf("HTTP_%d", resp.StatusCode)) }}
	return resp, nil
}

// timedBody calls done once, when the body is read to its end or closed.
type timedBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.done)
	}
	return n, err
}

func (b *timedBody) Close() error {
	b.once.Do(b.done)
	return b.ReadCloser.Close()
}
