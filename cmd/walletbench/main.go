// Command walletbench is walletd's load harness.
//
//	walletbench suite   the standard side-by-side suite (make bench): walletd on
//	                    both stores, the naive row-lock baseline and the no-op
//	                    ceiling; writes bench/results/<date>.{md,json,svg}
//	walletbench run     one load run against a walletd (started here, embedded or
//	                    on Postgres, or any URL), a baseline or the ceiling
//	walletbench serve   the naive or ceiling server (the suite runs them this way,
//	                    each in its own process like walletd)
//
// Every run ends with the correctness check; any discrepancy makes the exit
// status 1.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/walletd/walletd/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(Main(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailed  = 1 // a discrepancy, or a run that measured nothing
	exitProblem = 2 // bad usage or a setup that failed
)

// Main runs the command with args and returns its exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: walletbench suite|run|compare|serve [flags]  (-h after a subcommand lists its flags)")
		return exitProblem
	}
	var err error
	status := exitOK
	if args[0] == "suite" || args[0] == "run" || args[0] == "compare" {
		lighterGC()
	}
	switch args[0] {
	case "suite":
		status, err = suite(ctx, args[1:], stdout, stderr)
	case "run":
		status, err = runCmd(ctx, args[1:], stdout, stderr)
	case "compare":
		status, err = compareCmd(ctx, args[1:], stdout, stderr)
	case "serve":
		err = serve(ctx, args[1:], stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, "usage: walletbench suite|run|compare|serve [flags]  (-h after a subcommand lists its flags)")
		return exitOK
	default:
		err = fmt.Errorf("unknown command %q: want suite, run, compare or serve", args[0])
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "walletbench:", err)
		return exitProblem
	}
	return status
}

