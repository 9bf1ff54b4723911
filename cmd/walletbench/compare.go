package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/walletd/walletd/bench"
)

// compareCmd runs the same `run` against two walletd builds (or one build
// with two environments), in pairs, alternating which goes first, and says
// whether the difference shows in every pair. On a 2-core VM one run of
// each tells nothing: the same binary twice can differ by a third.
func compareCmd(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: walletbench compare [-a BIN] [-b BIN] [-a-env K=V] [-b-env K=V] [-pairs N] -- RUN FLAGS")
		fmt.Fprintln(stderr, "  e.g. walletbench compare -a /tmp/walletd-old -b bin/walletd -- -target postgres -wallets 10000 -users 50 -duration 6s")
		fmt.Fprintln(stderr, "  Without -a/-b both sides are walletd built from this tree: an A/A run shows the machine's own noise.")
		fs.PrintDefaults()
	}
	binA := fs.String("a", "", "walletd binary A (default: go build of this tree)")
	binB := fs.String("b", "", "walletd binary B (default: the same as A)")
	var envA, envB []string
	fs.Func("a-env", "KEY=VALUE for A's walletd (repeatable)", func(v string) error { envA = append(envA, v); return nil })
	fs.Func("b-env", "KEY=VALUE for B's walletd (repeatable)", func(v string) error { envB = append(envB, v); return nil })
	pairs := fs.Int("pairs", 5, "pairs of runs")
	jsonOut := fs.String("json", "", "also write the comparison and every run as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return exitProblem, err
	}
	runArgs := fs.Args()
	if *pairs < 1 {
		return exitProblem, errors.New("-pairs must be at least 1")
	}
	if !startsWalletd(runArgs) {
		return exitProblem, errors.New("the run flags after -- must say -target embedded or -target postgres: compare starts each walletd itself")
	}
	for _, f := range []string{"walletd-bin", "json", "walletd-env"} {
		if hasFlag(runArgs, f) {
			return exitProblem, fmt.Errorf("-%s is set by compare for each run; leave it out of the run flags", f)
		}
	}

	tmp, err := os.MkdirTemp("", "walletbench-compare-")
	if err != nil {
		return exitProblem, err
	}
	defer os.RemoveAll(tmp)
	if *binA == "" {
		fmt.Fprintln(stdout, "building walletd")
		if *binA, err = bench.BuildWalletd(ctx, tmp, false); err != nil {
			return exitProblem, err
		}
	}
	if *binB == "" {
		*binB = *binA
	}
	fmt.Fprintf(stdout, "A: %s %s\nB: %s %s\n", *binA, strings.Join(envA, " "), *binB, strings.Join(envB, " "))

	side := func(name, bin string, env []string, i int) (bench.Result, error) {
		js := filepath.Join(tmp, fmt.Sprintf("%s%d.json", name, i))
		a := append(slices.Clone(runArgs), "-walletd-bin", bin, "-json", js)
		for _, e := range env {
			a = append(a, "-walletd-env", e)
		}
		var out strings.Builder
		code, err := runCmd(ctx, a, &out, stderr)
		if err != nil {
			return bench.Result{}, fmt.Errorf("%s, pair %d: %w", name, i+1, err)
		}
		var res bench.Result
		b, err := os.ReadFile(js)
		if err == nil {
			err = json.Unmarshal(b, &res)
		}
		if err != nil {
			return bench.Result{}, fmt.Errorf("%s, pair %d: no result (exit %d): %w\n%s", name, i+1, code, err, out.String())
		}
		fmt.Fprintf(stdout, "pair %d %s  %s\n", i+1, name, res.Line())
		return res, nil
	}
	var ps []bench.Pair
	for i := range *pairs {
		var p bench.Pair
		// A first in odd pairs, B first in even ones: a machine that speeds
		// up or slows down over the comparison favours neither.
		first, second := "A", "B"
		if i%2 == 1 {
			first, second = "B", "A"
		}
		for _, name := range []string{first, second} {
			bin, env, dst := *binA, envA, &p.A
			if name == "B" {
				bin, env, dst = *binB, envB, &p.B
			}
			if *dst, err = side(name, bin, env, i); err != nil {
				return exitProblem, err
			}
		}
		ps = append(ps, p)
	}
	c := bench.Compare(ps)
	fmt.Fprint(stdout, c.Text(ps))
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(struct {
			Comparison bench.Comparison `json:"comparison"`
			Pairs      []bench.Pair     `json:"pairs"`
		}{c, ps}, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			return exitProblem, err
		}
	}
	if c.Failed {
		fmt.Fprintln(stderr, "walletbench: FAILED: a run found a discrepancy or measured nothing")
		return exitFailed, nil
	}
	return exitOK, nil
}

// startsWalletd reports whether run flags make `run` start a walletd: a
// -target of embedded or postgres, or none (run's default is embedded).
func startsWalletd(args []string) bool {
	for i, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		k, v, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if k != "target" {
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return false
			}
			v = args[i+1]
		}
		return v == "embedded" || v == "postgres"
	}
	return true
}

// hasFlag reports whether args set -name (or --name, -name=...).
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		k, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if k == name {
			return true
		}
	}
	return false
}
