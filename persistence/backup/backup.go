// Package backup is walletd's logical backup format: the same file whatever
// store wrote it, so a backup of the embedded store restores into Postgres
// and back (which is also how a laptop's data moves to production).
//
// A backup is a gzip stream of JSON lines, one record per line, in this
// order:
//
//	{"type":"header","format":"walletd-backup","format_version":1,"created_at":…,"source":"embedded","walletd_version":…}
//	{"type":"wallet","player_id":…,"currency":…,"version":…,"balance":"12.50","created_at":…}    one per wallet
//	{"type":"event","player_id":…,"seq":…,"tx_id":…,"kind":…,"amount":"2.50",…}                  every journal row
//	{"type":"snapshot","player_id":…,"version":…,"data":{…}}                                      the latest snapshot of each wallet
//	{"type":"trailer","wallets":…,"events":…,"snapshots":…,"sha256":…}
//
// Money travels as the exact decimal text the store holds, times as RFC 3339
// with every digit the store keeps (nanoseconds from the embedded store,
// microseconds from Postgres), in UTC. The trailer's sha256 is the SHA-256 of
// every line before it (the uncompressed bytes, newlines included), so a
// truncated, edited or corrupted file is refused when it is read to the end;
// restores read it to the end once before they write anything (Check).
//
// Records are streamed both ways: neither Writer nor Reader holds more than
// one record, so a backup's size is bounded by the disk, not by memory.
package backup

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"strings"
	"time"

	"github.com/walletd/walletd/wallet"
)

// Format is the header's format name; FormatVersion the version this package
// writes and the newest it reads. A change a reader of an older version would
// misread must bump FormatVersion.
const (
	Format        = "walletd-backup"
	FormatVersion = 1
)

// Source names, as the stores' Kind() says them.
const (
	SourceEmbedded = "embedded"
	SourcePostgres = "postgres"
)

// ErrCorrupt wraps every error about the file's content (as opposed to an
// error reading it): the backup cannot be trusted and must not be restored.
var ErrCorrupt = errors.New("backup: corrupt or not a walletd backup")

// ErrNotEmpty is returned (wrapped) by the stores' Restore when the target
// store already holds data: a restore never merges into a live store.
var ErrNotEmpty = errors.New("backup: the target store is not empty")

// Header is the first record of a backup.
type Header struct {
	Format         string    `json:"format"`
	FormatVersion  int       `json:"format_version"`
	CreatedAt      time.Time `json:"created_at"`
	Source         string    `json:"source"` // SourceEmbedded or SourcePostgres
	WalletdVersion string    `json:"walletd_version"`
}

// Wallet is a row of the wallets table.
type Wallet struct {
	PlayerID  string    `json:"player_id"`
	Currency  string    `json:"currency"`
	Version   uint64    `json:"version"`
	Balance   string    `json:"balance"`
	CreatedAt time.Time `json:"created_at"`
}

// Event is a journal row, every column (bet_key is derived from the others
// and so left out: wallet.Event.BetKey).
type Event struct {
	PlayerID     string    `json:"player_id"`
	Seq          uint64    `json:"seq"`
	TxID         string    `json:"tx_id"`
	Kind         string    `json:"kind"`
	Amount       string    `json:"amount"`
	BalanceAfter string    `json:"balance_after"`
	RoundID      string    `json:"round_id"`
	GameID       string    `json:"game_id"`
	RefTxID      string    `json:"ref_tx_id"`
	Settles      []string  `json:"settles"`
	Tombstone    bool      `json:"tombstone"`
	CreatedAt    time.Time `json:"created_at"`
}

// BetKey is the event's bet key as the stores index it (see
// wallet.Event.BetKey): a bet's own tx_id, or the bet a tombstone refuses.
func (e Event) BetKey() string {
	return wallet.Event{Kind: wallet.Kind(e.Kind), TxID: e.TxID, Ref: e.RefTxID, Tombstone: e.Tombstone}.BetKey()
}

