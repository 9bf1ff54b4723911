package postgres

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/wallet"
)

// The fast batch statement's 23 column arrays are sent in Postgres's binary
// array format, encoded here into one reused buffer. pgx encodes a []string
// by boxing every element into an interface (an allocation per element and
// column: about a tenth of walletd's allocations under load, plus the CPU of
// its generic encode plans); the arrays of a batch are a few hundred
// elements of four element types, whose wire format is fixed and simple.
// TestBinaryArraysMatchPgx checks every parameter against pgx's own
// encoding of the same batch.

// Element type OIDs (pg_type) of the arrays the batch statements take.
const (
	oidBool        = 16
	oidInt8        = 20
	oidText        = 25
	oidTimestamptz = 1184
)

// microsecondsToY2K: Postgres timestamps count microseconds from 2000-01-01
// UTC.
const microsecondsToY2K = 946684800 * 1_000_000

// paramBuf holds the encoded parameters of one statement.
type paramBuf struct {
	buf    []byte
	ends   []int // end offset of each parameter in buf
	params [][]byte
}

func (p *paramBuf) reset() {
	p.buf, p.ends, p.params = p.buf[:0], p.ends[:0], p.params[:0]
}

// done closes the parameter being written.
func (p *paramBuf) done() { p.ends = append(p.ends, len(p.buf)) }

// values returns the parameters, slicing buf only now that it is complete
// (appending may have moved it).
func (p *paramBuf) values() [][]byte {
	start := 0
	for _, end := range p.ends {
		p.params = append(p.params, p.buf[start:end:end])
		start = end
	}
	return p.params
}

// header starts a one-dimensional array of n elements, lower bound 1 (an
// empty one too, as pgx sends it).
func (p *paramBuf) header(oid uint32, n int, hasNull bool) {
	var null uint32
	if hasNull {
		null = 1
	}
	p.buf = binary.BigEndian.AppendUint32(p.buf, 1) // dimensions
	p.buf = binary.BigEndian.AppendUint32(p.buf, null)
	p.buf = binary.BigEndian.AppendUint32(p.buf, oid)
	p.buf = binary.BigEndian.AppendUint32(p.buf, uint32(n))
	p.buf = binary.BigEndian.AppendUint32(p.buf, 1) // lower bound
}

// Elements, for the arrays encodeBatch writes element by element.

func (p *paramBuf) text(v string) {
	p.buf = binary.BigEndian.AppendUint32(p.buf, uint32(len(v)))
	p.buf = append(p.buf, v...)
}

func (p *paramBuf) null() { p.buf = binary.BigEndian.AppendUint32(p.buf, 0xFFFFFFFF) } // length -1

// textFrom appends a text element whose bytes fill appends in place; its
// length is filled in after.
func (p *paramBuf) textFrom(fill func([]byte) []byte) {
	at := len(p.buf)
	p.buf = binary.BigEndian.AppendUint32(p.buf, 0)
	p.buf = fill(p.buf)
	binary.BigEndian.PutUint32(p.buf[at:], uint32(len(p.buf)-at-4))
}

// amount appends a text element of a's decimal text.
func (p *paramBuf) amount(a wallet.Amount) { p.textFrom(a.Append) }

func (p *paramBuf) int8(v int64) {
	p.buf = binary.BigEndian.AppendUint32(p.buf, 8)
	p.buf = binary.BigEndian.AppendUint64(p.buf, uint64(v))
}

func (p *paramBuf) bool(v bool) {
	b := byte(0)
	if v {
		b = 1
	}
	p.buf = binary.BigEndian.AppendUint32(p.buf, 1)
	p.buf = append(p.buf, b)
}

func (p *paramBuf) timestamp(v time.Time) {
	us := v.Unix()*1_000_000 + int64(v.Nanosecond())/1000 - microsecondsToY2K
	p.int8(us)
}

