// Package backuptest helps the stores' backup tests: it fills a store with
// journals the real wallet domain made (every kind of event, several
// currencies, snapshots), reads backups back into memory, and compares two
// backups record by record, so a round trip through any pair of stores can
// be checked for loss.
package backuptest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/persistence/backup"
	"github.com/walletd/walletd/wallet"
)

// Epoch is where the journals' clocks start: nanoseconds on purpose, so a
// store that rounds times shows it.
var Epoch = time.Date(2025, 3, 1, 12, 0, 0, 123_456_789, time.UTC)

// Want is a wallet's state after Fill.
type Want struct {
	Currency string
	Version  uint64
	Balance  string
}

// Fill writes n wallets (ids w0000, w0001, …, and one called "unused" that
// has no journal) through s.Append, as walletd
// would, and returns their final states. Every wallet's journal holds
// deposits, a withdrawal, bets won by tx and by round (settles), a rollback,
// a tombstone (a rollback of a bet never seen) and an open bet; about half
// the writes carry a snapshot.
func Fill(t testing.TB, ctx context.Context, s actors.Store, n int) map[string]Want {
	t.Helper()
	currencies := []string{"EUR", "JPY", "KWD", "CLF"}
	want := make(map[string]Want, n)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("w%04d", i)
		c, _ := wallet.LookupCurrency(currencies[i%len(currencies)])
		st := wallet.New(c, wallet.DefaultLimits)
		clock := Epoch.Add(time.Duration(i) * time.Second)
		var pending []wallet.Event
		apply := func(cmd wallet.Command) {
			t.Helper()
			clock = clock.Add(1500*time.Microsecond + 7*time.Nanosecond)
			_, ev, err := st.Apply(cmd, clock)
			if err != nil || ev == nil {
				t.Fatalf("%s: apply %+v: %v (event %v)", id, cmd, err, ev)
			}
			pending = append(pending, *ev)
		}
		expected := uint64(0)
		write := func(create, snapshot bool) {
			t.Helper()
			w := actors.Write{PlayerID: id, Expected: expected, Events: pending}
			if create {
				w.Create = &actors.Wallet{PlayerID: id, Currency: c, CreatedAt: Epoch.Add(time.Duration(i) * time.Millisecond)}
			}
			if snapshot {
				sn := st.Snapshot()
				w.Snapshot = &sn
			}
			if err := s.Append(ctx, w); err != nil {
				t.Fatalf("%s: append at %d: %v", id, expected, err)
			}
			expected, pending = w.Version(), nil
		}
		apply(wallet.Command{Kind: wallet.KindDeposit, TxID: "dep-1", Amount: fmt.Sprint(100 + i)})
		write(true, false)
		apply(wallet.Command{Kind: wallet.KindBet, TxID: "bet-1", RoundID: "r1", GameID: "g1", Amount: "2"})
		apply(wallet.Command{Kind: wallet.KindWin, TxID: "win-1", Ref: "bet-1", Amount: "5"})
		apply(wallet.Command{Kind: wallet.KindBet, TxID: "bet-2", RoundID: "r2", GameID: "g1", Amount: "3"})
		write(false, i%2 == 0)
		apply(wallet.Command{Kind: wallet.KindRollback, TxID: "rb-2", Ref: "bet-2"})
		apply(wallet.Command{Kind: wallet.KindRollback, TxID: "rb-ghost", Ref: "bet-ghost"}) // a tombstone
		apply(wallet.Command{Kind: wallet.KindWithdraw, TxID: "wd-1", Amount: "1"})
		apply(wallet.Command{Kind: wallet.KindBet, TxID: "bet-4", RoundID: "r4", GameID: "g2", Amount: "1"})
		apply(wallet.Command{Kind: wallet.KindBet, TxID: "bet-5", RoundID: "r4", GameID: "g2", Amount: "1"})
		apply(wallet.Command{Kind: wallet.KindWin, TxID: "win-4", RoundID: "r4", Amount: "7"}) // settles bet-4 and bet-5
		apply(wallet.Command{Kind: wallet.KindBet, TxID: "bet-open", RoundID: "r5", GameID: "g3", Amount: "1"})
		write(false, i%2 == 1)
		want[id] = Want{Currency: c.Code, Version: st.Version(), Balance: st.Balance().String()}
	}
	// A wallet opened and never used: version 0, a zero balance that must
	// keep its scale ("0.000").
	kwd, _ := wallet.LookupCurrency("KWD")
	if err := s.Append(ctx, actors.Write{PlayerID: "unused", Create: &actors.Wallet{PlayerID: "unused", Currency: kwd, CreatedAt: Epoch}}); err != nil {
		t.Fatalf("unused: create: %v", err)
	}
	want["unused"] = Want{Currency: "KWD", Version: 0, Balance: "0.000"}
	return want
}

// Contents is a backup in memory, records sorted by player (and seq), so
// two backups compare equal whatever order their stores list wallets in.
type Contents struct {
	Header    backup.Header
	Wallets   []backup.Wallet
	Events    []backup.Event
	Snapshots []backup.Snapshot
	Trailer   backup.Trailer
}

