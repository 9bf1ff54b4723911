package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walletd/walletd/internal/pgtest"
)

// runTinySuite runs the suite with tiny settings on systems, each scenario
// repeat times, and checks the report and its files.
func runTinySuite(t *testing.T, pg string, systems []string, profile string, repeat int) *Report {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs walletd; skipped with -short")
	}
	out := t.TempDir()
	var progress strings.Builder
	cfg := SuiteConfig{
		PGDSN: pg, Systems: systems, Users: []int{4}, Wallets: 20, Duration: 300 * time.Millisecond, Warmup: 50 * time.Millisecond,
		Profile: profile != "", ProfileSystem: profile, ProfileUsers: 4, ProfilePath: filepath.Join(out, "tiny-cpu.prof"),
		NaiveConns: 4, Progress: &progress, Repeat: repeat,
		SettleMaxWait: -1, // go test runs packages side by side: the machine is never quiet
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	rep, err := RunSuite(ctx, cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	t.Log("\n" + progress.String())
	if rep.Failed || len(rep.Results) != 2*len(systems) {
		t.Fatalf("failed %v, %d results: %+v", rep.Failed, len(rep.Results), rep.Results)
	}
	for _, r := range rep.Results {
		if r.Requests == 0 || r.OK != r.Requests || r.Discrepancies != 0 || r.Checked == (r.System == SystemCeiling) {
			t.Errorf("%s", r.Line())
		}
		if want := map[bool]int{true: repeat, false: 0}[repeat > 1]; len(r.Repeats) != want {
			t.Errorf("%s: %d repeats recorded, want %d", r.Line(), len(r.Repeats), want)
		}
	}
	if n := strings.Count(progress.String(), "(run "); n != map[bool]int{true: 2 * len(systems) * repeat, false: 0}[repeat > 1] {
		t.Errorf("%d repeated runs in the progress, want %d of each of %d runs", n, repeat, 2*len(systems))
	}
	if profile != "" {
		if rep.Profile == nil || len(rep.Profile.Flat) == 0 || len(rep.Profile.Packages) == 0 || rep.Profile.System != profile {
			t.Errorf("profile summary %+v", rep.Profile)
		}
		if st, err := os.Stat(cfg.ProfilePath); err != nil || st.Size() == 0 {
			t.Errorf("profile file: %v", err)
		}
	}
	if err := rep.WriteFiles(out, "tiny"); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{".md", ".json", ".svg"} {
		if st, err := os.Stat(filepath.Join(out, "tiny"+ext)); err != nil || st.Size() == 0 {
			t.Errorf("tiny%s: %v", ext, err)
		}
	}
	md, err := os.ReadFile(filepath.Join(out, "tiny.md"))
	if err != nil || strings.Contains(string(md), "req/s of each run") != (repeat > 1) {
		t.Errorf("the report's runs column (repeat %d): %v\n%s", repeat, err, md)
	}
	if q := rep.Header.Quiet; q == nil || q.WaitedS != 0 || !strings.Contains(string(md), "| Machine before the first run |") {
		t.Errorf("the machine's state before the runs: %+v\n%s", q, md)
	}
	if sp := rep.Header.Speed; sp == nil || sp.Before.HashMBps <= 0 || sp.After == nil || sp.After.LoopbackRTTus <= 0 ||
		!strings.Contains(string(md), "| Machine speed | SHA-256 ") || !strings.Contains(string(md), "after the last") {
		t.Errorf("the machine's speed before and after the runs: %+v\n%s", sp, md)
	} else if usesPG := pg != ""; (sp.Before.PGCommitus > 0) != usesPG || (sp.After.PGCommitus > 0) != usesPG ||
		strings.Count(string(md), ", Postgres commit ") != map[bool]int{true: 2}[usesPG] {
		t.Errorf("the Postgres commit probe (Postgres used: %v): %+v\n%s", usesPG, sp, md)
	}
	return rep
}

// The suite without Postgres: the ceiling and walletd on its embedded
// store, profiled through the pprof hook added at build time, each scenario
// run twice (the report shows the median runs).
func TestSuiteEmbedded(t *testing.T) {
	rep := runTinySuite(t, "", []string{SystemCeiling, SystemWalletdEmbedded}, SystemWalletdEmbedded, 2)
	if len(rep.Ratios) != 2 || rep.Ratios[0].Versus != SystemCeiling {
		t.Errorf("ratios %+v", rep.Ratios)
	}
}

// The Postgres half: the naive baseline behind the HTTP contract and walletd
// on Postgres, each in a database of its own that the suite drops.
func TestSuitePostgres(t *testing.T) {
	pgtest.DSN(t) // skips loudly (fails under CI=true) without Postgres
	rep := runTinySuite(t, pgtest.ServerDSN(), []string{SystemNaive, SystemWalletdPostgres}, "", 1)
	if rep.Header.Postgres == "" || len(rep.Ratios) != 2 || rep.Ratios[0].Versus != SystemNaive {
		t.Errorf("postgres %q, ratios %+v", rep.Header.Postgres, rep.Ratios)
	}
	// The commit probe's database is gone (only suites make one; the
	// systems' databases are shared with single runs, which other
	// packages' tests may be making right now).
	conn, err := pgx.Connect(context.Background(), pgtest.ServerDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// Query's error comes back from CollectRows.
	rows, _ := conn.Query(context.Background(), "SELECT datname FROM pg_database WHERE datname LIKE 'walletbench\\_speed\\_%'")
	left, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(left) > 0 {
		t.Errorf("databases left behind: %v (%v)", left, err)
	}
}
