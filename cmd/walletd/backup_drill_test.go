package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walletd/walletd/internal/pgtest"
	"github.com/walletd/walletd/persistence/backup/backuptest"
)

// drillEnv: the drill measures backups, not rate limits (the gameplay
// policy would refuse most of its bets); frequent snapshots put snapshots in
// the backup, so the restored walletd activates from them.
var drillEnv = []string{"WALLET_RATE_GAMEPLAY=off", "WALLET_RATE_AUTH=off", "WALLET_SNAPSHOT_EVERY=50"}

// target is a store for the drill: the env that selects it for walletd and
// walletctl, and the data folder (the embedded store's, or a scratch one).
type target struct {
	kind string
	dir  string
	env  []string
}

func freshTarget(t *testing.T, kind string) target {
	tg := target{kind: kind, dir: filepath.Join(t.TempDir(), "data")}
	if kind == "postgres" {
		tg.env = []string{"WALLET_PG_DSN=" + pgtest.DSN(t)}
	}
	return tg
}

func (tg target) ctl(t *testing.T, args ...string) (string, int) {
	t.Helper()
	return walletctl(t, tg.dir, append(append([]string(nil), tg.env...), args...)...)
}

func (tg target) start(t *testing.T) *proc {
	t.Helper()
	return startProc(t, tg.dir, append(append([]string(nil), drillEnv...), tg.env...)...)
}

// drillOp is one money request of the drill's traffic, with when it was
// sent and when (if ever) it was acknowledged.
type drillOp struct {
	op
	tx             string
	sent, answered time.Time
}

// TestBackupRestoreDrill is the restore drill of docs/operations.md, for
// both stores, against the real binaries: concurrent traffic on a running
// walletd; `walletctl backup` taken while it runs; the backup holds every
// transaction acknowledged before the backup started and nothing sent after
// it ended; `walletctl restore` into a fresh store (of the same kind, and of
// the other kind) and `walletctl verify` clean; a walletd started on each
// restored store serves exactly the balances of the backup, answers old
// transactions as duplicates and takes new ones.
func TestBackupRestoreDrill(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { testDrill(t, "embedded", "postgres") })
	t.Run("postgres", func(t *testing.T) { testDrill(t, "postgres", "embedded") })
}