// userList parses "50,200".
func userList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("users %q: want positive counts separated by commas", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func suite(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("suite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "bench/results", "folder for <name>.md, .json, .svg and <name>-cpu.prof")
	name := fs.String("name", time.Now().UTC().Format("2006-01-02"), "base name of the results files")
	pg := fs.String("pg", bench.DefaultPGDSN, "Postgres server for walletd-postgres and the naive baseline (a database is created per system and dropped); empty: skip them")
	systems := fs.String("systems", strings.Join(bench.AllSystems(), ","), "systems to run")
	users := fs.String("users", "50,200", "virtual users, one run per count and scenario")
	wallets := fs.Int("wallets", 10_000, "wallets of the uniform scenario")
	duration := fs.Duration("duration", 5*time.Second, "measured time per run")
	warmup := fs.Duration("warmup", time.Second, "warm-up per run (not measured)")
	mix := fs.String("mix", bench.DefaultMix().String(), "operation weights")
	profile := fs.Bool("profile", true, "capture a CPU profile of walletd in one extra run")
	profSystem := fs.String("profile-system", bench.SystemWalletdPostgres, "system to profile")
	profScenario := fs.String("profile-scenario", bench.ScenarioUniform, "scenario to profile (hot or uniform)")
	profUsers := fs.Int("profile-users", 200, "users of the profiled run")
	naiveConns := fs.Int("naive-conns", bench.DefaultNaiveConns, "connection pool of the naive baseline")
	walletdBin := fs.String("walletd-bin", "", "a prebuilt walletd (default: go build)")
	formats := fs.String("formats", "", "also play these provider wire formats (pragmatic,evolution) against each walletd, through providers/sim")
	providerRounds := fs.Int("provider-rounds", 20, "rounds per user of the provider-format runs")
	repeat := fs.Int("repeat", 1, "runs of every scenario per system, the systems taking turns; the report shows the median run (3: steadier figures, three times as long)")
	settleWait := fs.Duration("settle", 30*time.Second, fmt.Sprintf("wait at most this long, once every system is up, for the machine to go quiet (under %g cores busy) before the first run; 0: do not wait", bench.SettleLimit))
	if err := fs.Parse(args); err != nil {
		return exitProblem, err
	}
	if *repeat < 1 {
		return exitProblem, fmt.Errorf("-repeat %d: at least 1", *repeat)
	}
	var fmts []string
	for _, f := range strings.Split(*formats, ",") {
		switch f = strings.TrimSpace(f); f {
		case "":
		case bench.FormatPragmatic, bench.FormatEvolution:
			fmts = append(fmts, f)
		default:
			return exitProblem, fmt.Errorf("-formats: unknown format %q (pragmatic, evolution)", f)
		}
	}
	us, err := userList(*users)
	if err != nil {
		return exitProblem, err
	}
	m, err := bench.ParseMix(*mix)
	if err != nil {
		return exitProblem, err
	}
	self, err := os.Executable()
	if err != nil {
		return exitProblem, err
	}
	cfg := bench.SuiteConfig{
		PGDSN: *pg, Systems: strings.Split(*systems, ","), Users: us, Wallets: *wallets,
		Duration: *duration, Warmup: *warmup, Mix: m, WalletdBin: *walletdBin, SelfExe: self,
		NaiveConns: *naiveConns, Profile: *profile, ProfileSystem: *profSystem, ProfileScenario: *profScenario,
		ProfileUsers: *profUsers, ProfilePath: filepath.Join(*out, *name+"-cpu.prof"), Progress: stdout,
		Formats: fmts, ProviderRounds: *providerRounds, Repeat: *repeat, SettleMaxWait: *settleWait,
	}
	if *settleWait <= 0 {
		cfg.SettleMaxWait = -1 // one sample, for the report
	}
	rep, err := bench.RunSuite(ctx, cfg)
	if err != nil {
		return exitProblem, err
	}
	if rep.Profile != nil {
		rep.Profile.File = *name + "-cpu.prof"
	}
	if err := rep.WriteFiles(*out, *name); err != nil {
		return exitProblem, err
	}
	fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(*out, *name+".{md,json,svg}"))
	for _, c := range rep.Acceptance {
		mark := "PASS"
		if !c.Pass {
			mark = "FAIL"
			if c.Goal {
				mark = "goal not met"
			}
		}
		fmt.Fprintf(stdout, "  %-13s %s: %s\n", mark, c.Criterion, c.Actual)
	}
	if rep.Failed {
		fmt.Fprintln(stderr, "walletbench: DISCREPANCIES FOUND — money was lost, invented or applied twice; see the report")
		return exitFailed, nil
	}
	return exitOK, nil
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("target", "embedded", "embedded or postgres (start a walletd here), naive or ceiling (start a comparison server), or the base URL of a running server")
	key := fs.String("key", firstKey(os.Getenv("WALLET_API_KEYS")), "operator key of a server given by URL (default: the first of WALLET_API_KEYS)")
	pg := fs.String("pg", bench.DefaultPGDSN, "Postgres server for -target postgres or naive (a database is created and dropped)")
	users := fs.Int("users", 50, "virtual users")
	wallets := fs.Int("wallets", 1, "wallets to bet on")
	skew := fs.String("skew", "", "hot, uniform or zipf[:s] (default: hot for 1 wallet, else uniform)")
	mix := fs.String("mix", bench.DefaultMix().String(), "operation weights")
	duration := fs.Duration("duration", 10*time.Second, "measured time")
	requests := fs.Int("requests", 0, "measured requests (instead of -duration)")
	warmup := fs.Duration("warmup", 2*time.Second, "warm-up (not measured)")
	rate := fs.Float64("rate", 0, "open loop at this many requests/s (latency from when each request was due); 0: closed loop")
	format := fs.String("format", bench.FormatGeneric, "wire format: generic, pragmatic or evolution (the provider formats are played by providers/sim: whole rounds per user, -rounds each)")
	rounds := fs.Int("rounds", 50, "pragmatic/evolution: rounds per user (instead of -duration/-requests)")
	warmupRounds := fs.Int("warmup-rounds", 5, "pragmatic/evolution: rounds per user played first, on other wallets, and not measured")
	ppSecret := fs.String("pragmatic-secret", os.Getenv("WALLET_PRAGMATIC_SECRET"), "pragmatic: the instance's secret, for a server given by URL")
	evoToken := fs.String("evolution-token", os.Getenv("WALLET_EVOLUTION_AUTH_TOKEN"), "evolution: the instance's authToken, for a server given by URL")
	fault := fs.String("fault", "", "drop-every=N: put a broken proxy in front that acknowledges every Nth write without forwarding it (the check must fail)")
	prefix := fs.String("wallet-prefix", "", "wallet ids are <prefix><n> (default: wb-<random>-)")
	seed := fs.Uint64("seed", 0, "random seed (0: time)")
	jsonOut := fs.String("json", "", "also write the result as JSON to this file")
	walletdBin := fs.String("walletd-bin", "", "a prebuilt walletd (default: go build)")
	var walletdEnv []string
	fs.Func("walletd-env", "KEY=VALUE added to the environment of the walletd it starts (repeatable)", func(v string) error {
		if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
			return fmt.Errorf("want KEY=VALUE, not %q", v)
		}
		walletdEnv = append(walletdEnv, v)
		return nil
	})
	naiveConns := fs.Int("naive-conns", bench.DefaultNaiveConns, "connection pool of the naive baseline")
	genProfile := fs.String("generator-profile", "", "write a CPU profile of walletbench itself (the load generator) to this file")
	if err := fs.Parse(args); err != nil {
		return exitProblem, err
	}
	if *genProfile != "" {
		stop, err := profileSelf(*genProfile)
		if err != nil {
			return exitProblem, err
		}
		defer stop()
	}
	switch *format {
	case bench.FormatGeneric, bench.FormatPragmatic, bench.FormatEvolution:
	default:
		return exitProblem, fmt.Errorf("-format %q: want generic, pragmatic or evolution", *format)
	}
	sk := *skew
	if sk == "" {
		sk = "uniform"
		if *wallets == 1 {
			sk = "hot"
		}
	}
	sw, err := bench.ParseSkew(sk)
	if err != nil {
		return exitProblem, err
	}
	m, err := bench.ParseMix(*mix)
	if err != nil {
		return exitProblem, err
	}
	dur := *duration
	if *requests > 0 {
		dur = 0
	}
	wl := bench.Workload{Users: *users, Skew: sw, Mix: m, Duration: dur, Requests: *requests, Warmup: *warmup, Rate: *rate, Seed: *seed}
	if err := wl.Validate(); err != nil {
		return exitProblem, err
	}

	tmp, err := os.MkdirTemp("", "walletbench-run-")
	if err != nil {
		return exitProblem, err
	}
	defer os.RemoveAll(tmp)
	var cleanups []func() error
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			if err := cleanups[i](); err != nil {
				fmt.Fprintln(stderr, "walletbench: cleanup:", err)
			}
		}
	}()
	const runKey = "walletbench"
	tgt := bench.Target{System: *target, APIKey: runKey}
	usesPG := false
	switch *target {
	case "embedded", "postgres":
		bin := *walletdBin
		if bin == "" {
			fmt.Fprintln(stdout, "building walletd")
			if bin, err = bench.BuildWalletd(ctx, tmp, false); err != nil {
				return exitProblem, err
			}
		}
		dsn := ""
		if *target == "postgres" {
			db, err := bench.CreateDatabase(ctx, *pg, "run")
			if err != nil {
				return exitProblem, err
			}
			cleanups = append(cleanups, db.Drop)
			dsn, usesPG = db.DSN, true
		}
		// The provider instances the simulator plays, with secrets of this
		// run: WALLET_PRAGMATIC_SECRET and WALLET_EVOLUTION_AUTH_TOKEN.
		*ppSecret, *evoToken = "walletbench-pragmatic", "walletbench-evolution"
		env := append(bench.WalletdEnv(runKey, filepath.Join(tmp, "data"), dsn),
			"WALLET_PRAGMATIC_SECRET="+*ppSecret, "WALLET_EVOLUTION_AUTH_TOKEN="+*evoToken)
		env = append(env, walletdEnv...)
		p, err := bench.StartProcess(ctx, "walletd", bin, nil, env, filepath.Join(tmp, "walletd.log"))
		if err != nil {
			return exitProblem, err
		}
		cleanups = append(cleanups, func() error { return p.Stop(30 * time.Second) })
		tgt.System, tgt.URL, tgt.PID = "walletd-"+*target, p.URL(), p.PID()
	case "naive", "ceiling":
		self, err := os.Executable()
		if err != nil {
			return exitProblem, err
		}
		sargs := []string{"serve", "-system", *target, "-addr", "127.0.0.1:0"}
		if *target == "naive" {
			db, err := bench.CreateDatabase(ctx, *pg, "run")
			if err != nil {
				return exitProblem, err
			}
			cleanups = append(cleanups, db.Drop)
			sargs = append(sargs, "-pg", db.DSN, "-max-conns", strconv.Itoa(*naiveConns))
			usesPG = true
		}
		p, err := bench.StartProcess(ctx, *target, self, sargs, []string{"WALLET_API_KEYS=" + runKey}, filepath.Join(tmp, *target+".log"))
		if err != nil {
			return exitProblem, err
		}
		cleanups = append(cleanups, func() error { return p.Stop(30 * time.Second) })
		tgt.URL, tgt.PID, tgt.Stateless = p.URL(), p.PID(), *target == "ceiling"
		if *target == "naive" {
			tgt.System = bench.SystemNaive
		}
	default:
		if !strings.HasPrefix(*target, "http://") && !strings.HasPrefix(*target, "https://") {
			return exitProblem, fmt.Errorf("-target %q: want embedded, postgres, naive, ceiling or an http:// URL", *target)
		}
		if *key == "" {
			return exitProblem, errors.New("-key (or WALLET_API_KEYS) is required for a server given by URL")
		}
		tgt = bench.Target{System: "server", URL: strings.TrimRight(*target, "/"), APIKey: *key}
	}

	if *format != bench.FormatGeneric {
		if tgt.Stateless || *target == "naive" {
			return exitProblem, fmt.Errorf("-format %s: the provider formats are served by walletd only", *format)
		}
		secret := *ppSecret
		if *format == bench.FormatEvolution {
			secret = *evoToken
		}
		fmt.Fprintf(stdout, "%s: %s rounds by providers/sim, %d players, %d rounds each\n", tgt.System, *format, *users, *rounds)
		res, err := bench.RunProvider(ctx, bench.ProviderSpec{
			Target: tgt, Format: *format, Secret: secret, Users: *users, Rounds: *rounds, WarmupRounds: *warmupRounds,
			Seed: *seed, CPU: bench.NewCPUProbe(tgt.PID, usesPG),
		})
		if err != nil {
			return exitProblem, fmt.Errorf("%w (does the server serve /providers/%s? walletd does when WALLET_PRAGMATIC_SECRET or WALLET_EVOLUTION_AUTH_TOKEN is set and its build mounts the provider adapters)", err, *format)
		}
		return report(res, *jsonOut, stdout, stderr)
	}

	direct := bench.NewClient(tgt.URL, tgt.APIKey, *users+16)
	defer direct.Close()
	proto := direct
	if *fault != "" {
		nStr, ok := strings.CutPrefix(*fault, "drop-every=")
		n, err := strconv.Atoi(nStr)
		if !ok || err != nil || n <= 0 {
			return exitProblem, fmt.Errorf("-fault %q: want drop-every=N", *fault)
		}
		drop, err := bench.NewDropEvery(tgt.URL, n)
		if err != nil {
			return exitProblem, err
		}
		proxy := httptest.NewServer(drop)
		cleanups = append(cleanups, func() error { proxy.Close(); return nil })
		proto = bench.NewClient(proxy.URL, tgt.APIKey, *users+16)
		defer proto.Close()
		fmt.Fprintf(stdout, "FAULT: every %dth write is acknowledged and dropped by a proxy at %s\n", n, proxy.URL)
		tgt.System += "+drop-every-" + nStr
	}

	p := *prefix
	if p == "" {
		p = "wb-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36) + "-"
	}
	ids := bench.WalletIDs(p, *wallets)
	ledger := bench.NewLedger()
	var reader bench.Reader = direct
	if !tgt.Stateless {
		fmt.Fprintf(stdout, "opening and funding %d wallets\n", len(ids))
		if err := bench.Setup(ctx, direct, ledger, ids, 100_000_000, 64); err != nil {
			return exitProblem, err
		}
	} else {
		reader = nil
	}
	fmt.Fprintf(stdout, "%s: %s loop, %d users, %d wallets (%s), mix %s\n", tgt.System, wl.Mode(), wl.Users, len(ids), sw, m)
	res, err := bench.Execute(ctx, bench.RunSpec{
		Target: tgt, Scenario: sw.Kind, Workload: wl, Wallets: ids, Protocol: proto, Reader: reader, Ledger: ledger,
		CPU: bench.NewCPUProbe(tgt.PID, usesPG), CheckWorkers: 32,
	})
	if err != nil {
		return exitProblem, err
	}
	if res.InDoubt > 0 {
		fmt.Fprintf(stdout, "%d operations had an unknown outcome (timeouts); the check resolved them from the journal\n", res.InDoubt)
	}
	return report(res, *jsonOut, stdout, stderr)
}