// Snapshot is a wallet's latest snapshot; Data is the wallet.Snapshot JSON.
type Snapshot struct {
	PlayerID string          `json:"player_id"`
	Version  uint64          `json:"version"`
	Data     json.RawMessage `json:"data"`
}

// Counts are the records of each kind in a backup.
type Counts struct {
	Wallets   uint64 `json:"wallets"`
	Events    uint64 `json:"events"`
	Snapshots uint64 `json:"snapshots"`
}

func (c Counts) String() string {
	return fmt.Sprintf("%d wallets, %d journal events, %d snapshots", c.Wallets, c.Events, c.Snapshots)
}

// Trailer is the last record: the counts and the checksum of everything
// before it.
type Trailer struct {
	Counts
	SHA256 string `json:"sha256"`
}

// Record types as they appear in "type".
const (
	typeHeader   = "header"
	typeWallet   = "wallet"
	typeEvent    = "event"
	typeSnapshot = "snapshot"
	typeTrailer  = "trailer"
)

// section orders the records: a file goes header, wallets, events,
// snapshots, trailer, never back. Restores rely on it to load one table at a
// time (Postgres COPYs each table in one go).
type section int

const (
	secHeader section = iota
	secWallets
	secEvents
	secSnapshots
	secTrailer
)

// maxLine bounds one record: a snapshot lists a wallet's open bets, which
// can be many, but a line this long is corruption, and reading it whole
// would let a bad file take all the memory.
const maxLine = 64 << 20

// Writer writes a backup. Call the record methods in section order (all
// wallets, then all events, then all snapshots), then Close. It is not safe
// for concurrent use.
type Writer struct {
	gz     *gzip.Writer
	buf    *bufio.Writer // in front of gzip: one deflate call per 64 KiB, not per line
	sum    hash.Hash
	line   []byte
	sec    section
	counts Counts
	err    error // sticky: a failed write leaves a file that must not be finished
}

// NewWriter writes h's header to w and returns the writer for the rest.
// Format, FormatVersion and (if zero) CreatedAt are filled in; CreatedAt is
// stored in UTC.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	if h.Source == "" {
		return nil, errors.New("backup: the header needs a source store")
	}
	h.Format, h.FormatVersion = Format, FormatVersion
	if h.CreatedAt.IsZero() {
		h.CreatedAt = time.Now()
	}
	h.CreatedAt = h.CreatedAt.UTC()
	gz, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	bw := &Writer{gz: gz, buf: bufio.NewWriterSize(gz, 64<<10), sum: sha256.New()}
	bw.write(typeHeader, secHeader, h)
	return bw, bw.err
}

// Wallet writes a wallet row.
func (w *Writer) Wallet(r Wallet) error {
	r.CreatedAt = r.CreatedAt.UTC()
	w.write(typeWallet, secWallets, r)
	if w.err == nil {
		w.counts.Wallets++
	}
	return w.err
}

// Event writes a journal row.
func (w *Writer) Event(r Event) error {
	r.CreatedAt = r.CreatedAt.UTC()
	if r.Settles == nil {
		r.Settles = []string{} // every column present: [] rather than null
	}
	w.write(typeEvent, secEvents, r)
	if w.err == nil {
		w.counts.Events++
	}
	return w.err
}

// Snapshot writes a snapshot row. Data is compacted, so the same snapshot
// reads the same from either store (Postgres jsonb adds spaces).
func (w *Writer) Snapshot(r Snapshot) error {
	var b bytes.Buffer
	if err := json.Compact(&b, r.Data); err != nil {
		w.fail(fmt.Errorf("backup: snapshot of %s is not JSON: %w", r.PlayerID, err))
		return w.err
	}
	r.Data = b.Bytes()
	w.write(typeSnapshot, secSnapshots, r)
	if w.err == nil {
		w.counts.Snapshots++
	}
	return w.err
}