// encodeBatch writes the parameters $1-$23 of the batch statements for
// batch straight from its writes: what pgx would send for the column
// slices batchArgs.build makes (TestBinaryArraysMatchPgx), without building
// them first (a string per amount and balance, a pointer per nullable cell:
// about six allocations per event). The fast statement, which commits
// nearly every batch, takes these; the careful one goes through build and
// pgx.
func (p *paramBuf) encodeBatch(batch []*request) ([][]byte, error) {
	p.reset()
	events, snapshots := 0, 0
	hasNullBalance, hasNullKey, hasNullSettles := false, false, false
	for _, r := range batch {
		w := &r.w
		events += len(w.Events)
		if w.Snapshot != nil {
			snapshots++
		}
		hasNullBalance = hasNullBalance || (len(w.Events) == 0 && w.Create == nil)
		for i := range w.Events {
			ev := &w.Events[i]
			hasNullKey = hasNullKey || ev.BetKey() == ""
			hasNullSettles = hasNullSettles || len(ev.Settles) == 0
		}
	}
	writes := func(oid uint32, hasNull bool, elem func(w *actors.Write)) {
		p.header(oid, len(batch), hasNull)
		for _, r := range batch {
			elem(&r.w)
		}
		p.done()
	}
	eachEvent := func(oid uint32, hasNull bool, elem func(w *actors.Write, ev *wallet.Event)) {
		p.header(oid, events, hasNull)
		for _, r := range batch {
			for i := range r.w.Events {
				elem(&r.w, &r.w.Events[i])
			}
		}
		p.done()
	}

	writes(oidText, false, func(w *actors.Write) { p.text(w.PlayerID) })
	writes(oidInt8, false, func(w *actors.Write) { p.int8(int64(w.Expected)) })
	writes(oidInt8, false, func(w *actors.Write) { p.int8(int64(w.Version())) })
	writes(oidText, hasNullBalance, func(w *actors.Write) {
		switch {
		case len(w.Events) > 0:
			p.amount(w.Events[len(w.Events)-1].BalanceAfter)
		case w.Create != nil:
			p.amount(wallet.Zero(w.Create.Currency))
		default:
			p.null()
		}
	})
	writes(oidBool, false, func(w *actors.Write) { p.bool(w.Create != nil) })
	writes(oidText, false, func(w *actors.Write) {
		if w.Create != nil {
			p.text(w.Create.Currency.Code)
		} else {
			p.text("")
		}
	})
	writes(oidTimestamptz, false, func(w *actors.Write) {
		if w.Create != nil {
			p.timestamp(w.Create.CreatedAt)
		} else {
			p.timestamp(time.Time{})
		}
	})

	eachEvent(oidText, false, func(w *actors.Write, _ *wallet.Event) { p.text(w.PlayerID) })
	eachEvent(oidInt8, false, func(_ *actors.Write, ev *wallet.Event) { p.int8(int64(ev.Seq)) })
	eachEvent(oidText, false, func(_ *actors.Write, ev *wallet.Event) { p.text(ev.TxID) })
	eachEvent(oidText, false, func(_ *actors.Write, ev *wallet.Event) { p.text(string(ev.Kind)) })
	eachEvent(oidText, false, func(_ *actors.Write, ev *wallet.Event) { p.amount(ev.Amount) })
	eachEvent(oidText, false, func(_ *actors.Write, ev *wallet.Event) { p.amount(ev.BalanceAfter) })
	eachEvent(oidText, false, func(_ *actors.Write, ev *wallet.Event) { p.text(ev.RoundID) })
	eachEvent(oidText, false, func(_ *actors.Write, ev *wallet.Event) { p.text(ev.GameID) })
	eachEvent(oidText, false, func(_ *actors.Write, ev *wallet.Event) { p.text(ev.Ref) })
	eachEvent(oidText, hasNullKey, func(_ *actors.Write, ev *wallet.Event) {
		if k := ev.BetKey(); k != "" {
			p.text(k)
		} else {
			p.null()
		}
	})
	eachEvent(oidText, hasNullSettles, func(_ *actors.Write, ev *wallet.Event) {
		if len(ev.Settles) == 0 {
			p.null()
			return
		}
		p.textFrom(func(b []byte) []byte { return appendArrayLiteral(b, ev.Settles) })
	})
	eachEvent(oidBool, false, func(_ *actors.Write, ev *wallet.Event) { p.bool(ev.Tombstone) })
	eachEvent(oidTimestamptz, false, func(_ *actors.Write, ev *wallet.Event) { p.timestamp(ev.At) })

	// Snapshots: one write in a thousand or so carries one.
	var err error
	snaps := func(oid uint32, elem func(w *actors.Write)) {
		p.header(oid, snapshots, false)
		for _, r := range batch {
			if r.w.Snapshot != nil {
				elem(&r.w)
			}
		}
		p.done()
	}
	snaps(oidText, func(w *actors.Write) { p.text(w.PlayerID) })
	snaps(oidInt8, func(w *actors.Write) { p.int8(int64(w.Snapshot.Version)) })
	snaps(oidText, func(w *actors.Write) {
		data, merr := json.Marshal(w.Snapshot)
		if merr != nil && err == nil {
			err = fmt.Errorf("postgres: batch not committed: snapshot of %s: %w", w.PlayerID, merr)
		}
		p.buf = binary.BigEndian.AppendUint32(p.buf, uint32(len(data)))
		p.buf = append(p.buf, data...)
	})
	if err != nil {
		return nil, err
	}
	return p.values(), nil
}

// batchParams is the number of the batch statements' parameters.
const batchParams = 23
