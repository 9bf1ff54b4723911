// Package sim plays game providers against a running walletd: it creates
// wallets through the operator API, launches sessions, and plays whole
// rounds as Pragmatic Play and Evolution would (bets, wins, losses,
// multi-bet rounds, jackpots and promotions, refunds and cancels, also
// before their bet), properly signed, injecting retries of the same
// reference (one after the other and at the same time).
//
// It keeps its own ledger of what each wallet must hold, checks every
// reply against it (the provider's code and the balance it reports), and
// at the end compares every wallet's balance (GET /v1/wallets/:id) with
// the ledger. cmd/walletsim runs it from the command line; tests and
// benchmark harnesses call Run.
package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/walletd/walletd/providers"
	"github.com/walletd/walletd/providers/evolution"
	"github.com/walletd/walletd/providers/pragmatic"
	"github.com/walletd/walletd/wallet"
)

// Provider is one provider instance to play as.
type Provider struct {
	Instance string // the instance name: /providers/{Instance}/…
	Kind     string // pragmatic or evolution

	// Pragmatic.
	Secret     string
	ProviderID string // default PragmaticPlay
	BonusWin   string // the instance's bonusWin policy: informational (default) or credit

	// Evolution.
	AuthToken string
	RotateSID bool // the instance rotates the sid on check
}

// Config configures a run.
type Config struct {
	BaseURL   string // walletd, e.g. http://127.0.0.1:8080
	APIKey    string // an operator key
	Providers []Provider
	// Players per provider, each played by its own goroutine (default 10).
	Players int
	// Rounds per player (default 20).
	Rounds int
	// Currencies the players' wallets hold, in turn (default EUR).
	Currencies []string
	// RetryRate is the chance that a money request is sent again with the
	// same reference (half of those at the same time as the original).
	// Default 0.2; negative: no retries.
	RetryRate float64
	// Seed makes the scenarios reproducible (0: random).
	Seed uint64
	// RunID prefixes the players' ids (default: random), so runs never
	// share wallets.
	RunID string
	// Client sends the requests (default: a client with a 30s timeout).
	Client *http.Client
}

// Report is what a run found.
type Report struct {
	Providers []ProviderReport
	// Mismatches lists the first 100 differences from the ledger;
	// MismatchCount counts them all.
	Mismatches    []string
	MismatchCount int
}

// ProviderReport sums up one provider's part of a run.
type ProviderReport struct {
	Instance, Kind string
	Players        int
	Rounds         int
	Requests       int
	Elapsed        time.Duration
	// Outcomes counts replies by "method code" ("bet 0", "debit OK",
	// "cancel BET_DOES_NOT_EXIST"); a retry counts as "method code (retry)".
	Outcomes map[string]int
}

// RoundsPerSecond is the provider's throughput in whole rounds.
func (p ProviderReport) RoundsPerSecond() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Rounds) / p.Elapsed.Seconds()
}

// OK reports whether every reply and every balance matched the ledger.
func (r *Report) OK() bool { return r.MismatchCount == 0 }

// Print writes a summary per provider.
func (r *Report) Print(w io.Writer) {
	for _, p := range r.Providers {
		fmt.Fprintf(w, "%s (%s): %d players, %d rounds, %d requests in %s: %.1f rounds/s, %.1f requests/s\n",
			p.Instance, p.Kind, p.Players, p.Rounds, p.Requests, p.Elapsed.Round(time.Millisecond),
			p.RoundsPerSecond(), float64(p.Requests)/max(p.Elapsed.Seconds(), 1e-9))
		keys := slices.Sorted(maps.Keys(p.Outcomes))
		for _, k := range keys {
			fmt.Fprintf(w, "  %-45s %8d\n", k, p.Outcomes[k])
		}
	}
	if r.OK() {
		fmt.Fprintln(w, "every reply and every wallet matched the ledger")
		return
	}
	fmt.Fprintf(w, "%d MISMATCHES with the ledger:\n", r.MismatchCount)
	for _, m := range r.Mismatches {
		fmt.Fprintln(w, "  "+m)
	}
}