// Close writes the trailer and flushes the gzip stream. It does not close
// the underlying writer (the caller fsyncs and renames files). After an
// error the output is incomplete and Close refuses to finish it.
func (w *Writer) Close() (Trailer, error) {
	if w.err != nil {
		return Trailer{}, w.err
	}
	t := Trailer{Counts: w.counts, SHA256: hex.EncodeToString(w.sum.Sum(nil))}
	w.write(typeTrailer, secTrailer, t)
	if w.err == nil {
		w.fail(w.buf.Flush())
	}
	if w.err == nil {
		w.fail(w.gz.Close())
	}
	if w.err != nil {
		return Trailer{}, w.err
	}
	w.err = errors.New("backup: writer is closed")
	return t, nil
}

// Counts returns what has been written so far.
func (w *Writer) Counts() Counts { return w.counts }

func (w *Writer) fail(err error) {
	if err != nil && w.err == nil {
		w.err = err
	}
}

// write encodes one record as {"type":…, fields…}\n, hashing it unless it
// is the trailer.
func (w *Writer) write(typ string, sec section, v any) {
	if w.err != nil {
		return
	}
	if sec < w.sec || (sec == secHeader && w.sec != secHeader) || w.sec == secTrailer {
		w.fail(fmt.Errorf("backup: a %s record cannot follow the %s section (records go header, wallets, events, snapshots, trailer)", typ, sectionName(w.sec)))
		return
	}
	body, err := json.Marshal(v)
	if err != nil {
		w.fail(fmt.Errorf("backup: encode %s: %w", typ, err))
		return
	}
	// Splice the type in front of the struct's own fields: the readers
	// dispatch on it, and humans reading the file with zcat see it first.
	w.line = append(w.line[:0], `{"type":"`...)
	w.line = append(w.line, typ...)
	w.line = append(w.line, '"')
	if len(body) > 2 {
		w.line = append(w.line, ',')
	}
	w.line = append(w.line, body[1:]...)
	w.line = append(w.line, '\n')
	if sec != secTrailer {
		w.sum.Write(w.line)
	}
	if _, err := w.buf.Write(w.line); err != nil {
		w.fail(fmt.Errorf("backup: write: %w", err))
		return
	}
	w.sec = sec
}

func sectionName(s section) string {
	return [...]string{"header", "wallets", "events", "snapshots", "trailer"}[s]
}

// Kind is the kind of a record a Reader returns.
type Kind int

const (
	// KindEnd: no more records; the trailer has been checked.
	KindEnd Kind = iota
	KindWallet
	KindEvent
	KindSnapshot
)

// Record is one record; the field named by Kind is set.
type Record struct {
	Kind     Kind
	Wallet   Wallet
	Event    Event
	Snapshot Snapshot
}

// line is every field any record has, so each line is decoded once.
type line struct {
	Type string `json:"type"`
	// header
	Format         string `json:"format"`
	FormatVersion  int    `json:"format_version"`
	Source         string `json:"source"`
	WalletdVersion string `json:"walletd_version"`
	// wallet, event, snapshot
	PlayerID     string          `json:"player_id"`
	CreatedAt    time.Time       `json:"created_at"`
	Currency     string          `json:"currency"`
	Version      uint64          `json:"version"`
	Balance      string          `json:"balance"`
	Seq          uint64          `json:"seq"`
	TxID         string          `json:"tx_id"`
	Kind         string          `json:"kind"`
	Amount       string          `json:"amount"`
	BalanceAfter string          `json:"balance_after"`
	RoundID      string          `json:"round_id"`
	GameID       string          `json:"game_id"`
	RefTxID      string          `json:"ref_tx_id"`
	Settles      []string        `json:"settles"`
	Tombstone    bool            `json:"tombstone"`
	Data         json.RawMessage `json:"data"`
	// trailer
	Wallets   *uint64 `json:"wallets"`
	Events    *uint64 `json:"events"`
	Snapshots *uint64 `json:"snapshots"`
	SHA256    string  `json:"sha256"`
}

