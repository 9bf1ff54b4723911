package postgres

import (
	"fmt"
	"strings"
	"testing"

	"github.com/walletd/walletd/wallet"
)

// TestVerify: a store written through Append is clean; each planted
// corruption is reported against its wallet, and only there.
func TestVerify(t *testing.T) {
	s, dsn := openTest(t, Options{})
	ctx := testCtx(t)
	ids := []string{"clean", "balance", "gap", "lastafter", "chain", "orphanwallet", "snapshot", "version", "empty", "emptybal"}
	for _, id := range ids {
		a := newAcct(t, id, "EUR")
		if id != "empty" && id != "emptybal" {
			a.deposit(t, "d1", "10.00")
			a.apply(t, wallet.Command{Kind: wallet.KindBet, TxID: "b1", RoundID: "r1", Amount: "2.50"})
			a.apply(t, wallet.Command{Kind: wallet.KindWin, TxID: "w1", RoundID: "r1", Amount: "4.00"})
			a.apply(t, wallet.Command{Kind: wallet.KindWithdraw, TxID: "x1", Amount: "1.25"})
		}
		w := a.write()
		sn := a.st.Snapshot()
		w.Snapshot = &sn
		mustAppend(t, s, w)
		if id != "empty" && id != "emptybal" {
			a.deposit(t, "d2", "0.05")
			mustAppend(t, s, a.write())
		}
	}
	if problems, err := s.Verify(ctx); err != nil || len(problems) != 0 {
		t.Fatalf("verify of a clean store: %v %v", problems, err)
	}

	c := sqlConn(t, dsn)
	// Each corruption keeps the others' checks quiet where it can, so the
	// test shows which check caught it.
	exec(t, c, "UPDATE wallets SET balance = balance + 1 WHERE player_id = 'balance'")
	exec(t, c, "DELETE FROM journal WHERE player_id = 'gap' AND seq = 2")
	exec(t, c, "UPDATE journal SET balance_after = balance_after + 1 WHERE player_id = 'lastafter' AND seq = 5")
	exec(t, c, "UPDATE journal SET balance_after = 99 WHERE player_id = 'chain' AND seq = 2")
	exec(t, c, "INSERT INTO journal (player_id, seq, tx_id, kind, amount, balance_after, created_at) VALUES ('nowallet', 1, 't', 'deposit', 1, 1, now())")
	exec(t, c, "UPDATE snapshots SET data = jsonb_set(data, '{balance}', '\"7.77\"') WHERE player_id = 'snapshot'")
	exec(t, c, "UPDATE wallets SET version = 7 WHERE player_id = 'version'")
	exec(t, c, "UPDATE wallets SET balance = 3 WHERE player_id = 'emptybal'")

	problems, err := s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make(map[string][]string)
	for _, p := range problems {
		got[p.PlayerID] = append(got[p.PlayerID], p.Detail)
	}
	want := map[string][]string{
		"balance":   {"journal sums to", "last entry"},
		"gap":       {"seq 1..5", "journal sums to", "seq 3 does not follow"},
		"lastafter": {"last entry", "seq 5 does not follow"},
		"chain":     {"seq 2 does not follow"}, // seq 3 follows 99 no more either; the first is named
		"nowallet":  {"does not exist"},
		"snapshot":  {"snapshot at version 4"},
		"version":   {"version 7"},
		"emptybal":  {"journal sums to 0"},
	}
	for id, frags := range want {
		joined := strings.Join(got[id], " | ")
		for _, f := range frags {
			if !strings.Contains(joined, f) {
				t.Errorf("%s: problems %q do not mention %q", id, joined, f)
			}
		}
	}
	for id, details := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("%s is clean but reported: %v", id, details)
		}
	}
	if t.Failed() {
		for _, p := range problems {
			t.Log(fmt.Sprintf("%s: %s", p.PlayerID, p.Detail))
		}
	}
}
