// Command walletsim plays every configured game provider against a running
// walletd and checks the money: it creates wallets and deposits through the
// operator API, launches sessions, and plays whole rounds as Pragmatic Play
// and Evolution would (retries, refunds and cancels included, some before
// their bet), keeping its own ledger. It prints what it saw per provider
// and exits 1 if any reply or any final balance differs from the ledger.
//
// It reads the same provider configuration as walletd (WALLET_PROVIDERS_FILE,
// WALLET_PRAGMATIC_SECRET, WALLET_EVOLUTION_AUTH_TOKEN) and the operator key
// from WALLET_API_KEYS; flags override them:
//
//	walletsim -url http://127.0.0.1:8080 -players 50 -rounds 200
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/walletd/walletd/providers"
	"github.com/walletd/walletd/providers/sim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK       = 0
	exitMismatch = 1
	exitUsage    = 2
)

// run is the program; it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("walletsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	firstKey, _, _ := strings.Cut(getenv("WALLET_API_KEYS"), ",")
	var (
		url        = fs.String("url", "http://127.0.0.1:8080", "walletd's base URL")
		apiKey     = fs.String("api-key", strings.TrimSpace(firstKey), "an operator key (default: the first of WALLET_API_KEYS)")
		file       = fs.String("providers-file", getenv("WALLET_PROVIDERS_FILE"), "walletd's providers file")
		ppSecret   = fs.String("pragmatic-secret", getenv("WALLET_PRAGMATIC_SECRET"), "the secret of the instance \"pragmatic\"")
		evoToken   = fs.String("evolution-token", getenv("WALLET_EVOLUTION_AUTH_TOKEN"), "the authToken of the instance \"evolution\"")
		only       = fs.String("only", "", "play only these instances (comma-separated)")
		players    = fs.Int("players", 10, "players (wallets) per provider instance, each played concurrently")
		rounds     = fs.Int("rounds", 50, "rounds per player")
		currencies = fs.String("currencies", "EUR", "currencies of the wallets, in turn (e.g. EUR,JPY,KWD)")
		retry      = fs.Float64("retry", 0.2, "chance that a money request is sent again with the same reference (0 for none)")
		seed       = fs.Uint64("seed", 0, "seed of the scenarios (0: random)")
		timeout    = fs.Duration("timeout", 10*time.Minute, "give up after this long")
	)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "walletsim: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	provs, err := sim.ProvidersOf(providers.Config{File: *file, PragmaticSecret: *ppSecret, EvolutionAuthToken: *evoToken, Getenv: getenv})
	if err != nil {
		fmt.Fprintln(stderr, "walletsim: provider configuration:", err)
		return exitUsage
	}
	if *only != "" {
		want := map[string]bool{}
		for _, n := range strings.Split(*only, ",") {
			want[strings.TrimSpace(n)] = true
		}
		var kept []sim.Provider
		for _, p := range provs {
			if want[p.Instance] {
				kept = append(kept, p)
			}
		}
		provs = kept
	}
	if *retry == 0 {
		*retry = -1 // sim.Config: 0 means the default
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	cfg := sim.Config{
		BaseURL: *url, APIKey: *apiKey, Providers: provs, Players: *players, Rounds: *rounds,
		Currencies: strings.Split(*currencies, ","), RetryRate: *retry, Seed: *seed,
	}
	rep, err := sim.Run(ctx, cfg)
	if rep != nil {
		rep.Print(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "walletsim:", err)
		if rep == nil {
			return exitUsage
		}
		return exitMismatch
	}
	if !rep.OK() {
		return exitMismatch
	}
	return exitOK
}