// Reader reads a backup record by record, checking each as it goes and the
// trailer at the end. A Reader that returned an error stays failed.
//
// Reading a file once to its end (KindEnd) proves it whole; records handed
// out before that may belong to a damaged file, so a restore either checks
// the file first (Check) or keeps everything it wrote uncommitted until
// KindEnd, and in practice does both.
type Reader struct {
	gz      *gzip.Reader
	br      *bufio.Reader
	sum     hash.Hash
	header  Header
	trailer Trailer
	sec     section
	counts  Counts
	lineNo  int
	prev    Record // the last record of its section, for order checks
	peeked  *Record
	err     error
	buf     []byte
}

// NewReader opens a backup and reads its header.
func NewReader(r io.Reader) (*Reader, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the file is empty", ErrCorrupt)
		}
		if errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: not a gzip file: %v", ErrCorrupt, err)
		}
		return nil, fmt.Errorf("backup: read: %w", err)
	}
	rd := &Reader{gz: gz, br: bufio.NewReaderSize(gz, 64<<10), sum: sha256.New()}
	l, err := rd.readLine()
	if err != nil {
		return nil, err
	}
	if l.Type != typeHeader || l.Format != Format {
		return nil, fmt.Errorf("%w: the first line is not a %s header", ErrCorrupt, Format)
	}
	if l.FormatVersion < 1 || l.FormatVersion > FormatVersion {
		return nil, fmt.Errorf("%w: format version %d; this walletd reads versions 1 to %d (a newer walletd wrote it?)", ErrCorrupt, l.FormatVersion, FormatVersion)
	}
	if l.Source == "" {
		return nil, fmt.Errorf("%w: the header names no source store", ErrCorrupt)
	}
	rd.header = Header{Format: l.Format, FormatVersion: l.FormatVersion, CreatedAt: l.CreatedAt, Source: l.Source, WalletdVersion: l.WalletdVersion}
	return rd, nil
}

// Header returns the backup's header.
func (r *Reader) Header() Header { return r.header }

// Trailer returns the trailer once Next has returned KindEnd.
func (r *Reader) Trailer() Trailer { return r.trailer }

// Counts returns the records read so far.
func (r *Reader) Counts() Counts { return r.counts }

// Peek returns the next record without consuming it.
func (r *Reader) Peek() (Record, error) {
	if r.peeked == nil {
		rec, err := r.next()
		if err != nil {
			return Record{}, err
		}
		r.peeked = &rec
	}
	return *r.peeked, nil
}

// Next returns the next record. At the trailer it checks the counts and the
// checksum, then that nothing follows, and returns a Record of KindEnd
// (again on every later call).
func (r *Reader) Next() (Record, error) {
	if r.peeked != nil {
		rec := *r.peeked
		r.peeked = nil
		return rec, nil
	}
	return r.next()
}

// Drain reads the rest of the backup, checking it to its end, and returns
// what is wrong with it (an ErrCorrupt), or nil. A restore that failed on a
// record calls it: a damaged file can decode into rows the database refuses
// before the damage itself shows (the gzip checksum is checked at the end),
// and the damage is what the operator needs to hear about.
func (r *Reader) Drain() error {
	for {
		rec, err := r.Next()
		if err != nil {
			return err
		}
		if rec.Kind == KindEnd {
			return nil
		}
	}
}

func (r *Reader) next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	if r.sec == secTrailer {
		return Record{Kind: KindEnd}, nil
	}
	rec, err := r.decode()
	if err != nil {
		r.err = err
		return Record{}, err
	}
	return rec, nil
}