// Read reads a whole backup (which must be sound) into memory.
func Read(t testing.TB, r io.Reader) Contents {
	t.Helper()
	rd, err := backup.NewReader(r)
	if err != nil {
		t.Fatalf("read backup: %v", err)
	}
	c := Contents{Header: rd.Header()}
	for {
		rec, err := rd.Next()
		if err != nil {
			t.Fatalf("read backup: %v", err)
		}
		switch rec.Kind {
		case backup.KindWallet:
			c.Wallets = append(c.Wallets, rec.Wallet)
		case backup.KindEvent:
			c.Events = append(c.Events, rec.Event)
		case backup.KindSnapshot:
			c.Snapshots = append(c.Snapshots, rec.Snapshot)
		case backup.KindEnd:
			c.Trailer = rd.Trailer()
			slices.SortStableFunc(c.Wallets, func(a, b backup.Wallet) int { return strings.Compare(a.PlayerID, b.PlayerID) })
			slices.SortStableFunc(c.Events, func(a, b backup.Event) int { return strings.Compare(a.PlayerID, b.PlayerID) })
			slices.SortStableFunc(c.Snapshots, func(a, b backup.Snapshot) int { return strings.Compare(a.PlayerID, b.PlayerID) })
			return c
		}
	}
}

// ReadBytes is Read of a backup in memory.
func ReadBytes(t testing.TB, b []byte) Contents {
	t.Helper()
	return Read(t, bytes.NewReader(b))
}

// Compare fails t unless got holds exactly want's rows. Times are compared
// truncated to prec: Postgres keeps microseconds of the embedded store's
// nanoseconds. Snapshot data is compared as wallet.Snapshot values (jsonb
// reorders keys).
func Compare(t testing.TB, got, want Contents, prec time.Duration) {
	t.Helper()
	if got.Trailer.Counts != want.Trailer.Counts {
		t.Errorf("counts: got %v, want %v", got.Trailer.Counts, want.Trailer.Counts)
	}
	trunc := func(tm time.Time) time.Time { return tm.Truncate(prec).UTC() }
	for i := range min(len(got.Wallets), len(want.Wallets)) {
		g, w := got.Wallets[i], want.Wallets[i]
		g.CreatedAt, w.CreatedAt = trunc(g.CreatedAt), trunc(w.CreatedAt)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("wallet %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	for i := range min(len(got.Events), len(want.Events)) {
		g, w := got.Events[i], want.Events[i]
		g.CreatedAt, w.CreatedAt = trunc(g.CreatedAt), trunc(w.CreatedAt)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	for i := range min(len(got.Snapshots), len(want.Snapshots)) {
		g, w := got.Snapshots[i], want.Snapshots[i]
		var gs, ws wallet.Snapshot
		if err := json.Unmarshal(g.Data, &gs); err != nil {
			t.Fatalf("snapshot %d: %v", i, err)
		}
		if err := json.Unmarshal(w.Data, &ws); err != nil {
			t.Fatalf("snapshot %d: %v", i, err)
		}
		if g.PlayerID != w.PlayerID || g.Version != w.Version || !reflect.DeepEqual(gs, ws) {
			t.Errorf("snapshot %d:\n got %s %d %s\nwant %s %d %s", i, g.PlayerID, g.Version, g.Data, w.PlayerID, w.Version, w.Data)
		}
	}
}

// CheckWants fails t unless the backup's wallet rows are want.
func CheckWants(t testing.TB, c Contents, want map[string]Want) {
	t.Helper()
	if len(c.Wallets) != len(want) {
		t.Errorf("%d wallets in the backup, want %d", len(c.Wallets), len(want))
	}
	for _, w := range c.Wallets {
		if got := (Want{Currency: w.Currency, Version: w.Version, Balance: w.Balance}); got != want[w.PlayerID] {
			t.Errorf("wallet %s: %+v, want %+v", w.PlayerID, got, want[w.PlayerID])
		}
	}
}

// Corruptions returns damaged copies of a sound backup file: cut short,
// one bit flipped in the middle of the compressed stream, a trailer whose
// event count is off by one (recompressed, so only the count is wrong), and
// an event that reuses its wallet's previous tx_id. A restore must refuse
// each as ErrCorrupt and write nothing.
func Corruptions(t testing.TB, file []byte) map[string][]byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(gz)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(plain), "\n"), "\n")
	last := len(lines) - 1
	var tr backup.Trailer
	if err := json.Unmarshal([]byte(lines[last]), &tr); err != nil {
		t.Fatal(err)
	}
	lines[last] = strings.Replace(lines[last], fmt.Sprintf(`"events":%d`, tr.Events), fmt.Sprintf(`"events":%d`, tr.Events+1), 1)
	var wrong bytes.Buffer
	zw := gzip.NewWriter(&wrong)
	if _, err := io.WriteString(zw, strings.Join(lines, "\n")+"\n"); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(file)
	flipped[len(flipped)/2] ^= 0x10
	return map[string][]byte{
		"truncated":           bytes.Clone(file[:len(file)*2/3]),
		"flipped byte":        flipped,
		"wrong trailer count": wrong.Bytes(),
		"reused tx_id":        reusedTxID(t, lines),
	}
}

// reusedTxID is the backup with one event's tx_id changed to its wallet's
// previous event's: a record that reads as well-formed and that a store
// refuses (the wallet's tx_ids are unique) before the reader, at the end,
// finds the checksum wrong. The restore must still say the file is damaged.
func reusedTxID(t testing.TB, lines []string) []byte {
	t.Helper()
	var prev map[string]any
	for i, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		if m["type"] != "event" {
			continue
		}
		if prev != nil && prev["player_id"] == m["player_id"] {
			m["tx_id"] = prev["tx_id"]
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			out := slices.Clone(lines)
			out[i] = string(b)
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			if _, err := io.WriteString(zw, strings.Join(out, "\n")+"\n"); err != nil {
				t.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			return buf.Bytes()
		}
		prev = m
	}
	t.Fatal("the backup has no wallet with two events")
	return nil
}
