package bench

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func millis(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

func TestSummarize(t *testing.T) {
	// 1..1000 ms, one per ms, sent over 2 s; every tenth one failed.
	var samples []sample
	for i := 1; i <= 1000; i++ {
		samples = append(samples, sample{at: time.Duration(i) * 2 * time.Millisecond, lat: millis(float64(i)), ok: i%10 != 0})
	}
	for _, tc := range []struct {
		name    string
		samples []sample
		window  time.Duration
		want    Result
	}{
		{"spread", samples, 2 * time.Second, Result{
			DurationS: 2, Requests: 1000, OK: 900, Errors: 100, RPS: 500,
			LatencyMS: Latency{P50: 500, P95: 950, P99: 990, P999: 999, Max: 1000},
		}},
		{"one", []sample{{lat: millis(3), ok: true}}, time.Second, Result{
			DurationS: 1, Requests: 1, OK: 1, RPS: 1, LatencyMS: Latency{P50: 3, P95: 3, P99: 3, P999: 3, Max: 3},
		}},
		{"none", nil, time.Second, Result{DurationS: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := summarize(tc.samples, tc.window)
			l, w := got.LatencyMS, tc.want.LatencyMS
			// HDR percentiles are within 0.1% of the exact value.
			for _, p := range [][2]float64{{l.P50, w.P50}, {l.P95, w.P95}, {l.P99, w.P99}, {l.P999, w.P999}} {
				if p[0] < p[1]*0.999 || p[0] > p[1]*1.001 {
					t.Errorf("latency %+v, want %+v", l, w)
					break
				}
			}
			if l.Max != w.Max || got.Requests != tc.want.Requests || got.OK != tc.want.OK || got.Errors != tc.want.Errors ||
				got.RPS != tc.want.RPS || got.DurationS != tc.want.DurationS {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	// The timeline has 20 slices of 100 ms, by completion time.
	got := summarize(samples, 2*time.Second)
	var total float64
	for i, p := range got.Timeline {
		total += p.RPS * 0.1
		if p.P50MS > p.P99MS || p.T != float64(i+1)/10 {
			t.Errorf("point %d: %+v", i, p)
		}
	}
	if len(got.Timeline) != 20 || int(math.Round(total)) != 1000-countAfter(samples, 2*time.Second) {
		t.Errorf("timeline (%v requests) %+v", total, got.Timeline)
	}
}

// countAfter counts samples completing at or after d (outside the timeline).
func countAfter(s []sample, d time.Duration) int {
	n := 0
	for _, x := range s {
		if x.at+x.lat >= d {
			n++
		}
	}
	return n
}

// The JSON of a result has the fields and names the issue fixes.
func TestResultJSONShape(t *testing.T) {
	r := Result{System: "walletd-postgres", Scenario: "hot", Users: 50, Wallets: 1, DurationS: 5, Requests: 10, OK: 10,
		RPS: 2, LatencyMS: Latency{P50: 1, P95: 2, P99: 3, P999: 4, Max: 5}, Checked: true}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"system", "scenario", "users", "wallets", "duration_s", "requests", "ok", "errors", "rps", "latency_ms", "discrepancies"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %q in %s", k, b)
		}
	}
	var lat map[string]float64
	if err := json.Unmarshal(m["latency_ms"], &lat); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(lat))
	for k := range lat {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"max", "p50", "p95", "p99", "p999"}) || lat["p999"] != 4 {
		t.Errorf("latency_ms %v", lat)
	}
	if string(m["discrepancies"]) != "0" || string(m["errors"]) != "0" {
		t.Errorf("zero counts must be present: %s", b)
	}
}

// sampleReport is a suite's outcome as RunSuite would build it.
func sampleReport() *Report {
	res := func(system, scenario string, users int, rps, p99 float64, disc int) Result {
		return Result{System: system, Scenario: scenario, Users: users, Wallets: map[string]int{ScenarioHot: 1, ScenarioUniform: 10000}[scenario],
			DurationS: 5, Requests: int64(rps * 5), OK: int64(rps * 5), RPS: rps, LatencyMS: Latency{P50: p99 / 4, P95: p99 / 2, P99: p99, P999: p99 * 2, Max: p99 * 3},
			Checked: system != SystemCeiling, Discrepancies: disc, Timeline: []Point{{T: 1, RPS: rps, P50MS: p99 / 4, P99MS: p99}, {T: 2, RPS: rps, P50MS: p99 / 4, P99MS: p99}},
			CPU: &CPUUse{Generator: 0.5, Server: 0.9, Postgres: 0.3, Machine: 1.9}}
	}
	r := &Report{Header: Header{Date: "2026-01-01T00:00:00Z", CPU: "Test CPU", Cores: 2, OS: "Linux", Go: "go1.26", Postgres: "PostgreSQL 15"}, Reference: PrototypeReference()}
	for _, users := range []int{50, 200} {
		r.Results = append(r.Results,
			res(SystemCeiling, ScenarioHot, users, 15000, 5, 0),
			res(SystemNaive, ScenarioHot, users, 400, 300, 0),
			res(SystemWalletdPostgres, ScenarioHot, users, 9000, 8, 0),
			res(SystemCeiling, ScenarioUniform, users, 15000, 5, 0),
			res(SystemNaive, ScenarioUniform, users, 1500, 60, 0),
			res(SystemWalletdPostgres, ScenarioUniform, users, 8000, 12, 0),
		)
	}
	return r
}

// A verdict drawn from repeated runs lists the runs it comes from, so a
// reader sees how near the bar each turn fell, and counts every run checked.
func TestAcceptanceListsRuns(t *testing.T) {
	r := sampleReport()
	for i, x := range r.Results {
		if x.Users != 50 {
			continue
		}
		switch {
		case x.System == SystemWalletdPostgres && x.Scenario == ScenarioHot:
			r.Results[i].Repeats = []RunFigures{{RPS: 9000, P99MS: 8}, {RPS: 7600, P99MS: 7}, {RPS: 9900, P99MS: 9}}
		case x.System == SystemNaive && x.Scenario == ScenarioHot:
			r.Results[i].Repeats = []RunFigures{{RPS: 400, P99MS: 300}, {RPS: 400, P99MS: 310}, {RPS: 450, P99MS: 290}}
		case x.System == SystemWalletdPostgres && x.Scenario == ScenarioUniform:
			r.Results[i].Repeats = []RunFigures{{RPS: 8000, P99MS: 12}, {RPS: 7000, P99MS: 25.5}, {RPS: 9000, P99MS: 9}}
		}
	}
	r.Finish(time.Minute)
	want := map[string]string{
		"hot wallet: walletd ≥ 20× naive throughput":    "lowest 22.50× (walletd-postgres, hot, 50 users; runs 22.50×, 19.00×, 22.00×)",
		"10,000 wallets: walletd ≥ 5× naive throughput": "lowest 5.33× (walletd-postgres, uniform, 50 users)",
		"walletd P99 at 50 users ≤ 20 ms":               "highest 12.00 ms (walletd-postgres, uniform; runs 12.00 ms, 25.50 ms, 9.00 ms)",
		// 8 checked rows, three of them standing for three runs each.
		"zero discrepancies (every checked run)": "0 in 14 checked runs",
	}
	checkActuals(t, r, want)
}

// checkActuals checks the verdicts' figures of the criteria want names
// (criterion → actual); criteria it does not name are not checked.
func checkActuals(t *testing.T, r *Report, want map[string]string) {
	t.Helper()
	for _, c := range r.Acceptance {
		if w, ok := want[c.Criterion]; ok {
			if c.Actual != w {
				t.Errorf("%s:\n got %q\nwant %q", c.Criterion, c.Actual, w)
			}
			delete(want, c.Criterion)
		}
	}
	if len(want) > 0 {
		t.Errorf("criteria missing: %v", want)
	}
}

// A missed throughput bar says what it needs, what the cores allow at the
// CPU walletd spent per request, how busy the run kept them and, with the
// store's figures, how much of each second it spent committing; a met bar,
// or a run without CPU figures, says none of it.
func TestAcceptanceWhatBounds(t *testing.T) {
	r := sampleReport()
	for i, x := range r.Results {
		if x.System == SystemWalletdPostgres && x.Scenario == ScenarioUniform {
			r.Results[i].RPS = 6000 // 4× the naive 1,500 at 1.9 cores busy: 317 µs a request
			if x.Users == 200 {
				r.Results[i].CPU = nil
			}
		}
	}
	r.Finish(time.Minute)
	bound := "; the bar needs 7,500 req/s; at 317 µs of the machine's CPU per request its 2 cores allow at most 6,320; the run kept 1.90 of them busy"
	want := map[string]string{
		"hot wallet: walletd ≥ 20× naive throughput":    "lowest 22.50× (walletd-postgres, hot, 50 users)",
		"10,000 wallets: walletd ≥ 5× naive throughput": "lowest 4.00× (walletd-postgres, uniform, 50 users)" + bound,
		"walletd ≥ 50% of the no-op ceiling":            "lowest 0.40× (walletd-postgres, uniform, 50 users)" + bound,
	}
	checkActuals(t, r, want)
	// With cores to spare and the store's commit figures, the verdict says
	// how busy both were: the run waited on its commits.
	for i, x := range r.Results {
		if x.System == SystemWalletdPostgres && x.Scenario == ScenarioUniform && x.Users == 50 {
			r.Results[i].CPU = &CPUUse{Generator: 0.2, Server: 0.8, Postgres: 0.5, Machine: 1.5}
			r.Results[i].Engine = &EngineStats{CommitsPerS: 355, EventsPerCommit: 16.9, CommitMS: 2.62}
		}
	}
	r.Finish(time.Minute)
	bound = "; the bar needs 7,500 req/s; at 250 µs of the machine's CPU per request its 2 cores allow at most 8,000; the run kept 1.50 of them busy" +
		"; the store was committing 0.93 s of every second (355 commits/s of 2.62 ms)"
	want["10,000 wallets: walletd ≥ 5× naive throughput"] = "lowest 4.00× (walletd-postgres, uniform, 50 users)" + bound
	want["walletd ≥ 50% of the no-op ceiling"] = "lowest 0.40× (walletd-postgres, uniform, 50 users)" + bound
	checkActuals(t, r, want)
	// The same miss without CPU figures (the 200-user run) names no bound.
	r.Results = slices.DeleteFunc(r.Results, func(x Result) bool { return x.Users == 50 })
	r.Finish(time.Minute)
	for _, c := range r.Acceptance {
		if strings.Contains(c.Actual, "the bar needs") {
			t.Errorf("%s: %q names a bound without CPU figures", c.Criterion, c.Actual)
		}
	}
}

func TestThousands(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{{0, "0"}, {12.4, "12"}, {999.6, "1,000"}, {7500, "7,500"}, {23345, "23,300"}, {1234567, "1,230,000"}} {
		if got := thousands(tc.v); got != tc.want {
			t.Errorf("thousands(%g) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestReportFinish(t *testing.T) {
	for _, tc := range []struct {
		name     string
		change   func(r *Report)
		failed   bool
		failing  []string // criteria that fail
		ratioHot float64  // walletd/naive, hot, 50 users
	}{
		{"healthy", func(*Report) {}, false, []string{"walletd P99 at 50 users ≤ 10 ms"}, 22.5},
		{"discrepancy", func(r *Report) { r.Results[2].Discrepancies = 1 }, true,
			[]string{"zero discrepancies (every checked run)", "walletd P99 at 50 users ≤ 10 ms"}, 22.5},
		{"slow hot wallet", func(r *Report) { r.Results[2].RPS = 4000 }, false,
			[]string{"hot wallet: walletd ≥ 20× naive throughput", "walletd ≥ 50% of the no-op ceiling", "walletd P99 at 50 users ≤ 10 ms"}, 10},
		{"errors", func(r *Report) { r.Results[2].OK-- }, false,
			[]string{"walletd: 100% success", "walletd P99 at 50 users ≤ 10 ms"}, 22.5},
		{"slow embedded store", func(r *Report) {
			for _, x := range slices.Clone(r.Results) {
				if x.System == SystemWalletdPostgres {
					x.System, x.RPS = SystemWalletdEmbedded, x.RPS/2
					x.LatencyMS.P99 *= 2 // 16 and 24 ms
					r.Results = append(r.Results, x)
				}
			}
		}, false, []string{"hot wallet: walletd ≥ 20× naive throughput", "10,000 wallets: walletd ≥ 5× naive throughput",
			"walletd ≥ 50% of the no-op ceiling", "walletd P99 at 50 users ≤ 20 ms", "walletd P99 at 50 users ≤ 10 ms",
			"walletd P99 at 50 users ≤ 10 ms, production configuration (walletd-postgres)"}, 22.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sampleReport()
			tc.change(r)
			r.Finish(time.Minute)
			if r.Failed != tc.failed {
				t.Errorf("failed %v", r.Failed)
			}
			var failing []string
			for _, c := range r.Acceptance {
				if !c.Pass {
					failing = append(failing, c.Criterion)
				}
			}
			if !slices.Equal(failing, tc.failing) {
				t.Errorf("failing %q, want %q (%+v)", failing, tc.failing, r.Acceptance)
			}
			production := 0
			for _, c := range r.Acceptance {
				if strings.Contains(c.Criterion, "production configuration") {
					production++
					if c.Pass == slices.Contains(tc.failing, c.Criterion) || !strings.Contains(c.Actual, SystemWalletdPostgres) {
						t.Errorf("%s: %s (pass %v), want walletd-postgres's figure", c.Criterion, c.Actual, c.Pass)
					}
				}
			}
			if want := map[bool]int{true: 4, false: 0}[tc.name == "slow embedded store"]; production != want {
				t.Errorf("%d production-configuration lines, want %d", production, want)
			}
			if wantRatios := map[bool]int{true: 16, false: 8}[tc.name == "slow embedded store"]; len(r.Ratios) != wantRatios || r.Ratios[0].Versus != SystemNaive || r.Ratios[0].RPS != tc.ratioHot {
				t.Errorf("ratios %+v", r.Ratios)
			}
		})
	}
}

// The files are written, the SVG is well-formed XML with the expected
// panels, and the Markdown names the machine and every result.
func TestReportFiles(t *testing.T) {
	r := sampleReport()
	r.Profile = &ProfileSummary{System: SystemWalletdPostgres, File: "x-cpu.prof", Duration: "5s", Run: r.Results[2],
		Flat: []FuncTime{{"runtime.futex", 10}}, Cum: []FuncTime{{"net/http.(*conn).serve", 60}}, Packages: []FuncTime{{"runtime", 40}}}
	r.Finish(time.Minute)
	dir := t.TempDir()
	if err := r.WriteFiles(dir, "2026-01-01"); err != nil {
		t.Fatal(err)
	}
	svg, err := os.ReadFile(filepath.Join(dir, "2026-01-01.svg"))
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(strings.NewReader(string(svg)))
	rects, lines := 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			switch se.Name.Local {
			case "rect":
				rects++
			case "polyline":
				lines++
			}
		}
	}
	// Background, 3 legend boxes, 12 bars in each of two panels.
	if rects != 1+3+24 || lines != 3 {
		t.Errorf("SVG has %d rects and %d polylines", rects, lines)
	}
	md, err := os.ReadFile(filepath.Join(dir, "2026-01-01.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Test CPU, 2 cores", "PostgreSQL 15", "go1.26", "## Acceptance", "## Results", "naive-postgres", "ceiling",
		"18-20 requests/s", "2026-01-01.svg", "`runtime.futex`", "x-cpu.prof"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	var back Report
	js, _ := os.ReadFile(filepath.Join(dir, "2026-01-01.json"))
	if err := json.Unmarshal(js, &back); err != nil || len(back.Results) != 12 || back.Header.CPU != "Test CPU" {
		t.Errorf("JSON: %v, %d results", err, len(back.Results))
	}
}

func TestParseTop(t *testing.T) {
	out := `File: walletd
Type: cpu
Duration: 5s, Total samples = 4.20s (84.00%)
Showing nodes accounting for 4.20s, 100% of 4.20s total
      flat  flat%   sum%        cum   cum%
     0.63s 15.00% 15.00%      0.63s 15.00%  internal/runtime/syscall/linux.Syscall6
     0.21s  5.00% 20.00%      0.42s 10.00%  runtime.mapaccess2_faststr
     0.10s  2.38% 22.38%      1.00s 23.81%  github.com/walletd/walletd/actors.(*walletActor).Receive
     0.05s  1.19% 23.57%      0.05s  1.19%  net/http.(*chunkWriter).writeHeader (inline)
`
	d, flat := parseTop(out, false)
	_, cum := parseTop(out, true)
	if d != "5s, Total samples = 4.20s (84.00%)" || len(flat) != 4 || flat[0] != (FuncTime{"internal/runtime/syscall/linux.Syscall6", 15}) ||
		cum[2] != (FuncTime{"github.com/walletd/walletd/actors.(*walletActor).Receive", 23.81}) {
		t.Fatalf("duration %q flat %v cum %v", d, flat, cum)
	}
	for fn, pkg := range map[string]string{
		"internal/runtime/syscall/linux.Syscall6":                  "internal/runtime/syscall/linux",
		"runtime.mapaccess2_faststr":                               "runtime",
		"github.com/walletd/walletd/actors.(*walletActor).Receive": "github.com/walletd/walletd/actors",
		"net/http.(*chunkWriter).writeHeader (inline)":             "net/http",
		"github.com/jackc/pgx/v5/pgconn.(*PgConn).ExecBatch.func1": "github.com/jackc/pgx/v5/pgconn",
		"aeshashbody": "aeshashbody",
	} {
		if got := packageOf(fn); got != pkg {
			t.Errorf("packageOf(%q) = %q, want %q", fn, got, pkg)
		}
	}
}

func TestStatCPU(t *testing.T) {
	// The command name may hold spaces and parentheses.
	stat := "1234 (post gres (x)) S 1 2 3 4 5 6 7 8 9 10 150 50 7 3 20 0 1 0"
	if got := statCPU(stat, false); got != 2*time.Second {
		t.Errorf("own %v", got)
	}
	if got := statCPU(stat, true); got != 2100*time.Millisecond {
		t.Errorf("with children %v", got)
	}
	if statCPU("garbage", true) != 0 {
		t.Error("garbage")
	}
	u := CPUSample{Wall: 2 * time.Second, Generator: time.Second, Server: 2 * time.Second, Busy: 4 * time.Second}.Sub(CPUSample{Wall: time.Second})
	if u != (CPUUse{Generator: 1, Server: 2, Machine: 4}) || u.Other() != 1 {
		t.Errorf("use %+v other %v", u, u.Other())
	}
}

func TestScrapeEngine(t *testing.T) {
	text := "# HELP x\nwalletd_journal_batch_events_sum %v\nwalletd_journal_batch_events_count %v\nwalletd_journal_batch_writes_sum %v\n" +
		"walletd_journal_commit_duration_seconds_sum %v\nwalletd_snapshot_writes_total %v\nother_metric{a=\"b\"} 3\n"
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, body)
	}))
	defer srv.Close()
	body = fmt.Sprintf(text, 100, 10, 20, 0.05, 1)
	a := scrapeEngine(context.Background(), srv.URL)
	body = fmt.Sprintf(text, 1100, 110, 220, 0.55, 3)
	b := scrapeEngine(context.Background(), srv.URL)
	b.at = a.at.Add(2 * time.Second)
	got := b.stats(a)
	want := EngineStats{CommitsPerS: 50, EventsPerCommit: 10, WritesPerCommit: 2, CommitMS: 5, SnapshotsPerS: 1}
	if got == nil || *got != want {
		t.Fatalf("stats %+v, want %+v", got, want)
	}
	// A server without the metrics (naive, ceiling) has no stats.
	body = "other_metric 1\n"
	if s := scrapeEngine(context.Background(), srv.URL).stats(scrapeEngine(context.Background(), srv.URL)); s != nil {
		t.Fatalf("stats of a server without them: %+v", s)
	}
}

