package backup

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	at      = time.Date(2025, 3, 1, 12, 0, 0, 123_456_789, time.UTC)
	wallets = []Wallet{
		{PlayerID: "alice", Currency: "EUR", Version: 3, Balance: "7.50", CreatedAt: at},
		{PlayerID: "bob", Currency: "JPY", Version: 1, Balance: "100", CreatedAt: at.Add(time.Nanosecond)},
		{PlayerID: "carol", Currency: "KWD", Version: 0, Balance: "0.000", CreatedAt: time.Time{}},
	}
	events = []Event{
		{PlayerID: "alice", Seq: 1, TxID: "d1", Kind: "deposit", Amount: "10.00", BalanceAfter: "10.00", CreatedAt: at},
		{PlayerID: "alice", Seq: 2, TxID: "b1", Kind: "bet", Amount: "2.50", BalanceAfter: "7.50", RoundID: "r1", GameID: "g1", CreatedAt: at.Add(time.Microsecond)},
		{PlayerID: "alice", Seq: 3, TxID: "rb-x", Kind: "rollback", Amount: "0.00", BalanceAfter: "7.50", RefTxID: "bx", Tombstone: true, CreatedAt: at.Add(time.Millisecond)},
		{PlayerID: "bob", Seq: 1, TxID: "w1", Kind: "win", Amount: "100", BalanceAfter: "100", RoundID: "r9", Settles: []string{"b7", "b8"}, CreatedAt: at},
	}
	snapshots = []Snapshot{
		{PlayerID: "alice", Version: 2, Data: json.RawMessage(`{"currency": "EUR", "version": 2, "balance": "7.50",
			"open_bets": [{"tx_id": "b1", "seq": 2, "amount": "2.50", "round_id": "r1", "at": "2025-03-01T12:00:00.123457789Z"}]}`)},
	}
)

