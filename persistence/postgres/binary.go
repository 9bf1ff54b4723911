package postgres

import (
	"encoding/binary"
	"time"
)

// The fast batch statement's 23 column arrays are sent in Postgres's binary
// array format, encoded here into one reused buffer. pgx encodes a []string
// by boxing every element into an interface (an allocation per element and
// column: about a tenth of walletd's allocations under load, plus the CPU of
// its generic encode plans); the arrays of a batch are a few hundred
// elements of four element types, whose wire format is fixed and simple.
// TestBinaryArraysMatchPgx checks every column type against pgx's own
// encoding.

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

func (p *paramBuf) texts(vs []string) {
	p.header(oidText, len(vs), false)
	for _, v := range vs {
		p.buf = binary.BigEndian.AppendUint32(p.buf, uint32(len(v)))
		p.buf = append(p.buf, v...)
	}
	p.done()
}

// nullableTexts encodes nil elements as SQL NULL.
func (p *paramBuf) nullableTexts(vs []*string) {
	hasNull := false
	for _, v := range vs {
		hasNull = hasNull || v == nil
	}
	p.header(oidText, len(vs), hasNull)
	for _, v := range vs {
		if v == nil {
			p.buf = binary.BigEndian.AppendUint32(p.buf, 0xFFFFFFFF) // length -1: NULL
			continue
		}
		p.buf = binary.BigEndian.AppendUint32(p.buf, uint32(len(*v)))
		p.buf = append(p.buf, *v...)
	}
	p.done()
}

func (p *paramBuf) int8s(vs []int64) {
	p.header(oidInt8, len(vs), false)
	for _, v := range vs {
		p.buf = binary.BigEndian.AppendUint32(p.buf, 8)
		p.buf = binary.BigEndian.AppendUint64(p.buf, uint64(v))
	}
	p.done()
}

func (p *paramBuf) bools(vs []bool) {
	p.header(oidBool, len(vs), false)
	for _, v := range vs {
		b := byte(0)
		if v {
			b = 1
		}
		p.buf = binary.BigEndian.AppendUint32(p.buf, 1)
		p.buf = append(p.buf, b)
	}
	p.done()
}

func (p *paramBuf) timestamps(vs []time.Time) {
	p.header(oidTimestamptz, len(vs), false)
	for _, v := range vs {
		us := v.Unix()*1_000_000 + int64(v.Nanosecond())/1000 - microsecondsToY2K
		p.buf = binary.BigEndian.AppendUint32(p.buf, 8)
		p.buf = binary.BigEndian.AppendUint64(p.buf, uint64(us))
	}
	p.done()
}

// encode writes the batch's arrays as the statements' parameters $1-$23, in
// the order of values.
func (a *batchArgs) encode(p *paramBuf) [][]byte {
	p.reset()
	p.texts(a.wID)
	p.int8s(a.wExpected)
	p.int8s(a.wVersion)
	p.nullableTexts(a.wBalance)
	p.bools(a.wCreate)
	p.texts(a.wCurrency)
	p.timestamps(a.wCreatedAt)
	p.texts(a.eID)
	p.int8s(a.eSeq)
	p.texts(a.eTx)
	p.texts(a.eKind)
	p.texts(a.eAmount)
	p.texts(a.eBal)
	p.texts(a.eRound)
	p.texts(a.eGame)
	p.texts(a.eRef)
	p.nullableTexts(a.eBetKey)
	p.nullableTexts(a.eSettles)
	p.bools(a.eTomb)
	p.timestamps(a.eAt)
	p.texts(a.sID)
	p.int8s(a.sVersion)
	p.texts(a.sData)
	return p.values()
}

// batchParams is the number of the batch statements' parameters.
const batchParams = 23
