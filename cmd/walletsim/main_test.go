package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walletd/walletd/providers"
	"github.com/walletd/walletd/providers/providertest"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "providers.json")
	if err := os.WriteFile(file, []byte(`{"instances":[{"name":"ppcredit","kind":"pragmatic","secretEnv":"PPC","bonusWin":"credit"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"WALLET_API_KEYS":             providertest.APIKey + ",another",
		"WALLET_PROVIDERS_FILE":       file,
		"WALLET_PRAGMATIC_SECRET":     "pp-secret",
		"WALLET_EVOLUTION_AUTH_TOKEN": "evo-token",
		"PPC":                         "ppc-secret",
	}
	getenv := func(k string) string { return env[k] }
	stack := providertest.New(t, providers.Config{File: file, PragmaticSecret: "pp-secret", EvolutionAuthToken: "evo-token", Getenv: getenv})

	var out, errs bytes.Buffer
	code := run(context.Background(), []string{"-url", stack.URL, "-players", "3", "-rounds", "15", "-currencies", "EUR,JPY", "-seed", "1"}, getenv, &out, &errs)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errs.String())
	}
	for _, want := range []string{"pragmatic (pragmatic)", "ppcredit (pragmatic)", "evolution (evolution)", "rounds/s", "bet 0", "debit OK", "every reply and every wallet matched"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the summary lacks %q:\n%s", want, out.String())
		}
	}

	// The simulator believes ppcredit only informs of bonus wins: its
	// ledger falls behind, and the exit code says so.
	if err := os.WriteFile(file, []byte(`{"instances":[{"name":"ppcredit","kind":"pragmatic","secretEnv":"PPC"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	code = run(context.Background(), []string{"-url", stack.URL, "-only", "ppcredit", "-players", "2", "-rounds", "60", "-seed", "7"}, getenv, &out, &errs)
	if code != exitMismatch || !strings.Contains(out.String(), "MISMATCHES") {
		t.Fatalf("exit %d, want %d with mismatches:\n%s", code, exitMismatch, out.String())
	}

	for _, args := range [][]string{
		{"-players"},
		{"-url", stack.URL, "extra"},
		{"-url", stack.URL, "-only", "nosuch"},
		{"-url", stack.URL, "-api-key", "wrong"},
		{"-url", stack.URL, "-currencies", "XXX"},
	} {
		if code := run(context.Background(), args, getenv, &out, &errs); code != exitUsage {
			t.Errorf("run(%q) = %d, want %d", args, code, exitUsage)
		}
	}
}