func (r *Reader) decode() (Record, error) {
	l, err := r.readLine()
	if err != nil {
		return Record{}, err
	}
	bad := func(format string, args ...any) (Record, error) {
		return Record{}, fmt.Errorf("%w: line %d: %s", ErrCorrupt, r.lineNo, fmt.Sprintf(format, args...))
	}
	var rec Record
	var sec section
	switch l.Type {
	case typeWallet:
		sec, rec.Kind = secWallets, KindWallet
		rec.Wallet = Wallet{PlayerID: l.PlayerID, Currency: l.Currency, Version: l.Version, Balance: l.Balance, CreatedAt: l.CreatedAt}
		if err := checkWallet(rec.Wallet); err != nil {
			return bad("wallet %q: %v", l.PlayerID, err)
		}
		if r.prev.Kind == KindWallet && r.prev.Wallet.PlayerID == l.PlayerID {
			return bad("wallet %q twice", l.PlayerID)
		}
		r.counts.Wallets++
	case typeEvent:
		sec, rec.Kind = secEvents, KindEvent
		if len(l.Settles) == 0 {
			l.Settles = nil
		}
		rec.Event = Event{PlayerID: l.PlayerID, Seq: l.Seq, TxID: l.TxID, Kind: l.Kind, Amount: l.Amount, BalanceAfter: l.BalanceAfter,
			RoundID: l.RoundID, GameID: l.GameID, RefTxID: l.RefTxID, Settles: l.Settles, Tombstone: l.Tombstone, CreatedAt: l.CreatedAt}
		if err := checkEvent(rec.Event); err != nil {
			return bad("event %q seq %d: %v", l.PlayerID, l.Seq, err)
		}
		if p := r.prev; p.Kind == KindEvent && p.Event.PlayerID == l.PlayerID && p.Event.Seq >= l.Seq {
			return bad("event %q seq %d follows seq %d", l.PlayerID, l.Seq, p.Event.Seq)
		}
		r.counts.Events++
	case typeSnapshot:
		sec, rec.Kind = secSnapshots, KindSnapshot
		rec.Snapshot = Snapshot{PlayerID: l.PlayerID, Version: l.Version, Data: l.Data}
		if err := checkSnapshot(rec.Snapshot); err != nil {
			return bad("snapshot of %q: %v", l.PlayerID, err)
		}
		r.counts.Snapshots++
	case typeTrailer:
		if l.Wallets == nil || l.Events == nil || l.Snapshots == nil || l.SHA256 == "" {
			return bad("the trailer lacks counts or the checksum")
		}
		r.trailer = Trailer{Counts: Counts{Wallets: *l.Wallets, Events: *l.Events, Snapshots: *l.Snapshots}, SHA256: l.SHA256}
		if r.trailer.Counts != r.counts {
			return bad("the trailer counts %v, the file holds %v", r.trailer.Counts, r.counts)
		}
		if sum := hex.EncodeToString(r.sum.Sum(nil)); sum != l.SHA256 {
			return bad("checksum mismatch: the trailer says %s, the records hash to %s", l.SHA256, sum)
		}
		if err := r.atEOF(); err != nil {
			return Record{}, err
		}
		r.sec = secTrailer
		return Record{Kind: KindEnd}, nil
	case typeHeader:
		return bad("a second header")
	default:
		return bad("unknown record type %q", l.Type)
	}
	if sec < r.sec {
		return bad("a %s record after the %s section", l.Type, sectionName(r.sec))
	}
	r.sec = sec
	r.prev = rec
	return rec, nil
}

// atEOF checks that the trailer is the end: of the lines, and of the gzip
// stream (whose own CRC and length the gzip reader checks at its end).
func (r *Reader) atEOF() error {
	n, err := io.Copy(io.Discard, io.LimitReader(r.br, 1))
	switch {
	case err != nil:
		return r.readErr(err)
	case n > 0:
		return fmt.Errorf("%w: data after the trailer", ErrCorrupt)
	}
	return nil
}

// readLine reads, hashes and decodes the next line. Every line ends with a
// newline: a last line without one is a truncated file.
func (r *Reader) readLine() (line, error) {
	r.buf = r.buf[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		r.buf = append(r.buf, chunk...)
		if len(r.buf) > maxLine {
			return line{}, fmt.Errorf("%w: line %d is longer than %d bytes", ErrCorrupt, r.lineNo+1, maxLine)
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			return line{}, fmt.Errorf("%w: the file ends before its trailer (truncated?)", ErrCorrupt)
		}
		return line{}, r.readErr(err)
	}
	r.lineNo++
	var l line
	if err := json.Unmarshal(r.buf, &l); err != nil {
		return line{}, fmt.Errorf("%w: line %d: %v", ErrCorrupt, r.lineNo, err)
	}
	if l.Type != typeTrailer {
		r.sum.Write(r.buf)
	}
	return l, nil
}