// TestMedianRun: repeated runs fold into the median one by throughput (the
// lower middle for an even count), every run's figures kept in order; money
// problems and failed runs anywhere count, whichever run is shown.
func TestMedianRun(t *testing.T) {
	run := func(rps float64, ok, reqs int64, disc int) Result {
		r := Result{System: SystemWalletdPostgres, RPS: rps, Requests: reqs, OK: ok, Discrepancies: disc, LatencyMS: Latency{P99: rps / 1000}}
		for range disc {
			r.DiscrepancyDetails = append(r.DiscrepancyDetails, Discrepancy{Wallet: fmt.Sprint(rps)})
		}
		return r
	}
	one := run(5, 10, 10, 0)
	if got := MedianRun([]Result{one}); got.RPS != 5 || got.Repeats != nil {
		t.Fatalf("one run: %+v", got)
	}
	m := MedianRun([]Result{run(10, 100, 100, 0), run(30, 99, 100, 1), run(20, 100, 100, 0)})
	if m.RPS != 20 || m.LatencyMS.P99 != 0.02 || m.Discrepancies != 1 || len(m.DiscrepancyDetails) != 1 || !m.Failed() {
		t.Fatalf("median of three: %+v", m)
	}
	if len(m.Repeats) != 3 || m.Repeats[0].RPS != 10 || m.Repeats[1].RPS != 30 || m.Repeats[1].Discrepancies != 1 {
		t.Fatalf("repeats %+v", m.Repeats)
	}
	if s := m.LowestSuccessPct(); s != 99 || m.SuccessPct() != 100 {
		t.Fatalf("lowest success %v (median run's %v), want 99", s, m.SuccessPct())
	}
	if m := MedianRun([]Result{run(40, 5, 5, 0), run(10, 5, 5, 0)}); m.RPS != 10 {
		t.Fatalf("median of two: %v, want the lower", m.RPS)
	}
	if m := MedianRun([]Result{run(10, 5, 5, 0), run(20, 5, 5, 0), run(0, 0, 0, 0)}); !m.Failed() || m.RPS != 10 {
		t.Fatalf("a run that measured nothing must fail the median (%v): %+v", m.Failed(), m)
	}
}

