package bench

import (
	"fmt"
	"slices"
	"strings"
)

// Markdown renders the report for people; name is the base name of the
// results files (the chart is name.svg beside it).
func (r *Report) Markdown(name string) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	h := r.Header
	p("# walletd benchmark — %s\n\n", name)
	verdict := "**All runs checked clean.**"
	if r.Failed {
		verdict = "**FAILED: a run lost, invented or double-applied money, or measured nothing — see the discrepancies below.**"
	}
	p("%s Every wallet was read back after every run and compared with the harness's ledger of acknowledged transactions (balance, version, and the journal: contiguous versions, each acknowledged tx_id exactly once at the version it was acknowledged with).\n\n", verdict)

	p("| | |\n| --- | --- |\n")
	p("| Date | %s |\n", h.Date)
	p("| CPU | %s, %d cores |\n", h.CPU, h.Cores)
	if h.MemoryGiB > 0 {
		p("| Memory | %.1f GiB |\n", h.MemoryGiB)
	}
	p("| OS | %s |\n", h.OS)
	p("| Go | %s |\n", h.Go)
	if h.Postgres != "" {
		p("| Postgres | %s |\n", h.Postgres)
	}
	if h.Commit != "" {
		p("| walletd commit | %s |\n", h.Commit)
	}
	p("| Load generator | %s |\n", h.Generator)
	if h.LoadAvg != "" {
		p("| Load average at start | %s (1, 5, 15 min) |\n", h.LoadAvg)
	}
	if q := h.Quiet; q != nil {
		if q.Settled {
			p("| Machine before the first run | %.2f of %d cores busy (1 s), after waiting %g s for it to settle |\n", q.BusyCores, h.Cores, q.WaitedS)
		} else {
			p("| Machine before the first run | **still %.2f of %d cores busy after waiting %g s**: something else is using the machine, and every figure is lower and noisier for it |\n", q.BusyCores, h.Cores, q.WaitedS)
		}
	}
	if sp := h.Speed; sp != nil {
		line := sp.Before.String() + " before the first run"
		if a := sp.After; a != nil {
			line += "; " + a.String() + " after the last"
		}
		p("| Machine speed | %s (fixed workloads: compare figures only between runs whose machine ran them alike; the naive design follows the Postgres commit) |\n", line)
	}
	s := h.Settings
	p("| Runs | %s loop, %s API, %g s measured after %g s warm-up, mix %s; hot = one wallet, uniform = %d wallets; naive pool %d connections |\n",
		s.Mode, s.Format, s.DurationS, s.WarmupS, s.Mix, s.Wallets, s.NaiveConns)
	if s.Repeat > 1 {
		p("| Repeats | every scenario %d times per system, the systems taking turns; each row is the median run by throughput (all runs' req/s in the last column), discrepancies add up every run's |\n", s.Repeat)
	}
	p("| Took | %.0f s |\n\n", r.TookS)
	for _, sk := range r.Skipped {
		p("> Skipped %s\n\n", sk)
	}

	if len(r.Acceptance) > 0 {
		p("## Acceptance\n\n| criterion | | actual |\n| --- | --- | --- |\n")
		for _, c := range r.Acceptance {
			mark := "pass"
			if !c.Pass {
				mark = "**FAIL**"
				if c.Goal {
					mark = "not met"
				}
			}
			kind := ""
			if c.Goal {
				kind = " (goal)"
			}
			p("| %s%s | %s | %s |\n", c.Criterion, kind, mark, c.Actual)
		}
		p("\n")
	}

	p("## Results\n\n")
	p("Latency in ms, measured by the client from send to full reply (keep-alive connections). Success: HTTP 200 with a valid reply. CPU in cores (of %d) while measuring: the load generator, the server process, all Postgres processes, and everything else on the machine (kernel work not charged to a process, other programs). *µs/req*: CPU microseconds per request of the server and of Postgres, which barely moves when other programs take cores away.\n\n", h.Cores)
	runsCol, runsSep := "", ""
	if r.Header.Settings.Repeat > 1 {
		runsCol, runsSep = " req/s of each run |", " --- |"
	}
	p("| system | scenario | users | wallets | req/s | success | P50 | P95 | P99 | P99.9 | max | discrepancies | CPU gen / server / pg / other | µs/req server / pg |%s\n", runsCol)
	p("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |%s\n", runsSep)
	for _, x := range r.Results {
		disc := "n/a (stateless)"
		if x.Checked {
			disc = fmt.Sprint(x.Discrepancies)
			if x.Discrepancies > 0 {
				disc = "**" + disc + "**"
			}
		}
		cpu, per := "", ""
		if x.CPU != nil {
			cpu = fmt.Sprintf("%.2f / %.2f / %.2f / %.2f", x.CPU.Generator, x.CPU.Server, x.CPU.Postgres, x.CPU.Other())
			if _, srv, pg := x.CPU.PerRequest(x.RPS); srv > 0 {
				per = fmt.Sprintf("%.0f / %.0f", srv, pg)
			}
		}
		runs := ""
		if runsCol != "" {
			var each []string
			for _, f := range x.Repeats {
				each = append(each, fmt.Sprintf("%.0f", f.RPS))
			}
			runs = " " + strings.Join(each, ", ") + " |"
		}
		p("| %s | %s | %d | %d | %.0f | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %s | %s | %s |%s\n",
			x.System, x.Scenario, x.Users, x.Wallets, x.RPS, pct(x), x.LatencyMS.P50, x.LatencyMS.P95, x.LatencyMS.P99, x.LatencyMS.P999, x.LatencyMS.Max, disc, cpu, per, runs)
	}
	p("\n")
	engine := false
	for _, x := range r.Results {
		engine = engine || x.Engine != nil
	}
	if engine {
		p("walletd's group commit while measuring (from its own /metrics): commits per second, journal events and wallet writes per commit, mean commit time, snapshots written per second.\n\n")
		p("| system | scenario | users | commits/s | events/commit | wallet writes/commit | commit ms | snapshots/s |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, x := range r.Results {
			if e := x.Engine; e != nil {
				p("| %s | %s | %d | %.0f | %.1f | %.1f | %.2f | %.1f |\n", x.System, x.Scenario, x.Users, e.CommitsPerS, e.EventsPerCommit, e.WritesPerCommit, e.CommitMS, e.SnapshotsPerS)
			}
		}
		p("\n")
	}
	for _, x := range r.Results {
		if len(x.ErrorCodes) > 0 {
			p("- %s %s %d users: errors %v\n", x.System, x.Scenario, x.Users, x.ErrorCodes)
		}
		for _, d := range x.DiscrepancyDetails {
			p("- %s %s %d users: discrepancy %s\n", x.System, x.Scenario, x.Users, d)
		}
	}

	if len(r.Ratios) > 0 {
		p("\n## walletd against the baseline and the ceiling\n\n")
		p("Throughput ratio > 1: walletd serves more. P99 ratio < 1: walletd answers faster.\n\n")
		repeated := slices.ContainsFunc(r.Ratios, func(x Ratio) bool { return len(x.RunRPS) > 0 })
		if repeated {
			p("With repeated runs, *throughput ×* compares the median runs, and *of each turn* each run with the other system's run of the same turn of the suite.\n\n")
			p("| scenario | users | walletd | versus | throughput × | of each turn | P99 × |\n| --- | ---: | --- | --- | ---: | --- | ---: |\n")
		} else {
			p("| scenario | users | walletd | versus | throughput × | P99 × |\n| --- | ---: | --- | --- | ---: | ---: |\n")
		}
		for _, x := range r.Ratios {
			if !repeated {
				p("| %s | %d | %s | %s | %.2f | %.2f |\n", x.Scenario, x.Users, x.Walletd, x.Versus, x.RPS, x.P99)
				continue
			}
			turns := make([]string, len(x.RunRPS))
			for i, v := range x.RunRPS {
				turns[i] = fmt.Sprintf("%.2f", v)
			}
			p("| %s | %d | %s | %s | %.2f | %s | %.2f |\n", x.Scenario, x.Users, x.Walletd, x.Versus, x.RPS, strings.Join(turns, ", "), x.P99)
		}
	}

	ref := r.Reference
	p("\n## For context: the prototype\n\n")
	p("The prototype's own load script reported %s requests/s, P50 %.0f ms, P95 %.0f ms and %.0f%% success at %d users (%s).\n",
		ref.RPS, ref.P50MS, ref.P95MS, ref.SuccessPct, ref.Users, ref.Note)

	p("\n## Chart\n\n![throughput and P99 per scenario and system; latency over time of one run](%s.svg)\n", name)

	if pr := r.Profile; pr != nil {
		p("\n## Where walletd's CPU goes\n\n")
		p("CPU profile of the %s process during one more run (%s, %d users, %.0f req/s while profiled; not part of the figures above): `%s` (%s). Open it with `go tool pprof -http=: %s`.\n\n",
			pr.System, pr.Run.Scenario, pr.Run.Users, pr.Run.RPS, fileBase(pr.File), pr.Duration, fileBase(pr.File))
		if pr.Run.CPU != nil {
			c := pr.Run.CPU
			p("While profiled the machine was %.0f%% busy: load generator %.2f cores, walletd %.2f, Postgres %.2f, other %.2f.\n\n", 100*c.Machine/float64(h.Cores), c.Generator, c.Server, c.Postgres, c.Other())
		}
		p("Flat time by package (CPU spent in the package's own code):\n\n| package | %% of walletd's CPU |\n| --- | ---: |\n")
		for _, f := range pr.Packages {
			p("| `%s` | %.1f |\n", f.Name, f.Pct)
		}
		p("\nTop functions by flat time:\n\n| function | flat %% |\n| --- | ---: |\n")
		for _, f := range pr.Flat[:min(len(pr.Flat), 15)] {
			p("| `%s` | %.1f |\n", f.Name, f.Pct)
		}
		p("\nTop functions by cumulative time (time spent in them and what they call):\n\n| function | cum %% |\n| --- | ---: |\n")
		for _, f := range pr.Cum[:min(len(pr.Cum), 20)] {
			p("| `%s` | %.1f |\n", f.Name, f.Pct)
		}
	}
	p("\n## Reproduce\n\n`make bench` (needs Postgres on 127.0.0.1:5432, user postgres, trust), or `go run ./cmd/walletbench suite -h` for the knobs. How to read this file: docs/benchmarks.md.\n")
	return b.String()
}

// pct is the success of x, the lowest of its runs when repeated.
func pct(x Result) string {
	if s := x.LowestSuccessPct(); s < 100 {
		return fmt.Sprintf("%.3f%%", s)
	}
	return "100%"
}

func fileBase(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}