// report prints a run's result (and writes its JSON); a run with a
// discrepancy, or that measured nothing, fails.
func report(res bench.Result, jsonOut string, stdout, stderr io.Writer) (int, error) {
	fmt.Fprintln(stdout, res.Line())
	for _, d := range res.DiscrepancyDetails {
		fmt.Fprintln(stdout, "DISCREPANCY", d)
	}
	if jsonOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(jsonOut, append(b, '\n'), 0o644); err != nil {
			return exitProblem, err
		}
	}
	if res.Failed() {
		fmt.Fprintf(stderr, "walletbench: FAILED: %d discrepancies (%d requests measured)\n", res.Discrepancies, res.Requests)
		return exitFailed, nil
	}
	return exitOK, nil
}

// lighterGC makes the load generator collect garbage four times less often
// (unless GOGC says otherwise): it shares the machine's cores with the
// servers it measures, and every cycle it saves is one they can use. The
// servers (walletd, and the naive and ceiling servers of `serve`) keep Go's
// default, as in production.
func lighterGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

// profileSelf profiles this process until the returned function is called:
// on a shared machine the generator's own cost is part of the story.
func profileSelf(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func firstKey(keys string) string {
	k, _, _ := strings.Cut(keys, ",")
	return strings.TrimSpace(k)
}

// serve runs the naive or ceiling server until a signal.
func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	system := fs.String("system", "", "naive or ceiling")
	addr := fs.String("addr", "127.0.0.1:8090", "listen address")
	pg := fs.String("pg", "", "the naive baseline's Postgres database")
	conns := fs.Int("max-conns", bench.DefaultNaiveConns, "the naive baseline's connection pool")
	if err := fs.Parse(args); err != nil {
		return err
	}
	key := firstKey(os.Getenv("WALLET_API_KEYS"))
	if key == "" {
		return errors.New("serve: set WALLET_API_KEYS")
	}
	err := bench.Serve(ctx, bench.ServeConfig{System: *system, Addr: *addr, APIKey: key, PGDSN: *pg, MaxConns: *conns, Logs: stderr})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