// With repeated runs, each walletd ratio also lists run n against the other
// system's run n (the same turn of the suite); systems without the same
// number of runs get none, and the Markdown shows them only when there are.
func TestReportRunRatios(t *testing.T) {
	r := sampleReport()
	runs := func(rps ...float64) []RunFigures {
		out := make([]RunFigures, len(rps))
		for i, v := range rps {
			out[i] = RunFigures{RPS: v, Requests: 10, OK: 10}
		}
		return out
	}
	r.Results[1].Repeats = runs(400, 500, 250)    // naive, hot, 50 users
	r.Results[2].Repeats = runs(9000, 8000, 6000) // walletd-postgres, hot, 50 users
	r.Finish(time.Minute)
	var naive, ceiling *Ratio
	for i, x := range r.Ratios {
		if x.Scenario == ScenarioHot && x.Users == 50 {
			if x.Versus == SystemNaive {
				naive = &r.Ratios[i]
			} else {
				ceiling = &r.Ratios[i]
			}
		}
	}
	if naive == nil || !slices.Equal(naive.RunRPS, []float64{22.5, 16, 24}) || ceiling == nil || ceiling.RunRPS != nil {
		t.Fatalf("ratios: %+v / %+v", naive, ceiling)
	}
	md := r.Markdown("x")
	if !strings.Contains(md, "of each turn") || !strings.Contains(md, "| 22.50 | 22.50, 16.00, 24.00 |") {
		t.Errorf("Markdown:\n%s", md)
	}
	plain := sampleReport()
	plain.Finish(time.Minute)
	if md := plain.Markdown("x"); !strings.Contains(md, "| throughput × | P99 × |") || strings.Contains(md, "of each turn") {
		t.Errorf("a suite without repeats:\n%s", md)
	}
}
