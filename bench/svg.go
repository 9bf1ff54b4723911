package bench

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// systemColors: one color per system, the same in every panel.
func systemColor(system string) string {
	switch system {
	case SystemCeiling:
		return "#9e9e9e"
	case SystemNaive:
		return "#d62728"
	case SystemWalletdEmbedded:
		return "#1f77b4"
	case SystemWalletdPostgres:
		return "#2ca02c"
	}
	return "#ff7f0e"
}

// SVG draws the report's chart by hand (no dependency): throughput and P99
// per scenario and system, on log scales so the baseline and the ceiling
// fit on one axis, and latency over time of one walletd run.
func (r *Report) SVG() string {
	const width, panelH = 960, 300
	var b strings.Builder
	groups, systems := r.groupsAndSystems()
	height := 3*panelH + 60
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	// Legend.
	x := 70.0
	for _, s := range systems {
		fmt.Fprintf(&b, `<rect x="%.0f" y="12" width="12" height="12" fill="%s"/><text x="%.0f" y="22">%s</text>`+"\n", x, systemColor(s), x+16, esc(s))
		x += 24 + 7.5*float64(len(s))
	}
	y0 := 40.0
	r.barPanel(&b, y0, width, panelH, "Throughput (requests/s, log scale)", groups, systems, func(x Result) float64 { return x.RPS }, "%.0f")
	r.barPanel(&b, y0+panelH, width, panelH, "P99 latency (ms, log scale)", groups, systems, func(x Result) float64 { return x.LatencyMS.P99 }, "%.1f")
	r.timelinePanel(&b, y0+2*panelH, width, panelH)
	b.WriteString("</svg>\n")
	return b.String()
}

type group struct {
	scenario string
	users    int
}

// groupsAndSystems lists the scenario/users groups and the systems, in the
// order the results came.
func (r *Report) groupsAndSystems() ([]group, []string) {
	var gs []group
	var ss []string
	for _, x := range r.Results {
		g := group{x.Scenario, x.Users}
		found := false
		for _, h := range gs {
			found = found || h == g
		}
		if !found {
			gs = append(gs, g)
		}
		found = false
		for _, s := range ss {
			found = found || s == x.System
		}
		if !found {
			ss = append(ss, x.System)
		}
	}
	return gs, ss
}

