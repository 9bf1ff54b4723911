package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/persistence/backup"
	"github.com/walletd/walletd/persistence/backup/backuptest"
	"github.com/walletd/walletd/wallet"
)

func backupOf(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tr, err := Backup(t.Context(), dir, &buf, "test")
	if err != nil {
		t.Fatalf("backup of %s: %v", dir, err)
	}
	if tr.SHA256 == "" {
		t.Fatal("backup without a checksum")
	}
	return buf.Bytes()
}

func restoreInto(t *testing.T, s *Store, file []byte) (backup.Counts, error) {
	t.Helper()
	r, err := backup.NewReader(bytes.NewReader(file))
	if err != nil {
		return backup.Counts{}, err
	}
	return s.Restore(t.Context(), r)
}

func mustVerify(t *testing.T, s *Store) {
	t.Helper()
	ps, err := s.Verify(t.Context())
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if len(ps) > 0 {
		t.Fatalf("verify found %d problems: %v", len(ps), ps)
	}
}

func walletCount(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.rdb.QueryRowContext(t.Context(), `SELECT (SELECT count(*) FROM wallets) + (SELECT count(*) FROM journal) + (SELECT count(*) FROM snapshots)`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBackupRestoreRoundTrip: a backup taken while the store is open (its
// folder lock held, as by a running walletd) restores into a fresh store
// that verifies clean, loads every wallet as it was, and backs up to the
// very same records, nanoseconds included.
func TestBackupRestoreRoundTrip(t *testing.T) {
	src := openTest(t, t.TempDir(), Options{})
	t.Cleanup(func() { _ = src.Close() })
	want := backuptest.Fill(t, t.Context(), src, 24)

	file := backupOf(t, src.dir)
	orig := backuptest.ReadBytes(t, file)
	if orig.Header.Source != backup.SourceEmbedded || orig.Header.WalletdVersion != "test" {
		t.Fatalf("header %+v", orig.Header)
	}
	backuptest.CheckWants(t, orig, want)
	if orig.Trailer.Wallets != 25 || orig.Trailer.Events != 24*11 || orig.Trailer.Snapshots != 24 {
		t.Fatalf("counts %v, want 25 wallets, 264 events and 24 snapshots", orig.Trailer.Counts)
	}

	dst := openTest(t, t.TempDir(), Options{})
	t.Cleanup(func() { _ = dst.Close() })
	counts, err := restoreInto(t, dst, file)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if counts != orig.Trailer.Counts {
		t.Fatalf("restored %v, the backup holds %v", counts, orig.Trailer.Counts)
	}
	mustVerify(t, dst)
	for id := range want {
		a, err := src.Load(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		b, err := dst.Load(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s loads differently after the restore:\n got %+v\nwant %+v", id, b, a)
		}
	}
	backuptest.Compare(t, backuptest.ReadBytes(t, backupOf(t, dst.dir)), orig, time.Nanosecond)

	// The restored store takes new writes where the old one left off.
	l, err := dst.Load(t.Context(), "w0003")
	if err != nil {
		t.Fatal(err)
	}
	st, err := wallet.Rebuild(l.Wallet.Currency, l.Snapshot, l.Tail, wallet.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	_, ev, err := st.Apply(wallet.Command{Kind: wallet.KindDeposit, TxID: "after-restore", Amount: "1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.Append(t.Context(), actors.Write{PlayerID: "w0003", Expected: ev.Seq - 1, Events: []wallet.Event{*ev}}); err != nil {
		t.Fatalf("append after restore: %v", err)
	}
	mustVerify(t, dst)
}

// TestBackupOfAClosedStore: with no walletd running (no WAL file left), the
// read-only open still works and leaves the database file as it was. (SQLite
// creates the -wal and -shm files any reader of a WAL database needs; they
// are empty, and walletd would create them itself.)
func TestBackupOfAClosedStore(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	backuptest.Fill(t, t.Context(), s, 3)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	c := backuptest.ReadBytes(t, backupOf(t, dir))
	if c.Trailer.Wallets != 4 {
		t.Fatalf("counts %v", c.Trailer.Counts)
	}
	after, err := os.ReadFile(filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("the backup changed the database file")
	}
	for _, n := range names(t, dir) {
		if n != "LOCK" && !strings.HasPrefix(n, DBFile) {
			t.Fatalf("the backup left %s in the folder", n)
		}
	}
	// The store still opens (the lock was never taken by the backup) and
	// holds what it held.
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustVerify(t, s)
	if _, err := s.Load(t.Context(), "w0002"); err != nil {
		t.Fatal(err)
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestBackupWithoutAStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nothing")
	_, err := Backup(t.Context(), dir, &bytes.Buffer{}, "test")
	if err == nil || !strings.Contains(err.Error(), "no embedded store") {
		t.Fatalf("backup of a missing store: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the backup created %s", dir)
	}
}

// TestBackupWhileWriting takes backups while appenders commit as fast as
// they can. Each backup is one moment of the store: every write
// acknowledged before the backup started is in it, and it restores into a
// store that verifies clean (a wallet row read at another moment than its
// journal would not).
func TestBackupWhileWriting(t *testing.T) {
	src := openTest(t, t.TempDir(), Options{})
	t.Cleanup(func() { _ = src.Close() })
	eur, _ := wallet.LookupCurrency("EUR")
	const walletsN = 8
	var acked [walletsN]atomic.Uint64 // versions acknowledged by Append
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, walletsN)
	for i := range walletsN {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("p%d", i)
			st := wallet.New(eur, wallet.DefaultLimits)
			for n := 0; !stop.Load(); n++ {
				var evs []wallet.Event
				for k := range 1 + n%3 {
					_, ev, err := st.Apply(wallet.Command{Kind: wallet.KindDeposit, TxID: fmt.Sprintf("t%d-%d", n, k), Amount: "0.01"}, time.Now())
					if err != nil {
						errs <- err
						return
					}
					evs = append(evs, *ev)
				}
				w := actors.Write{PlayerID: id, Expected: evs[0].Seq - 1, Events: evs}
				if w.Expected == 0 {
					w.Create = &actors.Wallet{PlayerID: id, Currency: eur, CreatedAt: time.Now()}
				}
				if n%5 == 4 {
					sn := st.Snapshot()
					w.Snapshot = &sn
				}
				if err := src.Append(context.Background(), w); err != nil {
					errs <- err
					return
				}
				acked[i].Store(w.Version())
			}
		}()
	}
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()

	var prev map[string]uint64
	for round := 0; round < 4; round++ {
		time.Sleep(30 * time.Millisecond)
		var before [walletsN]uint64
		for i := range before {
			before[i] = acked[i].Load()
		}
		file := backupOf(t, src.dir)
		c := backuptest.ReadBytes(t, file)
		got := map[string]uint64{}
		for _, w := range c.Wallets {
			got[w.PlayerID] = w.Version
		}
		for i, v := range before {
			id := fmt.Sprintf("p%d", i)
			if got[id] < v {
				t.Fatalf("round %d: %s acknowledged at version %d before the backup, the backup has %d", round, id, v, got[id])
			}
			if got[id] < prev[id] {
				t.Fatalf("round %d: %s went back from %d to %d", round, id, prev[id], got[id])
			}
		}
		prev = got
		dst := openTest(t, t.TempDir(), Options{})
		if _, err := restoreInto(t, dst, file); err != nil {
			t.Fatalf("round %d: restore: %v", round, err)
		}
		mustVerify(t, dst)
		if err := dst.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %v", round, c.Trailer.Counts)
	}
	select {
	case err := <-errs:
		t.Fatalf("appender: %v", err)
	default:
	}
}

func TestRestoreRefusesANonEmptyStore(t *testing.T) {
	src := openTest(t, t.TempDir(), Options{})
	t.Cleanup(func() { _ = src.Close() })
	backuptest.Fill(t, t.Context(), src, 2)
	file := backupOf(t, src.dir)

	dst := openTest(t, t.TempDir(), Options{})
	t.Cleanup(func() { _ = dst.Close() })
	backuptest.Fill(t, t.Context(), dst, 1)
	before := walletCount(t, dst)
	_, err := restoreInto(t, dst, file)
	if !errors.Is(err, backup.ErrNotEmpty) {
		t.Fatalf("restore into a store with a wallet: %v, want ErrNotEmpty", err)
	}
	if after := walletCount(t, dst); after != before {
		t.Fatalf("the refused restore changed the store: %d rows → %d", before, after)
	}
	// Restoring the same backup twice is the same mistake.
	fresh := openTest(t, t.TempDir(), Options{})
	t.Cleanup(func() { _ = fresh.Close() })
	if _, err := restoreInto(t, fresh, file); err != nil {
		t.Fatal(err)
	}
	if _, err := restoreInto(t, fresh, file); !errors.Is(err, backup.ErrNotEmpty) {
		t.Fatalf("second restore: %v, want ErrNotEmpty", err)
	}
}

// TestRestoreOfADamagedBackupWritesNothing: even without the Check pass that
// walletctl runs first, the restore's single transaction keeps a damaged
// backup out: the damage shows by the trailer at the latest, before COMMIT.
func TestRestoreOfADamagedBackupWritesNothing(t *testing.T) {
	src := openTest(t, t.TempDir(), Options{})
	t.Cleanup(func() { _ = src.Close() })
	backuptest.Fill(t, t.Context(), src, 20)
	file := backupOf(t, src.dir)
	for name, bad := range backuptest.Corruptions(t, file) {
		t.Run(name, func(t *testing.T) {
			dst := openTest(t, t.TempDir(), Options{})
			t.Cleanup(func() { _ = dst.Close() })
			_, err := restoreInto(t, dst, bad)
			if !errors.Is(err, backup.ErrCorrupt) {
				t.Fatalf("restore of a damaged backup: %v, want ErrCorrupt", err)
			}
			if n := walletCount(t, dst); n != 0 {
				t.Fatalf("the failed restore left %d rows", n)
			}
			// And the store is still good for a sound restore.
			if _, err := restoreInto(t, dst, file); err != nil {
				t.Fatalf("sound restore after the failed one: %v", err)
			}
			mustVerify(t, dst)
		})
	}
}

// TestRestoreRefusesAnOrphanJournal: events of a wallet the backup does not
// hold fail the restore as a whole.
func TestRestoreRefusesAnOrphanJournal(t *testing.T) {
	var buf bytes.Buffer
	w, err := backup.NewWriter(&buf, backup.Header{Source: backup.SourcePostgres})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.Wallet(backup.Wallet{PlayerID: "a", Currency: "EUR", Version: 1, Balance: "1.00"}))
	must(w.Event(backup.Event{PlayerID: "a", Seq: 1, TxID: "t1", Kind: "deposit", Amount: "1.00", BalanceAfter: "1.00"}))
	must(w.Event(backup.Event{PlayerID: "ghost", Seq: 1, TxID: "t1", Kind: "deposit", Amount: "1.00", BalanceAfter: "1.00"}))
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	dst := openTest(t, t.TempDir(), Options{})
	t.Cleanup(func() { _ = dst.Close() })
	if _, err := restoreInto(t, dst, buf.Bytes()); err == nil || !strings.Contains(err.Error(), "no wallet ghost") {
		t.Fatalf("restore: %v", err)
	}
	if n := walletCount(t, dst); n != 0 {
		t.Fatalf("the failed restore left %d rows", n)
	}
}
