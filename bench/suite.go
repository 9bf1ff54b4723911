package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Systems of the side-by-side comparison.
const (
	SystemWalletdEmbedded = "walletd-embedded"
	SystemWalletdPostgres = "walletd-postgres"
	SystemNaive           = "naive-postgres"
	SystemCeiling         = "ceiling"
)

// AllSystems is the standard suite's order: the two ends first, so a slow
// machine shows its ceiling and the baseline before walletd's figures.
func AllSystems() []string {
	return []string{SystemCeiling, SystemNaive, SystemWalletdEmbedded, SystemWalletdPostgres}
}

// Scenario names.
const (
	ScenarioHot     = "hot"     // every bet on one wallet
	ScenarioUniform = "uniform" // bets spread evenly over the suite's wallets
)

// SuiteConfig is a side-by-side run: every system, every scenario, on one
// machine and one Postgres server, in one invocation.
type SuiteConfig struct {
	// PGDSN names the Postgres server (a database is created per system and
	// dropped at the end). Empty: the Postgres systems are skipped.
	PGDSN string
	// Systems to run (default AllSystems).
	Systems []string
	// Users: one run per count and scenario (default 50 and 200).
	Users []int
	// Wallets of the uniform scenario (default 10,000).
	Wallets  int
	Duration time.Duration // measured, per run (default 5s)
	Warmup   time.Duration // per run (default 1s)
	Mix      Mix           // default DefaultMix
	// WalletdBin: a prebuilt walletd; empty: built with go build.
	WalletdBin string
	// SelfExe: a binary whose `serve naive|ceiling` subcommand runs the
	// comparison servers (walletbench itself), so they run in their own
	// process like walletd. Empty: they run inside this process.
	SelfExe string
	// NaiveConns: the naive baseline's connection pool (default 16: the
	// baseline gets the pool it runs best with. On the first 2-core VM, of
	// 16, 32 and 64, 32 served the uniform scenario best and 16 the hot
	// wallet, within the noise; on the next, of 4, 8, 16 and 32 in
	// alternated suites, 16 served 10,000 wallets best and 4–16 the hot
	// wallet alike, while 32 lost a third there: more connections queued
	// on one row lock spend Postgres's CPU on waking each other).
	NaiveConns int
	// Formats: provider wire formats (pragmatic, evolution) to play against
	// each walletd after its generic runs, with the largest user count and
	// ProviderRounds rounds per user (default 20), through providers/sim.
	// The walletd binary must mount the provider adapters.
	Formats        []string
	ProviderRounds int
	// Profile: after the measured runs of ProfileSystem, one more run of
	// ProfileScenario with ProfileUsers under a CPU profile, written to
	// ProfilePath (walletd is then built with the pprof hook, see
	// BuildWalletd).
	Profile         bool
	ProfileSystem   string
	ProfileScenario string
	ProfileUsers    int
	ProfilePath     string
	// Repeat runs every scenario this many times per system (default 1),
	// the systems taking turns in a rotating order so that a drift of the
	// machine touches them alike; each result is then the median run
	// (MedianRun). 50-user runs of 5 s move by ±15–20% from one suite to
	// the next on a 2-core VM; medians of three are steadier.
	Repeat int
	// SettleMaxWait bounds the wait, after every system is up and before the
	// first measured run, for the machine to use at most SettleLimit cores
	// (default 30 s; negative: one sample, no waiting).
	SettleMaxWait time.Duration
	// Progress receives one line per step (nil: discarded).
	Progress io.Writer
}

// DefaultNaiveConns is the naive baseline's pool unless told otherwise
// (SuiteConfig.NaiveConns says how it was chosen).
const DefaultNaiveConns = 16

// SettleLimit is the CPU use (cores, over one second) below which the
// machine counts as quiet: idle servers, an idle Postgres and the kernel's
// housekeeping stay well under it; a build, a checkpoint of the wallets just
// opened or another benchmark do not.
const SettleLimit = 0.2

