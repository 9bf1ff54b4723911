package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/internal/pgtest"
	"github.com/walletd/walletd/persistence/backup"
	"github.com/walletd/walletd/persistence/backup/backuptest"
	"github.com/walletd/walletd/wallet"
)

func backupOf(t *testing.T, dsn string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := Backup(t.Context(), dsn, &buf, "test"); err != nil {
		t.Fatalf("backup: %v", err)
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

func rowCount(t *testing.T, dsn string) int {
	t.Helper()
	var n int
	if err := sqlConn(t, dsn).QueryRow(t.Context(), `SELECT (SELECT count(*) FROM wallets) + (SELECT count(*) FROM journal) + (SELECT count(*) FROM snapshots)`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBackupRestoreRoundTrip: backup, restore into a fresh database, back
// up again: the same records, to Postgres's microsecond; every wallet loads
// as it was, money keeps its scale ("0.000" stays so).
func TestBackupRestoreRoundTrip(t *testing.T) {
	src, srcDSN := openTest(t, Options{})
	want := backuptest.Fill(t, t.Context(), src, 24)
	file := backupOf(t, srcDSN)
	orig := backuptest.ReadBytes(t, file)
	if orig.Header.Source != backup.SourcePostgres {
		t.Fatalf("header %+v", orig.Header)
	}
	backuptest.CheckWants(t, orig, want)

	dst, dstDSN := openTest(t, Options{})
	counts, err := restoreInto(t, dst, file)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if counts != orig.Trailer.Counts || counts.Events != 24*11 {
		t.Fatalf("restored %v, the backup holds %v", counts, orig.Trailer.Counts)
	}
	mustVerify(t, dst)
	backuptest.Compare(t, backuptest.ReadBytes(t, backupOf(t, dstDSN)), orig, time.Microsecond)
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
	// Bet keys came back: a bet reusing a tombstoned id is refused by the
	// journal's index, as before the restore.
	l, err := dst.Load(t.Context(), "w0001")
	if err != nil {
		t.Fatal(err)
	}
	st, err := wallet.Rebuild(l.Wallet.Currency, l.Snapshot, l.Tail, wallet.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	// Made by hand: the domain itself would refuse it from memory.
	ev := wallet.Event{Seq: 12, TxID: "bet-ghost", Kind: wallet.KindBet, Amount: wallet.MinorUnits(1, l.Wallet.Currency),
		BalanceAfter: st.Balance().Sub(wallet.MinorUnits(1, l.Wallet.Currency)), RoundID: "r9", At: time.Now()}
	var kx *actors.KeyExistsError
	if err := dst.Append(t.Context(), actors.Write{PlayerID: "w0001", Expected: 11, Events: []wallet.Event{ev}}); !errors.As(err, &kx) {
		t.Fatalf("bet on a tombstoned id after the restore: %v, want KeyExistsError", err)
	}
}

func TestBackupWithoutSchema(t *testing.T) {
	_, err := Backup(t.Context(), pgtest.DSN(t), &bytes.Buffer{}, "test")
	if err == nil || !strings.Contains(err.Error(), "no walletd schema") {
		t.Fatalf("backup of an empty database: %v", err)
	}
}

// TestBackupWhileWriting: backups taken while writers commit are each one
// moment of the database: they hold every write acknowledged before they
// began, never go back, and restore into a database that verifies clean.
func TestBackupWhileWriting(t *testing.T) {
	src, srcDSN := openTest(t, Options{})
	eur, _ := wallet.LookupCurrency("EUR")
	const walletsN = 8
	var acked [walletsN]atomic.Uint64
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
	for round := 0; round < 3; round++ {
		time.Sleep(50 * time.Millisecond)
		var before [walletsN]uint64
		for i := range before {
			before[i] = acked[i].Load()
		}
		file := backupOf(t, srcDSN)
		c := backuptest.ReadBytes(t, file)
		got := map[string]uint64{}
		for _, w := range c.Wallets {
			got[w.PlayerID] = w.Version
		}
		for i, v := range before {
			id := fmt.Sprintf("p%d", i)
			if got[id] < v || got[id] < prev[id] {
				t.Fatalf("round %d: %s at version %d in the backup; acknowledged %d before it, %d in the previous backup", round, id, got[id], v, prev[id])
			}
		}
		prev = got
		dst, _ := openTest(t, Options{})
		if _, err := restoreInto(t, dst, file); err != nil {
			t.Fatalf("round %d: restore: %v", round, err)
		}
		mustVerify(t, dst)
		t.Logf("round %d: %v", round, c.Trailer.Counts)
	}
	select {
	case err := <-errs:
		t.Fatalf("appender: %v", err)
	default:
	}
}

func TestRestoreRefusesANonEmptyStore(t *testing.T) {
	src, srcDSN := openTest(t, Options{})
	backuptest.Fill(t, t.Context(), src, 2)
	file := backupOf(t, srcDSN)

	dst, dstDSN := openTest(t, Options{})
	eur, _ := wallet.LookupCurrency("EUR")
	if err := dst.Append(t.Context(), actors.Write{PlayerID: "someone", Create: &actors.Wallet{PlayerID: "someone", Currency: eur, CreatedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	before := rowCount(t, dstDSN)
	if _, err := restoreInto(t, dst, file); !errors.Is(err, backup.ErrNotEmpty) {
		t.Fatalf("restore into a database with a wallet: %v, want ErrNotEmpty", err)
	}
	if after := rowCount(t, dstDSN); after != before {
		t.Fatalf("the refused restore changed the database: %d rows → %d", before, after)
	}
}

// TestRestoreOfADamagedBackupWritesNothing: the COPYs stream ahead of the
// trailer, but nothing commits until it checks out.
func TestRestoreOfADamagedBackupWritesNothing(t *testing.T) {
	src, srcDSN := openTest(t, Options{})
	backuptest.Fill(t, t.Context(), src, 20)
	file := backupOf(t, srcDSN)
	dst, dstDSN := openTest(t, Options{})
	for name, bad := range backuptest.Corruptions(t, file) {
		_, err := restoreInto(t, dst, bad)
		if !errors.Is(err, backup.ErrCorrupt) {
			t.Fatalf("%s: restore of a damaged backup: %v, want ErrCorrupt", name, err)
		}
		if n := rowCount(t, dstDSN); n != 0 {
			t.Fatalf("%s: the failed restore left %d rows", name, n)
		}
	}
	if _, err := restoreInto(t, dst, file); err != nil {
		t.Fatalf("sound restore after the failed ones: %v", err)
	}
	mustVerify(t, dst)
}