// sample writes the records above and returns the file.
func sample(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{Source: SourceEmbedded, WalletdVersion: "test", CreatedAt: at})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range wallets {
		if err := w.Wallet(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range events {
		if err := w.Event(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range snapshots {
		if err := w.Snapshot(r); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Counts{Wallets: 3, Events: 4, Snapshots: 1}); tr.Counts != want || len(tr.SHA256) != 64 {
		t.Fatalf("trailer %+v, want counts %+v and a sha256", tr, want)
	}
	return buf.Bytes()
}

func readAll(t *testing.T, file []byte) (Header, []Record, Trailer, error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(file))
	if err != nil {
		return Header{}, nil, Trailer{}, err
	}
	var recs []Record
	for {
		rec, err := r.Next()
		if err != nil {
			return r.Header(), recs, Trailer{}, err
		}
		if rec.Kind == KindEnd {
			return r.Header(), recs, r.Trailer(), nil
		}
		recs = append(recs, rec)
	}
}

func TestRoundTrip(t *testing.T) {
	file := sample(t)
	h, recs, tr, err := readAll(t, file)
	if err != nil {
		t.Fatal(err)
	}
	if h.Format != Format || h.FormatVersion != FormatVersion || h.Source != SourceEmbedded || h.WalletdVersion != "test" || !h.CreatedAt.Equal(at) {
		t.Fatalf("header %+v", h)
	}
	if tr.Counts != (Counts{Wallets: 3, Events: 4, Snapshots: 1}) {
		t.Fatalf("trailer %+v", tr)
	}
	var gotW []Wallet
	var gotE []Event
	var gotS []Snapshot
	for _, r := range recs {
		switch r.Kind {
		case KindWallet:
			gotW = append(gotW, r.Wallet)
		case KindEvent:
			gotE = append(gotE, r.Event)
		case KindSnapshot:
			gotS = append(gotS, r.Snapshot)
		}
	}
	if !reflect.DeepEqual(gotW, wallets) {
		t.Errorf("wallets:\n got %+v\nwant %+v", gotW, wallets)
	}
	// Full precision: nanoseconds survive.
	if !gotE[1].CreatedAt.Equal(at.Add(time.Microsecond)) || gotE[1].CreatedAt.Nanosecond() != 123_457_789 {
		t.Errorf("event time %v lost precision", gotE[1].CreatedAt)
	}
	if !reflect.DeepEqual(gotE, events) {
		t.Errorf("events:\n got %+v\nwant %+v", gotE, events)
	}
	if len(gotS) != 1 || gotS[0].Version != 2 || strings.Contains(string(gotS[0].Data), " ") {
		t.Errorf("snapshots %+v (data should be compacted)", gotS)
	}
	if got := events[2].BetKey(); got != "bx" {
		t.Errorf("tombstone bet key %q, want bx", got)
	}
	if h, tr2, err := Check(bytes.NewReader(file)); err != nil || tr2 != tr || h.Source != SourceEmbedded {
		t.Fatalf("check: %v %+v", err, tr2)
	}
}

// TestEveryColumnInTheFile pins the wire format: it is a contract with
// backups already on disk.
func TestEveryColumnInTheFile(t *testing.T) {
	lines := plain(t, sample(t))
	want := []string{
		`{"type":"header","format":"walletd-backup","format_version":1,"created_at":"2025-03-01T12:00:00.123456789Z","source":"embedded","walletd_version":"test"}`,
		`{"type":"wallet","player_id":"alice","currency":"EUR","version":3,"balance":"7.50","created_at":"2025-03-01T12:00:00.123456789Z"}`,
		`{"type":"event","player_id":"alice","seq":1,"tx_id":"d1","kind":"deposit","amount":"10.00","balance_after":"10.00","round_id":"","game_id":"","ref_tx_id":"","settles":[],"tombstone":false,"created_at":"2025-03-01T12:00:00.123456789Z"}`,
	}
	for i, w := range want {
		idx := map[int]int{0: 0, 1: 1, 2: 4}[i]
		if lines[idx] != w {
			t.Errorf("line %d:\n got %s\nwant %s", idx+1, lines[idx], w)
		}
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, `{"type":"trailer","wallets":3,"events":4,"snapshots":1,"sha256":"`) {
		t.Errorf("trailer line %s", last)
	}
}

// plain returns the file's lines, uncompressed.
func plain(t *testing.T, file []byte) []string {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(gz)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// pack compresses lines into a file (each line gets its newline).
func pack(t *testing.T, lines []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	for _, l := range lines {
		if _, err := io.WriteString(gz, l+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestCorruptionDetected: every kind of damage is refused by Check, which
// restores run before they write anything.
func TestCorruptionDetected(t *testing.T) {
	file := sample(t)
	lines := plain(t, file)
	trailer := lines[len(lines)-1]
	body := lines[:len(lines)-1]
	with := func(i int, s string) []string {
		out := append([]string(nil), lines...)
		out[i] = s
		return out
	}
	cases := map[string][]byte{
		"empty file":              nil,
		"not gzip":                []byte("{\"type\":\"header\"}\n"),
		"truncated gzip, half":    file[:len(file)/2],
		"truncated gzip, 8 bytes": file[:len(file)-8], // the gzip footer is gone
		"truncated gzip, 1 byte":  file[:len(file)-1],
		"no trailer":              pack(t, body),
		"last line cut":           pack(t, append(append([]string(nil), body...), trailer[:len(trailer)-5]))[:],
		"a record dropped":        pack(t, append(append([]string(nil), lines[:2]...), lines[3:]...)),
		"a record edited":         pack(t, with(1, strings.Replace(lines[1], `"7.50"`, `"7.51"`, 1))),
		"wrong trailer count":     pack(t, with(len(lines)-1, strings.Replace(trailer, `"events":4`, `"events":5`, 1))),
		"wrong checksum":          pack(t, with(len(lines)-1, trailer[:len(trailer)-3]+flip(trailer[len(trailer)-3])+`"}`)),
		"data after trailer":      pack(t, append(append([]string(nil), lines...), lines[1])),
		"two gzip members":        append(append([]byte(nil), file...), file...),
		"sections out of order":   pack(t, append(append([]string{lines[0], lines[4]}, lines[1:4]...), lines[5:]...)),
		"newer format":            pack(t, with(0, strings.Replace(lines[0], `"format_version":1`, `"format_version":2`, 1))),
		"other format":            pack(t, with(0, strings.Replace(lines[0], Format, "pg_dump", 1))),
		"not JSON":                pack(t, with(2, "garbage")),
		"bad amount":              pack(t, with(4, strings.Replace(lines[4], `"amount":"10.00"`, `"amount":"1e3"`, 1))),
		"unknown kind":            pack(t, with(4, strings.Replace(lines[4], `"deposit"`, `"gift"`, 1))),
		"unknown currency":        pack(t, with(1, strings.Replace(lines[1], `"EUR"`, `"BTC"`, 1))),
		"seq going back":          pack(t, append(append(append([]string(nil), lines[:4]...), lines[5], lines[4]), lines[6:]...)),
	}
	// A flipped bit anywhere in the compressed stream: the gzip CRC, the
	// deflate decoder or the checksum catches it. Try every byte past the
	// gzip header (whose flags and mtime bytes are not checked by anyone,
	// and do not matter).
	for i := 10; i < len(file); i++ {
		f := append([]byte(nil), file...)
		f[i] ^= 0x01
		if _, _, err := Check(bytes.NewReader(f)); err == nil {
			t.Errorf("flipped bit in byte %d of %d: accepted", i, len(file))
		} else if !errors.Is(err, ErrCorrupt) {
			t.Errorf("flipped bit in byte %d: %v, want ErrCorrupt", i, err)
		}
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := Check(bytes.NewReader(f))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%v, want ErrCorrupt", err)
			}
			t.Log(err)
		})
	}
}

// flip changes one hex digit.
func flip(c byte) string {
	if c == '0' {
		return "1"
	}
	return "0"
}

func TestWriterRefusesOutOfOrder(t *testing.T) {
	w, err := NewWriter(io.Discard, Header{Source: SourcePostgres})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Event(events[0]); err != nil {
		t.Fatal(err)
	}
	if err := w.Wallet(wallets[0]); err == nil {
		t.Fatal("a wallet after an event was accepted")
	}
	if _, err := w.Close(); err == nil {
		t.Fatal("Close finished a backup after a failed write")
	}
	if _, err := NewWriter(io.Discard, Header{}); err == nil {
		t.Fatal("a header without a source was accepted")
	}
}

// TestReaderStreams: a large backup is read with a bounded buffer (the
// reader holds one line at a time), and Peek does not consume.
func TestReaderStreams(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{Source: SourceEmbedded})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Wallet(Wallet{PlayerID: "p", Currency: "EUR", Version: 20000, Balance: "20000.00"}); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 20000; i++ {
		if err := w.Event(Event{PlayerID: "p", Seq: i, TxID: "t" + time.Duration(i).String(), Kind: "deposit", Amount: "1.00", BalanceAfter: "1.00"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Peek()
	if err != nil || p.Kind != KindWallet {
		t.Fatalf("peek: %v %v", p.Kind, err)
	}
	n := 0
	for {
		rec, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if rec.Kind == KindEnd {
			break
		}
		n++
		if cap(r.buf) > 1<<10 {
			t.Fatalf("line buffer grew to %d bytes", cap(r.buf))
		}
	}
	if n != 20001 || r.Counts().Events != 20000 {
		t.Fatalf("read %d records, %v", n, r.Counts())
	}
	if rec, err := r.Next(); err != nil || rec.Kind != KindEnd {
		t.Fatalf("after the end: %v %v", rec.Kind, err)
	}
}

func TestDecimal(t *testing.T) {
	for s, want := range map[string]bool{
		"0": true, "12.50": true, "-3.5": true, "100": true,
		"": false, "-": false, "1.": false, ".5": false, "1e3": false, "1 ": false, "NaN": false, "+1": false, "1.2.3": false,
	} {
		if got := decimal(s); got != want {
			t.Errorf("decimal(%q) = %v, want %v", s, got, want)
		}
	}
}