func (c *SuiteConfig) defaults() {
	if len(c.Systems) == 0 {
		c.Systems = AllSystems()
	}
	if len(c.Users) == 0 {
		c.Users = []int{50, 200}
	}
	c.Wallets = orDefault(c.Wallets, 10_000)
	if c.Duration <= 0 {
		c.Duration = 5 * time.Second
	}
	if c.Warmup < 0 {
		c.Warmup = 0
	}
	if c.Mix == (Mix{}) {
		c.Mix = DefaultMix()
	}
	c.NaiveConns = orDefault(c.NaiveConns, DefaultNaiveConns)
	c.Repeat = orDefault(c.Repeat, 1)
	c.ProviderRounds = orDefault(c.ProviderRounds, 20)
	if c.ProfileSystem == "" {
		c.ProfileSystem = SystemWalletdPostgres
	}
	if c.ProfileScenario == "" {
		c.ProfileScenario = ScenarioUniform
	}
	c.ProfileUsers = orDefault(c.ProfileUsers, 200)
	if c.SettleMaxWait == 0 {
		c.SettleMaxWait = 30 * time.Second
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// suiteKey is the operator key of every server of a suite.
const suiteKey = "walletbench"

// The provider instances' secrets of the walletd under test.
const (
	suitePragmaticSecret = "walletbench-pragmatic"
	suiteEvolutionToken  = "walletbench-evolution"
)

// fundCents funds each wallet with 1,000,000.00 EUR: no bet of a run is
// ever refused for lack of money.
const fundCents = 100_000_000

// server is a running system under test.
type server struct {
	url   string
	pid   int
	pprof string
	stop  func() error
}

// RunSuite runs the side-by-side suite and returns its report. A run with a
// discrepancy does not stop the suite; Report.Failed says so.
//
// Every system is started (and its wallets opened) first; then each
// scenario runs on every system back to back before the next scenario. On a
// machine that something else also uses, a burst of outside load then hits
// the systems of one scenario alike instead of one system's every run, so
// the ratios stay meaningful.
func RunSuite(ctx context.Context, cfg SuiteConfig) (rep *Report, err error) {
	cfg.defaults()
	began := time.Now()
	tmp, err := os.MkdirTemp("", "walletbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	say := func(format string, args ...any) {
		fmt.Fprintf(cfg.Progress, "[%5.1fs] %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}

	rep = &Report{Header: CollectHeader(ctx, cfg.PGDSN), Reference: PrototypeReference()}
	rep.Header.Settings = Settings{
		DurationS: cfg.Duration.Seconds(), WarmupS: cfg.Warmup.Seconds(), Mix: cfg.Mix.String(),
		Users: cfg.Users, Wallets: cfg.Wallets, Mode: "closed", Format: FormatGeneric, NaiveConns: cfg.NaiveConns,
	}
	if cfg.Repeat > 1 {
		rep.Header.Settings.Repeat = cfg.Repeat
	}
	usesPG := false
	var systems []string
	for _, s := range cfg.Systems {
		switch s {
		case SystemWalletdPostgres, SystemNaive:
			if cfg.PGDSN == "" {
				say("SKIP %s: no Postgres DSN", s)
				rep.Skipped = append(rep.Skipped, s+": no Postgres server given")
				continue
			}
			usesPG = true
		case SystemWalletdEmbedded, SystemCeiling:
		default:
			return nil, fmt.Errorf("unknown system %q", s)
		}
		systems = append(systems, s)
	}
	if usesPG && rep.Header.Postgres == "" {
		return nil, fmt.Errorf("Postgres at %s does not answer", redactDSN(cfg.PGDSN))
	}

	bin := cfg.WalletdBin
	if bin != "" && cfg.Profile {
		// Only the harness's own build carries the pprof hook.
		say("a prebuilt walletd serves no profile: profiling skipped")
		cfg.Profile = false
	}
	if bin == "" && (slices.Contains(systems, SystemWalletdEmbedded) || slices.Contains(systems, SystemWalletdPostgres)) {
		say("building walletd")
		if bin, err = BuildWalletd(ctx, tmp, cfg.Profile); err != nil {
			return nil, err
		}
	}

	hot := []string{"hot"}
	many := WalletIDs("p-", cfg.Wallets)
	var lives []*live
	defer func() {
		for i := len(lives) - 1; i >= 0; i-- {
			err = errors.Join(err, lives[i].close())
		}
	}()
	for _, system := range systems {
		l, err := startSystem(ctx, cfg, system, bin, tmp, append(slices.Clone(hot), many...), say)
		if l != nil {
			lives = append(lives, l)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", system, err)
		}
	}

	// The commit probe's database is made before the machine settles:
	// creating one writes a copy of the template to the WAL.
	var commits *commitProbe
	if usesPG {
		if commits, err = newCommitProbe(ctx, cfg.PGDSN); err != nil {
			return nil, fmt.Errorf("machine speed: %w", err)
		}
		defer func() { err = errors.Join(err, commits.close()) }()
	}
	q, err := settle(ctx, machineBusyOver(time.Second), time.Second, SettleLimit, max(cfg.SettleMaxWait, 0))
	if err != nil {
		return nil, err
	}
	rep.Header.Quiet = &q
	if q.Settled {
		say("machine quiet: %.2f cores busy (waited %g s)", q.BusyCores, q.WaitedS)
	} else {
		say("machine still busy after %g s: %.2f cores in use by something else; running anyway", q.WaitedS, q.BusyCores)
	}
	speed := func() (Speed, error) {
		sp, err := MeasureSpeed(ctx)
		if err == nil && commits != nil {
			sp.PGCommitus, err = commits.measure(ctx, speedWarmCommits, speedCommits)
		}
		if err != nil {
			return Speed{}, fmt.Errorf("machine speed: %w", err)
		}
		return sp, nil
	}
	before, err := speed()
	if err != nil {
		return nil, err
	}
	rep.Header.Speed = &SpeedProbe{Before: before}
	say("machine speed: %s", before)

	for _, scenario := range []string{ScenarioHot, ScenarioUniform} {
		wallets, skew := many, Skew{Kind: "uniform"}
		if scenario == ScenarioHot {
			wallets, skew = hot, Skew{Kind: "hot"}
		}
		for _, users := range cfg.Users {
			runs := make([][]Result, len(lives))
			for n := range cfg.Repeat {
				for j := range lives {
					i := (j + n) % len(lives)
					l := lives[i]
					res, err := Execute(ctx, l.spec(scenario, wallets, skew, users, cfg))
					if err != nil {
						return nil, fmt.Errorf("%s: %w", l.system, err)
					}
					if cfg.Repeat > 1 {
						say("%s  (run %d/%d)", res.Line(), n+1, cfg.Repeat)
					} else {
						say("%s", res.Line())
					}
					runs[i] = append(runs[i], res)
				}
			}
			for i := range lives {
				rep.Results = append(rep.Results, MedianRun(runs[i]))
			}
		}
	}
	for _, l := range lives {
		if l.stateless || l.system == SystemNaive {
			continue
		}
		for _, format := range cfg.Formats {
			secret := suitePragmaticSecret
			if format == FormatEvolution {
				secret = suiteEvolutionToken
			}
			res, err := RunProvider(ctx, ProviderSpec{
				Target: l.target, Format: format, Secret: secret, Users: slices.Max(cfg.Users), Rounds: cfg.ProviderRounds,
				WarmupRounds: max(cfg.ProviderRounds/10, 1), CPU: NewCPUProbe(l.srv.pid, l.usesPG),
			})
			if err != nil {
				return nil, fmt.Errorf("%s: %s rounds: %w", l.system, format, err)
			}
			say("%s", res.Line())
			rep.Results = append(rep.Results, res)
		}
	}
	after, err := speed()
	if err != nil {
		return nil, err
	}
	rep.Header.Speed.After = &after
	say("machine speed after the runs: %s", after)
	// Results grouped by system, in the order of cfg.Systems.
	slices.SortStableFunc(rep.Results, func(a, b Result) int {
		return slices.Index(systems, a.System) - slices.Index(systems, b.System)
	})

	for _, l := range lives {
		if !cfg.Profile || l.system != cfg.ProfileSystem {
			continue
		}
		wallets, skew := many, Skew{Kind: "uniform"}
		if cfg.ProfileScenario == ScenarioHot {
			wallets, skew = hot, Skew{Kind: "hot"}
		}
		s := l.spec(cfg.ProfileScenario, wallets, skew, cfg.ProfileUsers, cfg)
		var wg sync.WaitGroup
		var perr error
		s.OnMeasure = func(d time.Duration) {
			defer wg.Done()
			perr = captureCPUProfile(ctx, l.srv.pprof, d, cfg.ProfilePath)
		}
		wg.Add(1)
		say("%s: profiling %s with %d users", l.system, cfg.ProfileScenario, cfg.ProfileUsers)
		res, err := Execute(ctx, s)
		if err != nil {
			return nil, err
		}
		wg.Wait()
		if perr != nil {
			return nil, fmt.Errorf("CPU profile: %w", perr)
		}
		say("%s (profiled)", res.Line())
		if rep.Profile, err = SummarizeProfile(ctx, cfg.ProfilePath); err != nil {
			return nil, err
		}
		rep.Profile.System, rep.Profile.Run = l.system, res
		if res.Failed() {
			rep.Results = append(rep.Results, res) // its discrepancies must fail the suite
		}
	}
	rep.Finish(time.Since(began))
	say("done in %s", time.Since(began).Round(time.Second))
	return rep, nil
}

// live is a started system with its client and ledger.
type live struct {
	system    string
	srv       *server
	client    *Client
	ledger    *Ledger
	target    Target
	stateless bool
	usesPG    bool
	dbs       []*TempDatabase
}

// close stops the server and drops its databases.
func (l *live) close() error {
	var err error
	if l.client != nil {
		l.client.Close()
	}
	if l.srv != nil {
		err = l.srv.stop()
	}
	for _, db := range l.dbs {
		if derr := db.Drop(); derr != nil {
			err = errors.Join(err, fmt.Errorf("%s: drop database: %w", l.system, derr))
		}
	}
	return err
}

// spec is one run on the system.
func (l *live) spec(scenario string, wallets []string, skew Skew, users int, cfg SuiteConfig) RunSpec {
	s := RunSpec{
		Target: l.target, Scenario: scenario, Wallets: wallets, Protocol: l.client, Ledger: l.ledger,
		Workload: Workload{Users: users, Skew: skew, Mix: cfg.Mix, Duration: cfg.Duration, Warmup: cfg.Warmup},
		CPU:      NewCPUProbe(l.srv.pid, l.usesPG), CheckWorkers: 32,
	}
	if !l.stateless {
		s.Reader = l.client
	}
	return s
}

// startSystem starts one system and opens and funds its wallets. The
// returned live (even with an error) holds what must be cleaned up.
func startSystem(ctx context.Context, cfg SuiteConfig, system, bin, tmp string, wallets []string, say func(string, ...any)) (*live, error) {
	l := &live{system: system, stateless: system == SystemCeiling, usesPG: system == SystemWalletdPostgres || system == SystemNaive}
	newDB := func(label string) (string, error) {
		if err := Checkpoint(ctx, cfg.PGDSN); err != nil {
			say("%s: CHECKPOINT failed (%v); going on", system, err)
		}
		db, err := CreateDatabase(ctx, cfg.PGDSN, label)
		if err != nil {
			return "", err
		}
		l.dbs = append(l.dbs, db)
		return db.DSN, nil
	}
	var err error
	logPath := filepath.Join(tmp, system+".log")
	switch system {
	case SystemWalletdEmbedded, SystemWalletdPostgres:
		dsn := ""
		if system == SystemWalletdPostgres {
			if dsn, err = newDB("walletd"); err != nil {
				return l, err
			}
		}
		env := append(WalletdEnv(suiteKey, filepath.Join(tmp, system+"-data"), dsn),
			"WALLET_PRAGMATIC_SECRET="+suitePragmaticSecret, "WALLET_EVOLUTION_AUTH_TOKEN="+suiteEvolutionToken)
		if cfg.Profile && system == cfg.ProfileSystem {
			env = append(env, "WALLETBENCH_PPROF_ADDR=127.0.0.1:0")
		}
		l.srv, err = startProcess(ctx, system, bin, nil, env, logPath)
	case SystemNaive:
		dsn, derr := newDB("naive")
		if derr != nil {
			return l, derr
		}
		l.srv, err = startComparison(ctx, cfg, ServeConfig{System: "naive", PGDSN: dsn, MaxConns: cfg.NaiveConns}, logPath)
	case SystemCeiling:
		l.srv, err = startComparison(ctx, cfg, ServeConfig{System: "ceiling"}, logPath)
	}
	if err != nil {
		return l, err
	}
	say("%s serving at %s", system, l.srv.url)
	l.target = Target{System: system, URL: l.srv.url, APIKey: suiteKey, PID: l.srv.pid, Stateless: l.stateless}
	l.client = NewClient(l.srv.url, suiteKey, max(slices.Max(cfg.Users), cfg.ProfileUsers)+16)
	l.ledger = NewLedger()
	if !l.stateless {
		t0 := time.Now()
		if err := Setup(ctx, l.client, l.ledger, wallets, fundCents, 64); err != nil {
			return l, fmt.Errorf("open the wallets: %w", err)
		}
		say("%s: opened and funded %d wallets in %s", system, len(wallets), time.Since(t0).Round(time.Millisecond))
	}
	return l, nil
}

// startProcess starts a server process and wraps it.
func startProcess(ctx context.Context, name, bin string, args, env []string, logPath string) (*server, error) {
	p, err := StartProcess(ctx, name, bin, args, env, logPath)
	if err != nil {
		return nil, err
	}
	return &server{url: p.URL(), pid: p.PID(), pprof: p.PprofAddr, stop: func() error { return p.Stop(30 * time.Second) }}, nil
}

// startComparison starts the naive or ceiling server: as a process of
// cfg.SelfExe when set, else in this process.
func startComparison(ctx context.Context, cfg SuiteConfig, sc ServeConfig, logPath string) (*server, error) {
	sc.APIKey = suiteKey
	if cfg.SelfExe != "" {
		args := []string{"serve", "-system", sc.System, "-addr", "127.0.0.1:0"}
		if sc.PGDSN != "" {
			args = append(args, "-pg", sc.PGDSN, "-max-conns", strconv.Itoa(sc.MaxConns))
		}
		return startProcess(ctx, sc.System, cfg.SelfExe, args, []string{"WALLET_API_KEYS=" + suiteKey}, logPath)
	}
	logs, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	addr := make(chan string, 1)
	done := make(chan error, 1)
	sc.Logs = logs
	sc.Addr = "127.0.0.1:0"
	sc.OnServing = func(a string) { addr <- a }
	go func() { done <- Serve(sctx, sc) }()
	stop := func() error {
		cancel()
		err := <-done
		return errors.Join(err, logs.Close())
	}
	select {
	case a := <-addr:
		return &server{url: "http://" + a, stop: stop}, nil
	case err := <-done:
		cancel()
		logs.Close()
		return nil, fmt.Errorf("serve %s: %w", sc.System, err)
	}
}

// captureCPUProfile fetches a CPU profile of length d (at least 1s) from a
// net/http/pprof endpoint and writes it to path.
func captureCPUProfile(ctx context.Context, addr string, d time.Duration, path string) error {
	if addr == "" {
		return errors.New("the server does not serve pprof (build walletd with the profile hook)")
	}
	secs := max(int(d/time.Second), 1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("pprof: HTTP %d: %s", resp.StatusCode, b)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// goTool runs `go tool args...` and returns its output.
func goTool(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", append([]string{"tool"}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go tool %v: %w\n%s", args, err, out)
	}
	return string(out), nil
}