func testDrill(t *testing.T, kind, other string) {
	src := freshTarget(t, kind)
	p := src.start(t)
	ts := p.server()
	wallets := []string{"hot", "w1", "w2", "w3", "w4", "w5"}
	for _, w := range wallets {
		ts.open(w, "EUR")
		ts.expect(ts.do("POST", "/v1/wallets/"+w+"/deposit", `{"tx_id":"seed","amount":"1000000.00"}`), 200, "")
	}

	var (
		mu     sync.Mutex
		ops    []*drillOp
		acked  atomic.Int64
		stop   atomic.Bool
		wg     sync.WaitGroup
		client = &http.Client{Timeout: 10 * time.Second}
	)
	deadline := time.Now().Add(60 * time.Second) // the traffic stops by itself
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; !stop.Load() && time.Now().Before(deadline); i++ {
				o := &drillOp{tx: fmt.Sprintf("g%d-%d", g, i)}
				o.wallet = wallets[(g+i)%len(wallets)]
				if i%3 == 0 {
					o.wallet = "hot"
				}
				if i%4 == 0 {
					o.path, o.body = "deposit", fmt.Sprintf(`{"tx_id":"%s","amount":"1.01"}`, o.tx)
				} else {
					o.path, o.body = "bet", fmt.Sprintf(`{"tx_id":"%s","round_id":"r%d","game_id":"g","amount":"0.37"}`, o.tx, i)
				}
				o.sent = time.Now()
				v, ok := post(client, p.base, &o.op)
				o.answered = time.Now()
				if ok {
					o.acked, o.version = true, v
					acked.Add(1)
				}
				mu.Lock()
				ops = append(ops, o)
				mu.Unlock()
			}
		}(g)
	}
	defer func() { stop.Store(true); wg.Wait() }()

	waitFor := func(n int64) {
		t.Helper()
		for acked.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d requests acknowledged\n%s", acked.Load(), n, p.logs.String())
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(1000)

	// The backup, while the traffic goes on.
	file := filepath.Join(t.TempDir(), "walletd.jsonl.gz")
	backupStart := time.Now()
	out, code := src.ctl(t, "backup", "--out", file)
	backupEnd := time.Now()
	if code != 0 || !strings.Contains(out, "backup: 6 wallets") || !strings.Contains(out, "from the "+kind+" store") || strings.Contains(out, " 0 snapshots") {
		t.Fatalf("walletctl backup: exit %d\n%s", code, out)
	}
	waitFor(acked.Load() + 200) // traffic after the backup, too
	stop.Store(true)
	wg.Wait()
	if err := p.stop(); err != nil {
		t.Fatalf("stop the source walletd: %v", err)
	}

	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	bk := backuptest.ReadBytes(t, raw)
	if bk.Header.Source != kind {
		t.Fatalf("backup header says source %q", bk.Header.Source)
	}
	type key struct{ wallet, tx string }
	inBackup := map[key]uint64{}
	for _, ev := range bk.Events {
		inBackup[key{ev.PlayerID, ev.TxID}] = ev.Seq
	}
	balances := map[string]string{}
	versions := map[string]uint64{}
	for _, w := range bk.Wallets {
		balances[w.PlayerID], versions[w.PlayerID] = w.Balance, w.Version
	}

	var before, during, after, sentAfter int
	for _, o := range ops {
		seq, found := inBackup[key{o.wallet, o.tx}]
		switch {
		case o.acked && o.answered.Before(backupStart):
			before++
			if !found || float64(seq) != o.version {
				t.Errorf("%s %s acknowledged at version %v before the backup started; the backup has it: %v (seq %d)", o.wallet, o.tx, o.version, found, seq)
			}
		case o.acked && o.answered.Before(backupEnd):
			during++
		case o.acked:
			after++
		}
		if o.sent.After(backupEnd) {
			sentAfter++
			if found {
				t.Errorf("%s %s was sent after the backup ended, yet it is in the backup", o.wallet, o.tx)
			}
		}
	}
	t.Logf("%d requests: %d acknowledged before the backup, %d during it (%v), %d after; backup %v",
		len(ops), before, during, backupEnd.Sub(backupStart).Round(time.Millisecond), after, bk.Trailer.Counts)
	if before == 0 || during == 0 || sentAfter == 0 {
		t.Fatalf("the backup was not taken in the middle of traffic (%d before, %d during, %d sent after)", before, during, sentAfter)
	}

	// Restore into a fresh store of the same kind, and of the other kind.
	for _, k := range []string{kind, other} {
		dst := freshTarget(t, k)
		out, code := dst.ctl(t, "restore", "--in", file)
		if code != 0 || !strings.Contains(out, fmt.Sprintf("restore: %s into the %s store", bk.Trailer.Counts, k)) || !strings.Contains(out, "verify: ok") {
			t.Fatalf("%s → %s: walletctl restore: exit %d\n%s", kind, k, code, out)
		}
		if out, code := dst.ctl(t, "verify"); code != 0 || !strings.Contains(out, "verify: ok") {
			t.Fatalf("%s → %s: walletctl verify: exit %d\n%s", kind, k, code, out)
		}
		// Restoring again is refused: the store is no longer empty.
		if out, code := dst.ctl(t, "restore", "--in", file); code != 1 || !strings.Contains(out, "not empty") {
			t.Fatalf("%s → %s: second restore: exit %d\n%s", kind, k, code, out)
		}

		q := dst.start(t)
		qs := q.server()
		for _, w := range wallets {
			bal, ver := qs.balance(w)
			if bal != balances[w] || uint64(ver) != versions[w] {
				t.Errorf("%s → %s: %s serves %s at version %v, the backup has %s at %d", kind, k, w, bal, ver, balances[w], versions[w])
			}
		}
		// Old transactions are remembered: a retry of one acknowledged
		// before the backup answers duplicate, with its version.
		for _, o := range ops {
			if o.acked && o.answered.Before(backupStart) {
				r := qs.do("POST", "/v1/wallets/"+o.wallet+"/"+o.path, o.body)
				if r.Status != 200 || r.Body["duplicate"] != true || r.num("version") != o.version {
					t.Errorf("%s → %s: retry of %s on the restored store: %s", kind, k, o.body, r.Raw)
				}
				break
			}
		}
		r := qs.do("POST", "/v1/wallets/hot/deposit", `{"tx_id":"after-restore","amount":"1.00"}`)
		if r.Status != 200 || r.num("version") != float64(versions["hot"]+1) {
			t.Errorf("%s → %s: a new deposit on the restored store: %s", kind, k, r.Raw)
		}
		if err := q.stop(); err != nil {
			t.Fatalf("%s → %s: stop walletd: %v", kind, k, err)
		}
	}
}

