package bench

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ProfileSummary is what a CPU profile of walletd under load says, in a
// form a report can print: the functions that burn the most CPU themselves
// (flat), the ones under which most CPU is spent (cumulative), and the flat
// time per package.
type ProfileSummary struct {
	System   string     `json:"system"`
	Run      Result     `json:"run"` // the profiled run (not part of the comparison)
	File     string     `json:"file"`
	Duration string     `json:"duration"` // as pprof reports it: wall time and samples
	Flat     []FuncTime `json:"flat"`
	Cum      []FuncTime `json:"cumulative"`
	Packages []FuncTime `json:"packages"`
}

// FuncTime is a function's (or package's) share of the profile.
type FuncTime struct {
	Name string  `json:"name"`
	Pct  float64 `json:"pct"` // of all samples
}

// SummarizeProfile reads a CPU profile with go tool pprof.
func SummarizeProfile(ctx context.Context, path string) (*ProfileSummary, error) {
	flat, err := goTool(ctx, "pprof", "-top", "-nodecount=100000", path)
	if err != nil {
		return nil, err
	}
	cum, err := goTool(ctx, "pprof", "-top", "-cum", "-nodecount=40", path)
	if err != nil {
		return nil, err
	}
	s := &ProfileSummary{File: path}
	s.Duration, s.Flat = parseTop(flat, false)
	_, s.Cum = parseTop(cum, true)
	byPkg := map[string]float64{}
	for _, f := range s.Flat {
		byPkg[packageOf(f.Name)] += f.Pct
	}
	for p, pct := range byPkg {
		s.Packages = append(s.Packages, FuncTime{Name: p, Pct: round1(pct)})
	}
	slices.SortFunc(s.Packages, func(a, b FuncTime) int {
		if a.Pct != b.Pct {
			if a.Pct > b.Pct {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	s.Flat = s.Flat[:min(len(s.Flat), 20)]
	s.Packages = s.Packages[:min(len(s.Packages), 15)]
	// The cumulative list starts with the roots every goroutine shares
	// (runtime.goexit, ...): keep it, it is what pprof shows, but cap it.
	s.Cum = s.Cum[:min(len(s.Cum), 25)]
	return s, nil
}

// parseTop reads `go tool pprof -top` output: a "Duration:" line, then rows
// of flat, flat%, sum%, cum, cum%, name. It returns the flat% (or, with cum,
// the cum%) of each row.
func parseTop(out string, cum bool) (duration string, rows []FuncTime) {
	inRows := false
	for _, line := range strings.Split(out, "\n") {
		if d, ok := strings.CutPrefix(line, "Duration: "); ok {
			duration = strings.TrimSpace(d)
			continue
		}
		f := strings.Fields(line)
		if len(f) >= 5 && f[0] == "flat" && f[1] == "flat%" {
			inRows = true
			continue
		}
		if !inRows || len(f) < 6 {
			continue
		}
		col := f[1]
		if cum {
			col = f[4]
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(col, "%"), 64)
		if err != nil {
			continue
		}
		rows = append(rows, FuncTime{Name: strings.Join(f[5:], " "), Pct: pct})
	}
	return duration, rows
}

// packageOf returns the package path of a pprof function name:
// "github.com/x/y.(*T).M" → "github.com/x/y", "runtime.mallocgc" → "runtime".
func packageOf(fn string) string {
	fn = strings.TrimSuffix(fn, " (inline)")
	slash := strings.LastIndexByte(fn, '/')
	if dot := strings.IndexByte(fn[slash+1:], '.'); dot >= 0 {
		return fn[:slash+1+dot]
	}
	return fn
}

// String is a short text form for logs.
func (f FuncTime) String() string { return fmt.Sprintf("%5.1f%% %s", f.Pct, f.Name) }
