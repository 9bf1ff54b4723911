package bench

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestParseMix(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mix
		ok   bool
	}{
		{"bet=60,win=30,rollback=5,retry=5", Mix{60, 30, 5, 5}, true},
		{" bet = 1 , retry=2 ", Mix{Bet: 1, Retry: 2}, true},
		{"bet=10", Mix{Bet: 10}, true},
		{"win=10", Mix{}, false},           // wins need bets
		{"bet=10,jackpot=1", Mix{}, false}, // unknown kind
		{"bet=-1", Mix{}, false},
		{"bet", Mix{}, false},
		{"", Mix{}, false},
	} {
		got, err := ParseMix(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseMix(%q) = %+v, %v", tc.in, got, err)
		}
		if tc.ok {
			if back, err := ParseMix(got.String()); err != nil || back != got {
				t.Errorf("round trip of %q: %+v, %v", tc.in, back, err)
			}
		}
	}
}

func TestParseSkew(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Skew
		ok   bool
	}{
		{"hot", Skew{Kind: "hot"}, true},
		{"uniform", Skew{Kind: "uniform"}, true},
		{"zipf", Skew{Kind: "zipf", S: 1.1}, true},
		{"zipf:1.5", Skew{Kind: "zipf", S: 1.5}, true},
		{"zipf:1", Skew{}, false}, // rand.Zipf needs s > 1
		{"zipf:x", Skew{}, false},
		{"hot:2", Skew{}, false},
		{"pareto", Skew{}, false},
	} {
		got, err := ParseSkew(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseSkew(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

// Each skew keeps its promise: hot picks one wallet, uniform spreads evenly,
// zipf favours the first wallets.
func TestSkewPickers(t *testing.T) {
	const n, draws = 100, 100_000
	for _, tc := range []struct {
		skew  Skew
		check func(t *testing.T, counts []int)
	}{
		{Skew{Kind: "hot"}, func(t *testing.T, c []int) {
			if c[0] != draws {
				t.Errorf("hot: wallet 0 got %d of %d", c[0], draws)
			}
		}},
		{Skew{Kind: "uniform"}, func(t *testing.T, c []int) {
			for i, v := range c {
				if v < draws/n/2 || v > draws/n*2 {
					t.Errorf("uniform: wallet %d got %d, want about %d", i, v, draws/n)
				}
			}
		}},
		{Skew{Kind: "zipf", S: 1.1}, func(t *testing.T, c []int) {
			if c[0] < 10*c[n-1] || c[0] < draws/10 {
				t.Errorf("zipf: first wallet %d, last %d", c[0], c[n-1])
			}
		}},
	} {
		t.Run(tc.skew.String(), func(t *testing.T) {
			pick := tc.skew.picker(rand.New(rand.NewPCG(1, 2)), n)
			counts := make([]int, n)
			for range draws {
				i := pick()
				if i < 0 || i >= n {
					t.Fatalf("picked %d of %d", i, n)
				}
				counts[i]++
			}
			tc.check(t, counts)
		})
	}
}

// A user only wins or rolls back its own acknowledged bets, retries resend
// the previous operation unchanged, and ids never repeat.
func TestUserOperations(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	u := &user{r: r, pick: Skew{Kind: "uniform"}.picker(r, 3), wallets: []string{"a", "b", "c"},
		mix: Mix{Bet: 40, Win: 30, Rollback: 10, Retry: 20}, prefix: "t-", codes: map[string]int64{}}
	seen := map[string]bool{}
	open := map[string]Op{}
	var last Op
	for i := range 5000 {
		op := u.next()
		switch {
		case op.Retry:
			want := last
			want.Retry = true
			if i == 0 || op != want {
				t.Fatalf("retry %+v is not the previous operation %+v", op, last)
			}
		default:
			if seen[op.TxID] {
				t.Fatalf("tx_id %s reused", op.TxID)
			}
			seen[op.TxID] = true
		}
		if !op.Retry && (op.Kind == KindWin || op.Kind == KindRollback) {
			bet, ok := open[op.Ref]
			if !ok || bet.Wallet != op.Wallet {
				t.Fatalf("%s %s settles %s, not an open bet of this user on %s", op.Kind, op.TxID, op.Ref, op.Wallet)
			}
			if op.Kind == KindRollback && op.Amount != bet.Amount {
				t.Fatalf("rollback amount %d, bet was %d", op.Amount, bet.Amount)
			}
			delete(open, op.Ref)
		}
		if op.Amount < 0 || (op.Amount == 0 && op.Kind != KindWin) {
			t.Fatalf("%s amount %d", op.Kind, op.Amount)
		}
		if len(u.pending) > maxPending {
			t.Fatalf("%d open bets", len(u.pending))
		}
		// Every fifth request fails with a refusal: failed bets are not open.
		if i%5 == 4 {
			u.settle(op, Reply{Status: 422, Code: "INSUFFICIENT_FUNDS"}, nil)
		} else {
			u.settle(op, Reply{Status: 200, HasVersion: true, Version: uint64(i)}, nil)
			if op.Kind == KindBet && !op.Retry {
				open[op.TxID] = op
			}
		}
		last = op
	}
	if len(u.tape.acks) != 4000 || u.codes["INSUFFICIENT_FUNDS"] != 1000 {
		t.Fatalf("acks %d, refusals %d", len(u.tape.acks), u.codes["INSUFFICIENT_FUNDS"])
	}
	// No bet is abandoned: every acknowledged bet is settled or still open
	// with the user (at most maxPending).
	if len(open) != len(u.pending) || len(open) > maxPending {
		t.Fatalf("%d bets open on the server, %d with the user", len(open), len(u.pending))
	}
}

func TestWorkloadValidate(t *testing.T) {
	ok := Workload{Users: 1, Skew: Skew{Kind: "hot"}, Mix: Mix{Bet: 1}, Duration: time.Second}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, w := range map[string]Workload{
		"no users":  {Skew: ok.Skew, Mix: ok.Mix, Duration: time.Second},
		"no length": {Users: 1, Skew: ok.Skew, Mix: ok.Mix},
		"no bets":   {Users: 1, Skew: ok.Skew, Duration: time.Second},
		"no skew":   {Users: 1, Mix: ok.Mix, Duration: time.Second},
		"negative":  {Users: 1, Skew: ok.Skew, Mix: ok.Mix, Duration: time.Second, Rate: -1},
	} {
		if w.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if ok.Mode() != "closed" || (Workload{Rate: 5}).Mode() != "open" {
		t.Error("mode")
	}
}