// TestBackupScripts runs scripts/backup.sh the way cron would, beside a
// serving walletd, and scripts/restore.sh into a fresh store: timestamped
// files, retention by age and by count, the newest backup never pruned, a
// clear failure (non-zero, message) when the store cannot be read, and a
// restore that ends verified.
func TestBackupScripts(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	_, ctlBin := binaries(t)
	src := freshTarget(t, "embedded")
	p := src.start(t)
	ts := p.server()
	ts.open("alice", "EUR")
	ts.expect(ts.do("POST", "/v1/wallets/alice/deposit", `{"tx_id":"d1","amount":"12.34"}`), 200, "")
	ts.open("bob", "JPY")

	backups := filepath.Join(t.TempDir(), "backups")
	if err := os.MkdirAll(backups, 0o700); err != nil {
		t.Fatal(err)
	}
	// Old backups: two past the age limit, one within it.
	old := func(name string, age time.Duration) string {
		path := filepath.Join(backups, name)
		if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
			t.Fatal(err)
		}
		when := time.Now().Add(-age)
		if err := os.Chtimes(path, when, when); err != nil {
			t.Fatal(err)
		}
		return path
	}
	ancient := old("walletd-20200101T000000Z.jsonl.gz", 40*24*time.Hour)
	stale := old("walletd-20200102T000000Z.jsonl.gz", 15*24*time.Hour)
	recent := old("walletd-20200103T000000Z.jsonl.gz", 2*24*time.Hour)
	other := old("notes.txt", 400*24*time.Hour) // not a backup: never touched

	script := func(name string, env []string, args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command("bash", append([]string{"../../scripts/" + name}, args...)...)
		cmd.Env = append(append(os.Environ(), "WALLETCTL="+ctlBin, "WALLET_DATA_DIR="+src.dir, "BACKUP_DIR="+backups), env...)
		outB, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(outB), code
	}
	exists := func(path string) bool { _, err := os.Stat(path); return err == nil }
	made := func() []string {
		m, _ := filepath.Glob(filepath.Join(backups, "walletd-2*Z.jsonl.gz"))
		var out []string
		for _, f := range m {
			if !strings.Contains(f, "walletd-2020") {
				out = append(out, f)
			}
		}
		return out
	}

	textfile := filepath.Join(t.TempDir(), "walletd_backup.prom")
	out, code := script("backup.sh", []string{"BACKUP_KEEP_DAYS=14", "BACKUP_TEXTFILE=" + textfile})
	if code != 0 || !strings.Contains(out, "backup: 2 wallets") {
		t.Fatalf("backup.sh: exit %d\n%s", code, out)
	}
	if prom, err := os.ReadFile(textfile); err != nil || !strings.Contains(string(prom), "walletd_backup_last_success_timestamp_seconds ") {
		t.Fatalf("textfile: %v\n%s", err, prom)
	}
	if exists(ancient) || exists(stale) || !exists(recent) || !exists(other) {
		t.Fatalf("age retention: ancient %v, stale %v, recent %v, other %v\n%s", exists(ancient), exists(stale), exists(recent), exists(other), out)
	}
	if len(made()) != 1 {
		t.Fatalf("backups made: %v", made())
	}
	first := made()[0]

	// Count retention: keep 1 file → only the newest stays.
	time.Sleep(1100 * time.Millisecond) // the names have one-second resolution
	out, code = script("backup.sh", []string{"BACKUP_KEEP_FILES=1"})
	if code != 0 {
		t.Fatalf("backup.sh: exit %d\n%s", code, out)
	}
	if m := made(); len(m) != 1 || m[0] == first || exists(recent) {
		t.Fatalf("count retention kept %v (recent %v)\n%s", m, exists(recent), out)
	}
	newest := made()[0]

	// A store that cannot be read: non-zero, a message, and nothing pruned.
	out, code = script("backup.sh", []string{"WALLET_DATA_DIR=" + filepath.Join(t.TempDir(), "nothing"), "BACKUP_KEEP_FILES=1"})
	if code == 0 || !strings.Contains(out, "backup.sh: FAILED") || !exists(newest) {
		t.Fatalf("backup.sh of no store: exit %d, newest kept %v\n%s", code, exists(newest), out)
	}
	if out, code := script("backup.sh", []string{"BACKUP_DIR="}); code != 2 {
		t.Fatalf("backup.sh without BACKUP_DIR: exit %d\n%s", code, out)
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}

	// restore.sh into a fresh store, then walletd serves the balance.
	dst := freshTarget(t, "embedded")
	out, code = script("restore.sh", []string{"WALLET_DATA_DIR=" + dst.dir}, newest)
	if code != 0 || !strings.Contains(out, "verify: ok") || !strings.Contains(out, "restore.sh: done") {
		t.Fatalf("restore.sh: exit %d\n%s", code, out)
	}
	if bal, _ := dst.start(t).server().balance("alice"); bal != "12.34" {
		t.Fatalf("restored balance %s, want 12.34", bal)
	}
	// Into a store that is not empty (the same one): refused.
	out, code = script("restore.sh", []string{"WALLET_DATA_DIR=" + src.dir}, newest)
	if code != 1 || !strings.Contains(out, "not empty") || !strings.Contains(out, "restore.sh: FAILED") {
		t.Fatalf("restore.sh into a non-empty store: exit %d\n%s", code, out)
	}
	if out, code := script("restore.sh", nil); code != 2 {
		t.Fatalf("restore.sh without a file: exit %d\n%s", code, out)
	}
}
