package walletpb

import (
	"errors"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/walletd/walletd/wallet"
)

// roundTrip sends m over the wire as a remote member would receive it.
func roundTrip[M proto.Message](t *testing.T, m M, into M) M {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(b, into); err != nil {
		t.Fatal(err)
	}
	return into
}

func TestCallRoundTrip(t *testing.T) {
	cmd := wallet.Command{Kind: wallet.KindWin, TxID: "w1", Amount: "10.500000", ExtraZeros: true, RoundID: "r", GameID: "g", Ref: "b1", Currency: "EUR"}
	c := roundTrip(t, ApplyCall("p1", cmd, "rid"), &WalletCall{})
	if c.GetOp() != Op_OP_APPLY || c.GetPlayerId() != "p1" || c.GetRequestId() != "rid" || c.Command() != cmd {
		t.Fatalf("apply call: %v", c)
	}
	kwd := wallet.Currency{Code: "KWD", Minor: 3}
	if c := roundTrip(t, OpenCall("p1", kwd, ""), &WalletCall{}); c.GetOp() != Op_OP_OPEN || c.OpenCurrency() != kwd {
		t.Fatalf("open call: %v", c)
	}
	if c := roundTrip(t, GetCall("p1", ""), &WalletCall{}); c.GetOp() != Op_OP_GET {
		t.Fatalf("get call: %v", c)
	}
}

func TestReplyRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		cur    wallet.Currency
		amount string
	}{
		{wallet.Currency{Code: "EUR", Minor: 2}, "12.50"},
		{wallet.Currency{Code: "JPY", Minor: 0}, "1000"},
		{wallet.Currency{Code: "CLF", Minor: 4}, "999999999999999999.0001"},
		{wallet.Currency{Code: "EUR", Minor: 2}, "0.00"},
	} {
		amt, err := wallet.ParseAmount(tc.amount, tc.cur)
		if err != nil {
			t.Fatal(err)
		}
		bal := amt.Add(amt)
		at := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
		res := wallet.Result{TxID: "t", Kind: wallet.KindWin, Amount: amt, Balance: bal, Version: 7, Duplicate: true,
			Outcome: wallet.OutcomeDuplicate, Settled: []string{"b1", "b2"}, At: at, Currency: tc.cur}
		r := &WalletReply{}
		r.SetResult(res)
		r.SetView("p1", tc.cur, bal, 7)
		r = roundTrip(t, r, &WalletReply{})
		got, err := r.Result()
		if err != nil {
			t.Fatal(err)
		}
		if got.Amount.String() != amt.String() || got.Amount.Cmp(amt) != 0 || got.Balance.String() != bal.String() ||
			got.TxID != "t" || got.Kind != wallet.KindWin || got.Version != 7 || !got.Duplicate ||
			got.Outcome != wallet.OutcomeDuplicate || !slices.Equal(got.Settled, res.Settled) || !got.At.Equal(at) ||
			got.Currency != tc.cur {
			t.Fatalf("result %s: %+v, want %+v", tc.amount, got, res)
		}
		id, c, b, v, err := r.View()
		if err != nil || id != "p1" || c != tc.cur || b.String() != bal.String() || v != 7 {
			t.Fatalf("view %s: %s %v %s %d %v", tc.amount, id, c, b, v, err)
		}
		if r.Err() != nil {
			t.Fatalf("error on a success: %v", r.Err())
		}
	}
}

func TestReplyErrors(t *testing.T) {
	r := &WalletReply{}
	r.SetError(wallet.Errorf(wallet.CodeBetNotFound, "bet b1 not found"))
	r = roundTrip(t, r, &WalletReply{})
	var we *wallet.Error
	if !errors.As(r.Err(), &we) || we.Code != wallet.CodeBetNotFound || we.Message != "bet b1 not found" {
		t.Fatalf("business error: %v", r.Err())
	}
	r = &WalletReply{}
	r.SetError(errors.New("pq: secret internals"))
	if wallet.ErrorCode(r.Err()) != wallet.CodeInternal || r.GetErrorMessage() != "internal error" {
		t.Fatalf("internal error crossed as %v", r.Err())
	}
	// A reply without a result decodes to zero values, not an error.
	if res, err := (&WalletReply{}).Result(); err != nil || !res.At.IsZero() || !res.Amount.IsZero() {
		t.Fatalf("empty result: %+v %v", res, err)
	}
	if _, err := ParseAmount("1e5"); err == nil {
		t.Fatal("an exponent was accepted as an amount")
	}
}