// barPanel draws grouped bars of value on a log10 axis.
func (r *Report) barPanel(b *strings.Builder, top float64, width, height int, title string, groups []group, systems []string, value func(Result) float64, format string) {
	left, right, bottom := 70.0, float64(width)-20, top+float64(height)-50
	plotTop := top + 30
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" font-size="14" font-weight="bold">%s</text>`+"\n", left, top+16, esc(title))
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, x := range r.Results {
		if v := value(x); v > 0 {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if math.IsInf(lo, 1) {
		return
	}
	dLo, dHi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dHi == dLo {
		dHi++
	}
	yOf := func(v float64) float64 {
		return bottom - (math.Log10(v)-dLo)/(dHi-dLo)*(bottom-plotTop)
	}
	for d := dLo; d <= dHi; d++ {
		y := yOf(math.Pow(10, d))
		fmt.Fprintf(b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/><text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n",
			left, y, right, y, left-6, y+4, tick(math.Pow(10, d)))
	}
	fmt.Fprintf(b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#333"/>`+"\n", left, bottom, right, bottom)
	if len(groups) == 0 {
		return
	}
	gw := (right - left) / float64(len(groups))
	bw := math.Min(40, (gw-20)/float64(max(len(systems), 1)))
	for gi, g := range groups {
		gx := left + float64(gi)*gw + (gw-bw*float64(len(systems)))/2
		for si, s := range systems {
			x, ok := r.find(s, g.scenario, g.users)
			if !ok || value(x) <= 0 {
				continue
			}
			v := value(x)
			y := yOf(v)
			bx := gx + float64(si)*bw
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s %d users: %s</title></rect>`+"\n",
				bx, y, bw-2, bottom-y, systemColor(s), esc(s), esc(g.scenario), g.users, fmt.Sprintf(format, v))
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="10" text-anchor="middle">%s</text>`+"\n", bx+(bw-2)/2, y-3, fmt.Sprintf(format, v))
		}
		label := g.scenario
		if g.scenario == ScenarioUniform {
			if x, ok := r.anyIn(g); ok {
				label = fmt.Sprintf("%d wallets", x.Wallets)
			}
		} else if g.scenario == ScenarioHot {
			label = "hot wallet"
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s, %d users</text>`+"\n", left+float64(gi)*gw+gw/2, bottom+18, esc(label), g.users)
	}
}

// anyIn returns a result of group g (for its wallet count).
func (r *Report) anyIn(g group) (Result, bool) {
	for _, x := range r.Results {
		if x.Scenario == g.scenario && x.Users == g.users {
			return x, true
		}
	}
	return Result{}, false
}

// timelineRun picks the run whose latency over time is drawn: walletd on
// Postgres (production) with the most users on many wallets, else any
// walletd run, else the first.
func (r *Report) timelineRun() (Result, bool) {
	best, found := Result{}, false
	score := func(x Result) int {
		s := 0
		switch x.System {
		case SystemWalletdPostgres:
			s += 100
		case SystemWalletdEmbedded:
			s += 50
		}
		if x.Scenario == ScenarioUniform {
			s += 10
		}
		return s*10000 + x.Users
	}
	for _, x := range r.Results {
		if len(x.Timeline) > 0 && (!found || score(x) > score(best)) {
			best, found = x, true
		}
	}
	return best, found
}

// timelinePanel draws P50 and P99 over time (left axis, ms) and the
// throughput (right axis) of one run.
func (r *Report) timelinePanel(b *strings.Builder, top float64, width, height int) {
	x, ok := r.timelineRun()
	if !ok {
		return
	}
	left, right, bottom := 70.0, float64(width)-70, top+float64(height)-50
	plotTop := top + 30
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" font-size="14" font-weight="bold">%s</text>`+"\n", left, top+16,
		esc(fmt.Sprintf("Latency over time: %s, %s, %d users, %d wallets (measured phase)", x.System, x.Scenario, x.Users, x.Wallets)))
	maxMS, maxRPS, maxT := 0.0, 0.0, 0.0
	for _, p := range x.Timeline {
		maxMS, maxRPS, maxT = math.Max(maxMS, p.P99MS), math.Max(maxRPS, p.RPS), math.Max(maxT, p.T)
	}
	msTop, rpsTop := niceCeil(maxMS), niceCeil(maxRPS)
	xOf := func(t float64) float64 { return left + t/math.Max(maxT, 1)*(right-left) }
	yMS := func(v float64) float64 { return bottom - v/msTop*(bottom-plotTop) }
	yRPS := func(v float64) float64 { return bottom - v/rpsTop*(bottom-plotTop) }
	for i := 0; i <= 4; i++ {
		f := float64(i) / 4
		y := bottom - f*(bottom-plotTop)
		fmt.Fprintf(b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, right, y)
		fmt.Fprintf(b, `<text x="%.0f" y="%.1f" text-anchor="end">%s ms</text>`+"\n", left-6, y+4, trimFloat(f*msTop))
		fmt.Fprintf(b, `<text x="%.0f" y="%.1f" fill="#888">%s/s</text>`+"\n", right+6, y+4, tick(f*rpsTop))
	}
	fmt.Fprintf(b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#333"/>`+"\n", left, bottom, right, bottom)
	for s := 0.0; s <= maxT+1e-9; s += math.Max(1, math.Round(maxT/10)) {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%.0fs</text>`+"\n", xOf(s), bottom+14, s)
	}
	line := func(color string, dash string, y func(Point) float64) {
		var pts []string
		for _, p := range x.Timeline {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xOf(p.T), y(p)))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" %s points="%s"/>`+"\n", color, dash, strings.Join(pts, " "))
	}
	line("#bbb", `stroke-dasharray="4 3"`, func(p Point) float64 { return yRPS(p.RPS) })
	line(systemColor(x.System), "", func(p Point) float64 { return yMS(p.P99MS) })
	line("#000", "", func(p Point) float64 { return yMS(p.P50MS) })
	ly := bottom + 34
	fmt.Fprintf(b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2"/><text x="%.0f" y="%.0f">P99</text>`+"\n", left, ly, left+24, ly, systemColor(x.System), left+30, ly+4)
	fmt.Fprintf(b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#000" stroke-width="2"/><text x="%.0f" y="%.0f">P50</text>`+"\n", left+80, ly, left+104, ly, left+110, ly+4)
	fmt.Fprintf(b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#bbb" stroke-width="2" stroke-dasharray="4 3"/><text x="%.0f" y="%.0f">requests/s (right axis)</text>`+"\n", left+160, ly, left+184, ly, left+190, ly+4)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// tick formats an axis value: 1, 10, 100, 1k, 10k.
func tick(v float64) string {
	switch {
	case v >= 1e6:
		return trimFloat(v/1e6) + "M"
	case v >= 1e3:
		return trimFloat(v/1e3) + "k"
	}
	return trimFloat(v)
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

func esc(s string) string { return html.EscapeString(s) }