// Run plays cfg's providers, all at once, and returns what it found. An
// error means the run could not be played (walletd unreachable, a wrong
// operator key, a bad configuration); differences from the ledger are in
// the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	c := &client{base: strings.TrimRight(cfg.BaseURL, "/"), key: cfg.APIKey, hc: cfg.Client}
	if err := c.preflight(ctx); err != nil {
		return nil, err
	}
	rep := &Report{}
	var mu sync.Mutex // guards rep's mismatches
	mismatch := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		rep.MismatchCount++
		if len(rep.Mismatches) < 100 {
			rep.Mismatches = append(rep.Mismatches, s)
		}
	}
	tallies := make([]*tally, len(cfg.Providers))
	var all sync.WaitGroup
	for i, prov := range cfg.Providers {
		t := &tally{outcomes: map[string]int{}}
		tallies[i] = t
		all.Add(1)
		go func() {
			defer all.Done()
			start := time.Now()
			var wg sync.WaitGroup
			for n := range cfg.Players {
				wg.Add(1)
				go func() {
					defer wg.Done()
					p := &player{
						ctx: ctx, cfg: &cfg, c: c, prov: prov, t: t, mismatch: mismatch,
						id:  fmt.Sprintf("sim-%s-%s-%d", cfg.RunID, prov.Instance, n),
						rng: mrand.New(mrand.NewPCG(cfg.Seed, uint64(i)<<32|uint64(n))),
					}
					p.cur, _ = wallet.LookupCurrency(cfg.Currencies[n%len(cfg.Currencies)])
					p.play()
				}()
			}
			wg.Wait()
			t.elapsed = time.Since(start)
		}()
	}
	all.Wait()
	for i, prov := range cfg.Providers {
		t := tallies[i]
		rep.Providers = append(rep.Providers, ProviderReport{
			Instance: prov.Instance, Kind: prov.Kind, Players: cfg.Players,
			Rounds: t.rounds, Requests: t.requests, Elapsed: t.elapsed, Outcomes: t.outcomes,
		})
	}
	sort.Strings(rep.Mismatches)
	return rep, ctx.Err()
}

func (cfg *Config) defaults() error {
	if cfg.BaseURL == "" || cfg.APIKey == "" {
		return errors.New("sim: BaseURL and APIKey are required")
	}
	if len(cfg.Providers) == 0 {
		return errors.New("sim: no provider to play (configure a pragmatic or evolution instance)")
	}
	cfg.Providers = slices.Clone(cfg.Providers) // defaults go into a copy, not the caller's slice
	for i, p := range cfg.Providers {
		switch {
		case p.Kind == pragmatic.Kind && p.Secret == "":
			return fmt.Errorf("sim: pragmatic instance %s has no secret", p.Instance)
		case p.Kind == evolution.Kind && p.AuthToken == "":
			return fmt.Errorf("sim: evolution instance %s has no authToken", p.Instance)
		case p.Kind != pragmatic.Kind && p.Kind != evolution.Kind:
			return fmt.Errorf("sim: instance %s: the simulator does not speak kind %q", p.Instance, p.Kind)
		}
		if p.ProviderID == "" {
			cfg.Providers[i].ProviderID = pragmatic.DefaultProviderID
		}
		if p.BonusWin == "" {
			cfg.Providers[i].BonusWin = pragmatic.BonusWinInformational
		}
	}
	if cfg.Players <= 0 {
		cfg.Players = 10
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 20
	}
	if len(cfg.Currencies) == 0 {
		cfg.Currencies = []string{"EUR"}
	}
	for _, code := range cfg.Currencies {
		if _, ok := wallet.LookupCurrency(code); !ok {
			return fmt.Errorf("sim: unknown currency %q", code)
		}
	}
	if cfg.RetryRate == 0 {
		cfg.RetryRate = 0.2
	}
	if cfg.Seed == 0 {
		var b [8]byte
		rand.Read(b[:])
		for _, x := range b {
			cfg.Seed = cfg.Seed<<8 | uint64(x)
		}
	}
	if cfg.RunID == "" {
		var b [4]byte
		rand.Read(b[:])
		cfg.RunID = hex.EncodeToString(b[:])
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 30 * time.Second,
		}}
	}
	return nil
}

// tally counts one provider's replies; its players share it.
type tally struct {
	mu       sync.Mutex
	outcomes map[string]int
	requests int
	rounds   int
	elapsed  time.Duration // written once all players are done
}

func (t *tally) add(outcome string) {
	t.mu.Lock()
	t.outcomes[outcome]++
	t.requests++
	t.mu.Unlock()
}

func (t *tally) round() {
	t.mu.Lock()
	t.rounds++
	t.mu.Unlock()
}

// ProvidersOf returns the instances that cfg (walletd's own provider
// configuration: the file and the env shortcuts) configures, resolved with
// cfg.Getenv, ready to be played.
func ProvidersOf(cfg providers.Config) ([]Provider, error) {
	ins, err := providers.Instances(cfg)
	if err != nil {
		return nil, err
	}
	var out []Provider
	for _, in := range ins {
		switch in.Kind {
		case pragmatic.Kind:
			c, err := providers.PragmaticConfig(in, cfg.Getenv)
			if err != nil {
				return nil, fmt.Errorf("instance %s: %w", in.Name, err)
			}
			out = append(out, Provider{Instance: in.Name, Kind: in.Kind, Secret: c.Secret, ProviderID: c.ProviderID, BonusWin: c.BonusWin})
		case evolution.Kind:
			c, err := providers.EvolutionConfig(in, cfg.Getenv)
			if err != nil {
				return nil, fmt.Errorf("instance %s: %w", in.Name, err)
			}
			out = append(out, Provider{Instance: in.Name, Kind: in.Kind, AuthToken: c.AuthToken, RotateSID: c.RotateSIDOnCheck})
		default:
			return nil, fmt.Errorf("instance %s: the simulator does not speak kind %q", in.Name, in.Kind)
		}
	}
	return out, nil
}
