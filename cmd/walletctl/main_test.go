package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walletd/walletd/internal/config"
	"github.com/walletd/walletd/internal/stores"
	"github.com/walletd/walletd/persistence/backup/backuptest"
)

// ctl runs walletctl in-process on the embedded store in dataDir.
func ctl(t *testing.T, dataDir string, stdin []byte, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	getenv := func(k string) string {
		if k == "WALLET_DATA_DIR" {
			return dataDir
		}
		return ""
	}
	code = run(context.Background(), args, getenv, bytes.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

func filled(t *testing.T, wallets int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	st, err := stores.Open(t.Context(), config.Config{DataDir: dir}, stores.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	backuptest.Fill(t, t.Context(), st, wallets)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		nil, {"help"}, {"frobnicate"}, {"verify", "extra"},
		{"backup"}, {"backup", "--out"}, {"backup", "--in", "x"}, {"backup", "--out", "x", "y"},
		{"restore"}, {"restore", "--out", "x"}, {"check-backup"},
	} {
		_, stderr, code := ctl(t, t.TempDir(), nil, args...)
		if code != 2 || !strings.Contains(stderr, "usage: walletctl") {
			t.Errorf("walletctl %q: exit %d, want 2 with the usage\n%s", args, code, stderr)
		}
	}
}

func TestBackupRestoreCommands(t *testing.T) {
	src := filled(t, 5)
	out := filepath.Join(t.TempDir(), "b.jsonl.gz")
	stdout, stderr, code := ctl(t, src, nil, "backup", "--out", out)
	if code != 0 || !strings.Contains(stdout, "backup: 6 wallets, 55 journal events, 5 snapshots from the embedded store to "+out) {
		t.Fatalf("backup: exit %d\n%s%s", code, stdout, stderr)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file mode %v, want 0600 (it holds every balance)", fi.Mode().Perm())
	}
	if _, err := os.Stat(out + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("%s.tmp left behind", out)
	}

	// --out - writes the backup to stdout and the report to stderr.
	stdout, stderr, code = ctl(t, src, nil, "backup", "--out=-")
	if code != 0 || !strings.Contains(stderr, "backup: 6 wallets") {
		t.Fatalf("backup to stdout: exit %d\n%s", code, stderr)
	}
	viaStdout := []byte(stdout)
	backuptest.ReadBytes(t, viaStdout)

	stdout, _, code = ctl(t, "", nil, "check-backup", "--in", out)
	if code != 0 || !strings.Contains(stdout, "check-backup: ok: 6 wallets, 55 journal events, 5 snapshots, from the embedded store") {
		t.Fatalf("check-backup: exit %d\n%s", code, stdout)
	}

	dst := filepath.Join(t.TempDir(), "restored")
	stdout, stderr, code = ctl(t, dst, nil, "restore", "--in", out)
	if code != 0 || !strings.Contains(stdout, "restore: 6 wallets, 55 journal events, 5 snapshots into the embedded store") || !strings.Contains(stdout, "verify: ok") {
		t.Fatalf("restore: exit %d\n%s%s", code, stdout, stderr)
	}
	if stdout, _, code := ctl(t, dst, nil, "verify"); code != 0 {
		t.Fatalf("verify after restore: exit %d\n%s", code, stdout)
	}

	// Again into the same store: refused, exit 1.
	_, stderr, code = ctl(t, dst, nil, "restore", "--in", out)
	if code != 1 || !strings.Contains(stderr, "not empty") || !strings.Contains(stderr, "fresh store") {
		t.Fatalf("restore into a non-empty store: exit %d\n%s", code, stderr)
	}

	// From stdin.
	dst2 := filepath.Join(t.TempDir(), "restored2")
	stdout, stderr, code = ctl(t, dst2, viaStdout, "restore", "--in", "-")
	if code != 0 || !strings.Contains(stdout, "verify: ok") {
		t.Fatalf("restore from stdin: exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestDamagedBackupIsRefused(t *testing.T) {
	src := filled(t, 3)
	out := filepath.Join(t.TempDir(), "b.jsonl.gz")
	if _, stderr, code := ctl(t, src, nil, "backup", "--out", out); code != 0 {
		t.Fatal(stderr)
	}
	good, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range backuptest.Corruptions(t, good) {
		path := filepath.Join(t.TempDir(), "bad.jsonl.gz")
		if err := os.WriteFile(path, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, stderr, code := ctl(t, "", nil, "check-backup", "--in", path); code != 1 || !strings.Contains(stderr, "corrupt") {
			t.Errorf("%s: check-backup exit %d\n%s", name, code, stderr)
		}
		dst := filepath.Join(t.TempDir(), "restored")
		_, stderr, code := ctl(t, dst, nil, "restore", "--in", path)
		if code != 1 || !strings.Contains(stderr, "nothing was written") {
			t.Errorf("%s: restore exit %d\n%s", name, code, stderr)
		}
		if _, err := os.Stat(dst); !os.IsNotExist(err) {
			t.Errorf("%s: the refused restore created %s", name, dst)
		}
	}
}

func TestBackupFailureLeavesNoFile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "b.jsonl.gz")
	_, stderr, code := ctl(t, filepath.Join(t.TempDir(), "none"), nil, "backup", "--out", out)
	if code != 1 || !strings.Contains(stderr, "no embedded store") {
		t.Fatalf("backup of no store: exit %d\n%s", code, stderr)
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 0 {
		t.Fatalf("a failed backup left %v", entries)
	}
}
