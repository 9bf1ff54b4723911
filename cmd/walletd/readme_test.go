package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestReadmeWalkthrough runs the README's curl walk-through, as written,
// against a real walletd (only the address is swapped for the test's port),
// twice: the second run must change nothing.
func TestReadmeWalkthrough(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "<!-- walkthrough -->")
	script, _, ok2 := strings.Cut(rest, "<!-- /walkthrough -->")
	if !ok || !ok2 {
		t.Fatal("README has no walkthrough markers")
	}
	script = strings.TrimSpace(script)
	script = strings.TrimPrefix(script, "```sh")
	script = strings.TrimSuffix(script, "```")

	p := startProc(t, t.TempDir(), "WALLET_API_KEYS=dev-key")
	script = strings.ReplaceAll(script, "http://127.0.0.1:8080", p.base)
	for run := 1; run <= 2; run++ {
		out, err := exec.Command("bash", "-euo", "pipefail", "-c", script).CombinedOutput()
		if err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, out)
		}
		got := string(out)
		for _, want := range []string{
			`{"player_id":"alice","currency":"EUR","balance":"107.50","version":5}`,
			`"code":"BET_ROLLED_BACK"`,
			`"duplicate":true`,
		} {
			if !strings.Contains(got, want) {
				t.Fatalf("run %d: output lacks %s:\n%s", run, want, got)
			}
		}
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
}