// readErr classifies an error from the decompressor: a damaged or cut gzip
// stream is corruption, anything else an I/O error.
func (r *Reader) readErr(err error) error {
	var flateErr flate.CorruptInputError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: the compressed stream ends early (truncated file)", ErrCorrupt)
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader), errors.As(err, &flateErr):
		return fmt.Errorf("%w: damaged compressed stream: %v", ErrCorrupt, err)
	}
	return fmt.Errorf("backup: read: %w", err)
}

// Check reads a whole backup and returns its header and trailer if it is
// sound: a well-formed header, records that are well formed and in order,
// and a trailer whose counts and checksum match. It is what a restore runs
// before it writes anything, and what operators run on copies.
func Check(r io.Reader) (Header, Trailer, error) {
	rd, err := NewReader(r)
	if err != nil {
		return Header{}, Trailer{}, err
	}
	for {
		rec, err := rd.Next()
		if err != nil {
			return Header{}, Trailer{}, err
		}
		if rec.Kind == KindEnd {
			return rd.Header(), rd.Trailer(), nil
		}
	}
}

// The checks below are about form only: what a store's Restore needs to
// load a record without surprises. Whether the journal adds up is the
// stores' Verify's job, run after every restore.

func checkWallet(w Wallet) error {
	if w.PlayerID == "" {
		return errors.New("no player_id")
	}
	if _, ok := wallet.LookupCurrency(w.Currency); !ok {
		return fmt.Errorf("unknown currency %q", w.Currency)
	}
	if w.Version > math.MaxInt64 {
		return fmt.Errorf("version %d out of range", w.Version)
	}
	if !decimal(w.Balance) {
		return fmt.Errorf("balance %q is not a decimal", w.Balance)
	}
	return nil
}

func checkEvent(e Event) error {
	switch {
	case e.PlayerID == "":
		return errors.New("no player_id")
	case e.Seq == 0 || e.Seq > math.MaxInt64:
		return fmt.Errorf("seq %d out of range", e.Seq)
	case e.TxID == "":
		return errors.New("no tx_id")
	case !wallet.Kind(e.Kind).Valid():
		return fmt.Errorf("unknown kind %q", e.Kind)
	case !decimal(e.Amount):
		return fmt.Errorf("amount %q is not a decimal", e.Amount)
	case !decimal(e.BalanceAfter):
		return fmt.Errorf("balance_after %q is not a decimal", e.BalanceAfter)
	}
	for _, id := range e.Settles {
		// The embedded store keeps settles comma-separated.
		if id == "" || strings.ContainsRune(id, ',') {
			return fmt.Errorf("settles holds %q", id)
		}
	}
	return nil
}

func checkSnapshot(s Snapshot) error {
	if s.PlayerID == "" {
		return errors.New("no player_id")
	}
	if s.Version > math.MaxInt64 {
		return fmt.Errorf("version %d out of range", s.Version)
	}
	var sn wallet.Snapshot
	if err := json.Unmarshal(s.Data, &sn); err != nil {
		return fmt.Errorf("data: %v", err)
	}
	if sn.Version != s.Version {
		return fmt.Errorf("data says version %d, the record %d", sn.Version, s.Version)
	}
	return nil
}

// decimal reports whether s is a plain decimal as the stores print money:
// an optional minus, digits, optionally a point and digits. No exponent, no
// spaces: exactly what wallet.ParseStored and Postgres numeric both take
// without reinterpreting it.
func decimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	intPart, frac, hasPoint := strings.Cut(s, ".")
	if intPart == "" || len(s) > 64 || (hasPoint && frac == "") {
		return false
	}
	for _, part := range []string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return false
			}
		}
	}
	return true
}
