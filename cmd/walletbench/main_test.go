package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/walletd/walletd/bench"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	code := Main(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, exitProblem},
		{[]string{"fly"}, exitProblem},
		{[]string{"help"}, exitOK},
		{[]string{"run", "-h"}, exitOK},
		{[]string{"run", "-mix", "win=1"}, exitProblem},
		{[]string{"run", "-skew", "zipf:0.5"}, exitProblem},
		{[]string{"run", "-target", "ftp://x"}, exitProblem},
		{[]string{"run", "-format", "betfair"}, exitProblem},
		{[]string{"run", "-target", "ceiling", "-format", "pragmatic"}, exitProblem},
		{[]string{"suite", "-users", "0"}, exitProblem},
		{[]string{"compare", "-h"}, exitOK},
		{[]string{"compare", "--", "-target", "ceiling"}, exitProblem},
		{[]string{"compare", "--", "-target=http://127.0.0.1:1"}, exitProblem},
		{[]string{"compare", "-pairs", "0"}, exitProblem},
		{[]string{"compare", "--", "-json", "x.json"}, exitProblem},
		{[]string{"compare", "--", "-walletd-bin", "x"}, exitProblem},
		{[]string{"run", "-walletd-env", "NOEQUALS"}, exitProblem},
		{[]string{"serve", "-system", "ceiling"}, exitProblem}, // no WALLET_API_KEYS
	} {
		t.Setenv("WALLET_API_KEYS", "")
		if code, _, errOut := run(t, tc.args...); code != tc.code {
			t.Errorf("%v: exit %d, want %d (%s)", tc.args, code, tc.code, errOut)
		}
	}
}

// One run against a walletd started by the command: a clean check and the
// JSON result; then the same through the broken proxy, which must fail.
func TestRunEmbedded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs walletd; skipped with -short")
	}
	js := filepath.Join(t.TempDir(), "r.json")
	code, out, errOut := run(t, "run", "-target", "embedded", "-users", "4", "-wallets", "3", "-requests", "300", "-warmup", "0", "-json", js)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var res bench.Result
	if err := json.Unmarshal(b, &res); err != nil || res.Requests != 300 || res.OK != 300 || !res.Checked || res.System != "walletd-embedded" {
		t.Fatalf("result %+v (%v)", res, err)
	}

	code, out, errOut = run(t, "run", "-target", "embedded", "-users", "4", "-wallets", "3", "-requests", "300", "-warmup", "0", "-fault", "drop-every=25")
	if code != exitFailed || !strings.Contains(out, "DISCREPANCY") || !strings.Contains(errOut, "FAILED") {
		t.Fatalf("broken server: exit %d\n%s\n%s", code, out, errOut)
	}
}

// The comparison servers run as processes of this binary (`serve`, see
// TestMain), as the suite runs them.
func TestRunCeiling(t *testing.T) {
	code, out, errOut := run(t, "run", "-target", "ceiling", "-users", "4", "-requests", "200", "-warmup", "0")
	if code != exitOK || !strings.Contains(out, "ceiling") || !strings.Contains(out, "ok 100.00%") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
}

// compare alternates two walletd configurations over pairs of runs and sums
// them up; each side's environment reaches its walletd (a B that cannot
// start fails the comparison, A having run). B logs only warnings, so it
// never announces its address: the harness must find it anyway.
func TestCompareEmbedded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs walletd; skipped with -short")
	}
	runFlags := []string{"--", "-target", "embedded", "-users", "4", "-wallets", "3", "-requests", "200", "-warmup", "0"}
	js := filepath.Join(t.TempDir(), "c.json")
	code, out, errOut := run(t, append([]string{"compare", "-pairs", "2", "-b-env", "GOGC=300", "-b-env", "WALLET_LOG_LEVEL=warn", "-json", js}, runFlags...)...)
	if code != exitOK || strings.Count(out, "walletd-embedded") != 4 || !strings.Contains(out, "2 pairs are too few") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Comparison bench.Comparison `json:"comparison"`
		Pairs      []bench.Pair     `json:"pairs"`
	}
	if err := json.Unmarshal(b, &got); err != nil || len(got.Pairs) != 2 || len(got.Comparison.RPSRatios) != 2 ||
		got.Pairs[1].B.Requests != 200 || got.Comparison.Failed {
		t.Fatalf("JSON: %+v (%v)", got, err)
	}

	code, out, errOut = run(t, append([]string{"compare", "-pairs", "1", "-b-env", "WALLET_RATE_GAMEPLAY=bogus"}, runFlags...)...)
	if code != exitProblem || !strings.Contains(errOut, "B, pair 1") {
		t.Fatalf("B with a bad setting: exit %d\n%s\n%s", code, out, errOut)
	}
}
