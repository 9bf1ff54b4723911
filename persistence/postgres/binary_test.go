package postgres

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// TestBinaryArraysMatchPgx: every parameter of a batch, encoded by
// batchArgs.encode, is byte for byte what pgx sends for the same Go value
// in binary format (a nil slice: an empty array), for batches with and without NULLs, empty arrays,
// creates, snapshots and times before 2000 and far after.
func TestBinaryArraysMatchPgx(t *testing.T) {
	str := func(s string) *string { return &s }
	at := time.Date(2026, 11, 27, 6, 20, 1, 123456789, time.UTC)
	cases := map[string]batchArgs{
		"empty": {},
		"one write": {
			wID: []string{"p1"}, wExpected: []int64{4}, wVersion: []int64{5}, wBalance: []*string{str("12.50")},
			wCreate: []bool{false}, wCurrency: []string{""}, wCreatedAt: []time.Time{{}},
			eID: []string{"p1"}, eSeq: []int64{5}, eTx: []string{"tx-1"}, eKind: []string{"bet"}, eAmount: []string{"1.00"},
			eBal: []string{"12.50"}, eRound: []string{"r1"}, eGame: []string{""}, eRef: []string{""},
			eBetKey: []*string{str("tx-1")}, eSettles: []*string{nil}, eTomb: []bool{false}, eAt: []time.Time{at},
		},
		"mixed": {
			wID: []string{"a", "b:c", "long-" + string(bytes.Repeat([]byte{'x'}, 300))}, wExpected: []int64{0, 1 << 40, 7},
			wVersion: []int64{1, 1<<40 + 2, 8}, wBalance: []*string{nil, str("0"), str("99999999999999999999.123456")},
			wCreate: []bool{true, false, false}, wCurrency: []string{"EUR", "", ""},
			wCreatedAt: []time.Time{at.In(time.FixedZone("x", 3600)), time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC), time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)},
			eID:        []string{"b:c", "b:c"}, eSeq: []int64{1<<40 + 1, 1<<40 + 2}, eTx: []string{"w", "r"}, eKind: []string{"win", "rollback"},
			eAmount: []string{"3", "0.5"}, eBal: []string{"3", "3.5"}, eRound: []string{"", "r"}, eGame: []string{"g", ""},
			eRef: []string{"b1", "b2"}, eBetKey: []*string{nil, str("b2")}, eSettles: []*string{str(`{"b1"}`), nil},
			eTomb: []bool{false, true}, eAt: []time.Time{at, at.Add(time.Microsecond)},
			sID: []string{"a"}, sVersion: []int64{1}, sData: []string{`{"version":1}`},
		},
	}
	oids := []uint32{
		pgtype.TextArrayOID, pgtype.Int8ArrayOID, pgtype.Int8ArrayOID, pgtype.TextArrayOID, pgtype.BoolArrayOID,
		pgtype.TextArrayOID, pgtype.TimestamptzArrayOID,
		pgtype.TextArrayOID, pgtype.Int8ArrayOID, pgtype.TextArrayOID, pgtype.TextArrayOID, pgtype.TextArrayOID,
		pgtype.TextArrayOID, pgtype.TextArrayOID, pgtype.TextArrayOID, pgtype.TextArrayOID, pgtype.TextArrayOID,
		pgtype.TextArrayOID, pgtype.BoolArrayOID, pgtype.TimestamptzArrayOID,
		pgtype.TextArrayOID, pgtype.Int8ArrayOID, pgtype.TextArrayOID,
	}
	m := pgtype.NewMap()
	var p paramBuf
	for name, a := range cases {
		t.Run(name, func(t *testing.T) {
			values := a.values()
			// Twice through the same buffer: a reused buffer encodes the same.
			for range 2 {
				got := a.encode(&p)
				if len(got) != len(values) || len(values) != len(oids) || len(oids) != batchParams {
					t.Fatalf("%d parameters encoded, %d values, %d types, want %d", len(got), len(values), len(oids), batchParams)
				}
				for i, v := range values {
					// pgx sends a nil slice as NULL; encode sends an empty
					// array. The statements unnest both into no rows.
					if rv := reflect.ValueOf(v); rv.IsNil() {
						v = reflect.MakeSlice(rv.Type(), 0, 0).Interface()
					}
					want, err := m.Encode(oids[i], pgtype.BinaryFormatCode, v, nil)
					if err != nil {
						t.Fatalf("$%d: pgx: %v", i+1, err)
					}
					if !bytes.Equal(got[i], want) {
						t.Errorf("$%d (%T): encoded\n%x\npgx sends\n%x", i+1, v, got[i], want)
					}
				}
			}
		})
	}
}
