package postgres

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/wallet"
)

// TestBinaryArraysMatchPgx: every parameter encodeBatch writes for a batch
// is byte for byte what pgx sends, in binary format, for the column slices
// batchArgs.build makes of the same batch (the careful statement's
// arguments; a nil slice as an empty array): batches with and without
// NULLs, empty arrays, creates with and without events, writes without
// events, settled bets, tombstones, snapshots, versions beyond 32 bits and
// times before 2000, after 2262 and in other zones.
func TestBinaryArraysMatchPgx(t *testing.T) {
	eur, _ := wallet.LookupCurrency("EUR")
	jpy, _ := wallet.LookupCurrency("JPY")
	amt := func(s string, c wallet.Currency) wallet.Amount {
		a, err := wallet.ParseAmount(s, c)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	at := time.Date(2026, 11, 27, 6, 20, 1, 123456789, time.UTC)
	long := "long-" + strings.Repeat("x", 300)
	req := func(w actors.Write) *request { return &request{w: w} }
	cases := map[string][]*request{
		"empty": nil,
		"one bet": {req(actors.Write{PlayerID: "p1", Expected: 4, Events: []wallet.Event{
			{Seq: 5, TxID: "tx-1", Kind: wallet.KindBet, Amount: amt("1", eur), BalanceAfter: amt("12.5", eur), RoundID: "r1", At: at},
		}})},
		"mixed": {
			req(actors.Write{PlayerID: "a", Create: &actors.Wallet{PlayerID: "a", Currency: jpy, CreatedAt: at.In(time.FixedZone("x", 3600))}}),
			req(actors.Write{PlayerID: "b:c", Expected: 1 << 40, Events: []wallet.Event{
				{Seq: 1<<40 + 1, TxID: "w", Kind: wallet.KindWin, Amount: amt("3", eur), BalanceAfter: amt("3", eur), GameID: "g",
					Ref: "b1", Settles: []string{"b1", "b0"}, At: time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC)},
				{Seq: 1<<40 + 2, TxID: "r", Kind: wallet.KindRollback, Amount: amt("0.5", eur), BalanceAfter: amt("3.5", eur),
					RoundID: "r", Ref: "b2", Tombstone: true, At: time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)},
			}}),
			req(actors.Write{PlayerID: "d", Expected: 7}), // no events: the balance stays (NULL)
			req(actors.Write{PlayerID: long, Create: &actors.Wallet{PlayerID: long, Currency: eur, CreatedAt: at},
				Events: []wallet.Event{{Seq: 1, TxID: "dep", Kind: wallet.KindDeposit, Amount: amt("99999999999999.99", eur),
					BalanceAfter: amt("99999999999999.99", eur), At: at.Add(time.Microsecond)}},
				Snapshot: &wallet.Snapshot{Currency: "EUR", Version: 1, Balance: "99999999999999.99"}}),
		},
		"no nulls": {req(actors.Write{PlayerID: "q", Expected: 2, Events: []wallet.Event{
			{Seq: 3, TxID: "b", Kind: wallet.KindBet, Amount: amt("0.01", eur), BalanceAfter: amt("0", eur), At: at},
		}, Snapshot: &wallet.Snapshot{Currency: "EUR", Version: 3, Balance: "0.00",
			OpenBets: []wallet.SnapshotBet{{TxID: "b", Seq: 3, Amount: "0.01"}}}})},
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
	var (
		p    paramBuf
		args batchArgs
	)
	for name, batch := range cases {
		t.Run(name, func(t *testing.T) {
			if err := args.build(batch); err != nil {
				t.Fatal(err)
			}
			values := args.values()
			// Twice through the same buffer: a reused buffer encodes the same.
			for range 2 {
				got, err := p.encodeBatch(batch)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(values) || len(values) != len(oids) || len(oids) != batchParams {
					t.Fatalf("%d parameters encoded, %d values, %d types, want %d", len(got), len(values), len(oids), batchParams)
				}
				for i, v := range values {
					// pgx sends a nil slice as NULL; encodeBatch sends an
					// empty array. The statements unnest both into no rows.
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
