package pragmatic_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walletd/walletd/providers"
	"github.com/walletd/walletd/providers/pragmatic"
	"github.com/walletd/walletd/providers/providertest"
)

const (
	secret       = "pp-test-secret"
	creditSecret = "pp-credit-secret"
)

// harness is a stack with two Pragmatic instances: "pragmatic" (the env
// shortcut: bonusWin informational) and "ppcredit" (from a providers file:
// bonusWin credit).
type harness struct {
	*providertest.Stack
	players atomic.Int64
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	file := filepath.Join(t.TempDir(), "providers.json")
	conf := `{"instances": [{"name": "ppcredit", "kind": "pragmatic", "secretEnv": "PPC_SECRET", "bonusWin": "credit", "providerId": "PragmaticPlay"}]}`
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PPC_SECRET": creditSecret}
	return &harness{Stack: providertest.New(t, providers.Config{
		File: file, PragmaticSecret: secret, Getenv: func(k string) string { return env[k] },
	})}
}

// player creates a fresh wallet.
func (h *harness) player(t testing.TB, currency, deposit string) string {
	id := fmt.Sprintf("pp-player-%d", h.players.Add(1))
	h.Wallet(t, id, currency, deposit)
	return id
}

// reply is a Pragmatic reply, numbers kept as their text.
type reply struct {
	Error         int
	Description   string
	TransactionID json.Number
	Currency      string
	Cash          json.Number
	Bonus         json.Number
	UsedPromo     json.Number
	UserID        string
	Token         string
	GamesBalances []struct {
		GameID string `json:"gameID"`
		Cash   json.Number
		Bonus  json.Number
	}
	raw string
}

// call signs params (adding providerId) with the instance's secret and
// posts them to method.
func (h *harness) call(t testing.TB, instance, method string, params map[string]string) reply {
	t.Helper()
	v := url.Values{}
	v.Set("providerId", "PragmaticPlay")
	for k, x := range params {
		v.Set(k, x)
	}
	key := secret
	if instance == "ppcredit" {
		key = creditSecret
	}
	v.Set("hash", pragmatic.Sign(v, key))
	return h.post(t, instance, method+".html", v.Encode())
}

func (h *harness) post(t testing.TB, instance, segment, body string) reply {
	t.Helper()
	status, b := h.Do(t, http.MethodPost, "/providers/"+instance+"/"+segment, "application/x-www-form-urlencoded", []byte(body), false)
	if status != http.StatusOK {
		t.Fatalf("%s: HTTP %d %s; Pragmatic replies are always 200", segment, status, b)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var r reply
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("%s: reply %s: %v", segment, b, err)
	}
	r.raw = string(b)
	if !strings.Contains(r.raw, `"error":`) || !strings.Contains(r.raw, `"description":`) {
		t.Fatalf("%s: reply %s lacks error or description", segment, b)
	}
	return r
}

// money returns the params of a bet or result.
func money(round, ref, amount string) map[string]string {
	return map[string]string{
		"gameId": "vs20doghouse", "roundId": round, "reference": ref, "amount": amount,
		"timestamp": "1700000000000", "roundDetails": "spin",
	}
}

func with(p map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range p {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// step is one call of a scenario and what it must do.
type step struct {
	method   string
	params   map[string]string // userId is added
	instance string            // default "pragmatic"
	err      int
	balance  string // the wallet's balance afterwards, and the reply's cash when it has one
	sameTx   int    // 1-based step whose transactionId this reply repeats
	check    func(t *testing.T, r reply)
}

func TestScenarios(t *testing.T) {
	h := newHarness(t)
	endRound := map[string]string{"gameId": "vs20doghouse", "roundId": "r1", "win": "999"}
	jackpot := map[string]string{"timestamp": "1", "gameId": "vs20", "roundId": "r1", "jackpotId": "j1", "amount": "50.25", "reference": "jp1"}
	promo := map[string]string{"timestamp": "1", "campaignId": "c1", "campaignType": "T", "amount": "12", "currency": "EUR", "reference": "pw1"}
	bonus := map[string]string{"amount": "15", "reference": "bw1", "timestamp": "1", "bonusCode": "FR1"}
	adjust := func(ref, amount string) map[string]string {
		return map[string]string{"gameId": "vs20", "roundId": "r1", "amount": amount, "reference": ref, "validBetAmount": "0", "timestamp": "1"}
	}
	hasTx := func(t *testing.T, r reply) {
		if n, err := strconv.ParseUint(string(r.TransactionID), 10, 64); err != nil || n == 0 {
			t.Errorf("transactionId %q: want a positive integer", r.TransactionID)
		}
	}
	tests := []struct {
		name     string
		currency string
		deposit  string
		steps    []step
	}{
		{"bet, result, endRound", "EUR", "100", []step{
			{method: "bet", params: money("r1", "b1", "10"), balance: "90.00", check: func(t *testing.T, r reply) {
				hasTx(t, r)
				if r.Currency != "EUR" || r.Bonus != "0.00" || r.UsedPromo != "0.00" {
					t.Errorf("bet reply %s", r.raw)
				}
			}},
			{method: "result", params: money("r1", "w1", "25.5"), balance: "115.50", check: hasTx},
			// endRound's win is information only: never credited.
			{method: "endRound", params: endRound, balance: "115.50", check: func(t *testing.T, r reply) {
				if r.TransactionID != "" || !strings.Contains(r.raw, `"cash":115.50`) || !strings.Contains(r.raw, `"bonus":0.00`) {
					t.Errorf("endRound reply %s: want cash and bonus as numbers with 2 decimals", r.raw)
				}
			}},
			{method: "endRound", params: endRound, balance: "115.50"},
		}},
		{"retries answer the original transactionId and the current balance", "EUR", "100", []step{
			{method: "bet", params: money("r1", "b1", "10"), balance: "90.00"},
			{method: "bet", params: money("r1", "b2", "5"), balance: "85.00"},
			{method: "bet", params: money("r1", "b1", "10"), balance: "85.00", sameTx: 1},
			{method: "result", params: money("r1", "w1", "0"), balance: "85.00"},
			{method: "result", params: money("r1", "w1", "0"), balance: "85.00", sameTx: 4},
			{method: "bet", params: money("r1", "b1", "10"), balance: "85.00", sameTx: 1},
		}},
		{"a multi-bet round is settled by its result", "EUR", "100", []step{
			{method: "bet", params: money("r1", "b1", "5"), balance: "95.00"},
			{method: "bet", params: money("r1", "b2", "7"), balance: "88.00"},
			{method: "result", params: money("r1", "w1", "20"), balance: "108.00"},
			{method: "refund", params: map[string]string{"reference": "b1"}, err: 120, balance: "108.00"},
			{method: "endRound", params: endRound, balance: "108.00"},
		}},
		{"endRound closes the round's open bets", "EUR", "100", []step{
			{method: "bet", params: money("r1", "b1", "5"), balance: "95.00"},
			{method: "endRound", params: endRound, balance: "95.00"},
			{method: "refund", params: map[string]string{"reference": "b1"}, err: 120, balance: "95.00"},
		}},
		{"insufficient balance", "EUR", "100", []step{
			{method: "bet", params: money("r1", "b1", "100.01"), err: 1, balance: "100.00"},
			{method: "bet", params: money("r1", "b1", "100"), balance: "0.00"},
		}},
		{"refund of a bet, repeated", "EUR", "100", []step{
			{method: "bet", params: money("r1", "b1", "10"), balance: "90.00"},
			{method: "refund", params: map[string]string{"reference": "b1", "amount": "10"}, balance: "100.00", check: func(t *testing.T, r reply) {
				hasTx(t, r)
				if r.Cash != "" || r.Currency != "" {
					t.Errorf("refund reply %s: want transactionId only", r.raw)
				}
			}},
			{method: "refund", params: map[string]string{"reference": "b1"}, balance: "100.00", sameTx: 2},
			{method: "bet", params: money("r1", "b1", "10"), balance: "100.00", sameTx: 1},
		}},
		{"refund before its bet leaves a tombstone", "EUR", "100", []step{
			{method: "refund", params: map[string]string{"reference": "b9"}, balance: "100.00", check: hasTx},
			{method: "bet", params: money("r1", "b9", "10"), err: 120, balance: "100.00"},
			{method: "refund", params: map[string]string{"reference": "b9"}, balance: "100.00", sameTx: 1},
			{method: "bet", params: money("r1", "b10", "10"), balance: "90.00"},
		}},
		{"result with a promo win credits it under its own reference", "EUR", "100", []step{
			{method: "bet", params: money("r1", "b1", "10"), balance: "90.00"},
			{method: "result", params: with(money("r1", "w1", "5"), "promoWinAmount", "2.5", "promoWinReference", "pr1", "promoCampaignID", "c1"), balance: "97.50"},
			{method: "result", params: with(money("r1", "w1", "5"), "promoWinAmount", "2.5", "promoWinReference", "pr1"), balance: "97.50", sameTx: 2},
		}},
		{"bonusWin is informational by default", "EUR", "100", []step{
			{method: "bonusWin", params: bonus, balance: "100.00", check: hasTx},
			{method: "bonusWin", params: bonus, balance: "100.00", sameTx: 1},
		}},
		{"bonusWin credits under the credit policy", "EUR", "100", []step{
			{method: "bonusWin", instance: "ppcredit", params: bonus, balance: "115.00", check: hasTx},
			{method: "bonusWin", instance: "ppcredit", params: bonus, balance: "115.00", sameTx: 1},
		}},
		{"jackpotWin", "EUR", "100", []step{
			{method: "jackpotWin", params: jackpot, balance: "150.25", check: hasTx},
			{method: "jackpotWin", params: jackpot, balance: "150.25", sameTx: 1},
		}},
		{"promoWin", "EUR", "100", []step{
			{method: "promoWin", params: with(promo, "currency", "USD"), err: 7, balance: "100.00"},
			{method: "promoWin", params: promo, balance: "112.00", check: hasTx},
			{method: "promoWin", params: promo, balance: "112.00", sameTx: 2},
		}},
		{"adjustment credits, and debits when negative", "EUR", "100", []step{
			{method: "adjustment", params: adjust("a1", "3.5"), balance: "103.50", check: hasTx},
			{method: "adjustment", params: adjust("a2", "-10"), balance: "93.50"},
			{method: "adjustment", params: adjust("a2", "-10"), balance: "93.50", sameTx: 2},
			{method: "adjustment", params: adjust("a3", "-1000"), err: 1, balance: "93.50"},
			{method: "adjustment", params: adjust("a2", "10"), err: 7, balance: "93.50"},
		}},
		{"amounts are parsed exactly, never rounded", "EUR", "100", []step{
			{method: "bet", params: money("r1", "b1", "abc"), err: 7, balance: "100.00"},
			{method: "bet", params: money("r1", "b1", "1.005"), err: 7, balance: "100.00"},
			{method: "bet", params: money("r1", "b1", "-5"), err: 7, balance: "100.00"},
			{method: "bet", params: money("r1", "b1", "1e1"), err: 7, balance: "100.00"},
			{method: "bet", params: money("r1", "b1", ""), err: 7, balance: "100.00"},
			{method: "bet", params: money("r1", "b1", "1.500"), balance: "98.50"},
			{method: "bet", params: money("r1", "b2", "5.6"), balance: "92.90"},
		}},
		{"a reference reused for another amount changes nothing", "EUR", "100", []step{
			{method: "bet", params: money("r1", "b1", "10"), balance: "90.00"},
			{method: "bet", params: money("r1", "b1", "11"), err: 7, balance: "90.00"},
		}},
		{"long and odd references are mapped, never collided", "EUR", "100", []step{
			{method: "bet", params: money("r/1 ü", strings.Repeat("x", 200), "1"), balance: "99.00"},
			{method: "bet", params: money("r/1 ü", strings.Repeat("x", 199), "2"), balance: "97.00"},
			{method: "bet", params: money("r/1 ü", "ref with spaces/ü", "3"), balance: "94.00"},
			{method: "bet", params: money("r/1 ü", strings.Repeat("x", 200), "1"), balance: "94.00", sameTx: 1},
			{method: "result", params: money("r/1 ü", "w#1", "10"), balance: "104.00"},
			{method: "refund", params: map[string]string{"reference": strings.Repeat("x", 200)}, err: 120, balance: "104.00"},
		}},
		{"balance and getBalancePerGame", "EUR", "100", []step{
			{method: "balance", params: map[string]string{}, balance: "100.00", check: func(t *testing.T, r reply) {
				if r.Currency != "EUR" || r.Bonus != "0.00" || r.TransactionID != "" {
					t.Errorf("balance reply %s", r.raw)
				}
			}},
			{method: "getBalancePerGame", params: map[string]string{"gameIdList": "vs20doghouse, vs25wolf,"}, balance: "100.00", check: func(t *testing.T, r reply) {
				if len(r.GamesBalances) != 2 || r.GamesBalances[0].GameID != "vs20doghouse" || r.GamesBalances[1].GameID != "vs25wolf" {
					t.Fatalf("getBalancePerGame reply %s", r.raw)
				}
				for _, g := range r.GamesBalances {
					if g.Cash != "100.00" || g.Bonus != "0.00" {
						t.Errorf("game balance %+v", g)
					}
				}
			}},
		}},
		{"JPY: cash has 2 decimals, amounts may carry zeros", "JPY", "10000", []step{
			{method: "bet", params: money("r1", "b1", "100.0"), balance: "9900", check: func(t *testing.T, r reply) {
				if r.Cash != "9900.00" || r.Bonus != "0.00" || r.Currency != "JPY" {
					t.Errorf("JPY reply %s", r.raw)
				}
			}},
			{method: "bet", params: money("r1", "b2", "0.5"), err: 7, balance: "9900"},
			{method: "result", params: with(money("r1", "w1", "50.0"), "promoWinAmount", "2.0", "promoWinReference", "pr1"), balance: "9952"},
		}},
		{"KWD: cash keeps its 3 decimals, never rounded", "KWD", "10", []step{
			{method: "bet", params: money("r1", "b1", "1.235"), balance: "8.765", check: func(t *testing.T, r reply) {
				if r.Cash != "8.765" || r.Bonus != "0.000" || !strings.Contains(r.raw, `"cash":8.765`) {
					t.Errorf("KWD reply %s", r.raw)
				}
			}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			player := h.player(t, tt.currency, tt.deposit)
			var replies []reply
			for i, s := range tt.steps {
				inst := s.instance
				if inst == "" {
					inst = "pragmatic"
				}
				r := h.call(t, inst, s.method, with(s.params, "userId", player))
				replies = append(replies, r)
				if r.Error != s.err {
					t.Fatalf("step %d %s: error %d (%s), want %d", i+1, s.method, r.Error, r.Description, s.err)
				}
				if got := h.Balance(t, player); got != s.balance {
					t.Fatalf("step %d %s: balance %s, want %s", i+1, s.method, got, s.balance)
				}
				if r.Error == 0 && r.Cash != "" && !sameMoney(string(r.Cash), s.balance) {
					t.Fatalf("step %d %s: cash %s, want %s", i+1, s.method, r.Cash, s.balance)
				}
				if r.Error != 0 && (r.TransactionID != "" || r.Cash != "") {
					t.Fatalf("step %d %s: an error reply with money fields: %s", i+1, s.method, r.raw)
				}
				if s.sameTx > 0 {
					if want := replies[s.sameTx-1].TransactionID; r.TransactionID != want || want == "" {
						t.Fatalf("step %d %s: transactionId %q, want step %d's %q", i+1, s.method, r.TransactionID, s.sameTx, want)
					}
				}
				if s.check != nil {
					s.check(t, r)
				}
			}
		})
	}
}

// sameMoney compares a reply's cash with a balance string (JPY 9900 is
// cash 9900.00).
func sameMoney(cash, balance string) bool {
	if !strings.Contains(balance, ".") {
		return cash == balance+".00"
	}
	return cash == balance
}

func TestUnknownPlayer(t *testing.T) {
	h := newHarness(t)
	for _, tt := range []struct {
		method, user string
		params       map[string]string
	}{
		{"balance", "nobody", nil},
		{"bet", "nobody", money("r1", "b1", "1")},
		{"result", "nobody", money("r1", "w1", "1")},
		{"refund", "nobody", map[string]string{"reference": "b1"}},
		{"balance", "not a valid id", nil},
		{"bet", strings.Repeat("u", 129), money("r1", "b1", "1")},
	} {
		r := h.call(t, "pragmatic", tt.method, with(tt.params, "userId", tt.user))
		if r.Error != 2 {
			t.Errorf("%s for %q: error %d (%s), want 2", tt.method, tt.user, r.Error, r.Description)
		}
	}
}

func TestAuthenticateAndTokens(t *testing.T) {
	h := newHarness(t)
	p := h.player(t, "EUR", "50")
	other := h.player(t, "EUR", "50")
	tok := h.Launch(t, p, "pragmatic", "")
	gameTok := h.Launch(t, p, "pragmatic", "vs20doghouse")
	otherTok := h.Launch(t, other, "pragmatic", "")
	creditTok := h.Launch(t, p, "ppcredit", "")

	r := h.call(t, "pragmatic", "authenticate", map[string]string{"token": tok, "gameId": "vs20doghouse", "ipAddress": "10.0.0.1"})
	if r.Error != 0 || r.UserID != p || r.Currency != "EUR" || r.Cash != "50.00" || r.Bonus != "0.00" || r.Token != tok {
		t.Fatalf("authenticate: %s", r.raw)
	}
	for _, tt := range []struct {
		name   string
		params map[string]string
		inst   string
		err    int
	}{
		{"unknown token", map[string]string{"token": "nope"}, "pragmatic", 4},
		{"empty token", map[string]string{"token": ""}, "pragmatic", 4},
		{"a token of another instance", map[string]string{"token": creditTok}, "pragmatic", 4},
		{"the same token at its own instance", map[string]string{"token": creditTok}, "ppcredit", 0},
		{"a token launched for another game", map[string]string{"token": gameTok, "gameId": "vs25wolf"}, "pragmatic", 4},
		{"a token launched for this game", map[string]string{"token": gameTok, "gameId": "vs20doghouse"}, "pragmatic", 0},
		{"no token", map[string]string{}, "pragmatic", 7},
	} {
		if r := h.call(t, tt.inst, "authenticate", tt.params); r.Error != tt.err {
			t.Errorf("%s: error %d (%s), want %d", tt.name, r.Error, r.Description, tt.err)
		}
	}

	// A bet that sends a token must send a live one of its player.
	for _, tt := range []struct {
		name, token string
		err         int
		balance     string
	}{
		{"the player's token", tok, 0, "45.00"},
		{"another player's token", otherTok, 4, "45.00"},
		{"an unknown token", "forged", 4, "45.00"},
		{"the token of this game", gameTok, 0, "40.00"}, // the bet's gameId is vs20doghouse
	} {
		ref := "b-" + strings.ReplaceAll(tt.name, " ", "-")
		r := h.call(t, "pragmatic", "bet", with(money("r1", ref, "5"), "userId", p, "token", tt.token))
		if r.Error != tt.err || h.Balance(t, p) != tt.balance {
			t.Errorf("bet with %s: error %d (%s), balance %s; want %d, %s", tt.name, r.Error, r.Description, h.Balance(t, p), tt.err, tt.balance)
		}
	}
	r = h.call(t, "pragmatic", "bet", with(money("r1", "b-game", "5"), "userId", p, "token", gameTok, "gameId", "vs25wolf"))
	if r.Error != 4 {
		t.Errorf("bet in another game than the token's: error %d, want 4", r.Error)
	}

	// Expired: refused for authenticate and bet; results still pay.
	h.Clock.Advance(25 * time.Hour)
	if r := h.call(t, "pragmatic", "authenticate", map[string]string{"token": tok}); r.Error != 4 {
		t.Errorf("authenticate with an expired token: error %d, want 4", r.Error)
	}
	if r := h.call(t, "pragmatic", "bet", with(money("r2", "b-late", "5"), "userId", p, "token", tok)); r.Error != 4 {
		t.Errorf("bet with an expired token: error %d, want 4", r.Error)
	}
	if r := h.call(t, "pragmatic", "result", with(money("r1", "w1", "7"), "userId", p, "token", tok)); r.Error != 0 || h.Balance(t, p) != "47.00" {
		t.Errorf("result with an expired token: error %d, balance %s; want 0, 47.00", r.Error, h.Balance(t, p))
	}
}

func TestRefusalsChangeNothing(t *testing.T) {
	h := newHarness(t)
	p := h.player(t, "EUR", "100")
	version := h.Version(t, p)
	signed := func(_ string, params map[string]string, key string) url.Values {
		v := url.Values{"providerId": {"PragmaticPlay"}, "userId": {p}}
		for k, x := range params {
			v.Set(k, x)
		}
		v.Set("hash", pragmatic.Sign(v, key))
		return v
	}
	bet := money("r1", "b1", "10")
	tests := []struct {
		name    string
		segment string
		body    string
		err     int
	}{
		{"wrong secret", "bet.html", signed("bet", bet, "wrong").Encode(), 5},
		{"no hash", "bet.html", func() string { v := signed("bet", bet, secret); v.Del("hash"); return v.Encode() }(), 5},
		{"a field changed after signing", "bet.html", func() string { v := signed("bet", bet, secret); v.Set("amount", "1"); return v.Encode() }(), 5},
		{"a field added after signing", "result.html", func() string {
			v := signed("result", money("r1", "w1", "10"), secret)
			v.Set("promoWinAmount", "1000")
			return v.Encode()
		}(), 5},
		{"the other instance's secret", "bet.html", signed("bet", bet, creditSecret).Encode(), 5},
		// The hash covers a repeated key's first value: it matches, and
		// the request is refused as ambiguous.
		{"a parameter given twice", "bet.html", signed("bet", bet, secret).Encode() + "&amount=99", 7},
		{"an empty required parameter is present", "bet.html", signed("bet", with(bet, "roundDetails", ""), secret).Encode(), 0},
		{"a missing required parameter", "bet.html", func() string {
			p := with(bet)
			delete(p, "timestamp")
			return signed("bet", p, secret).Encode()
		}(), 7},
		{"another providerId", "bet.html", signed("bet", with(bet, "providerId", "Evil"), secret).Encode(), 7},
		{"not a form", "bet.html", "%zz=1", 7},
		{"empty body", "bet.html", "", 5},
		{"an oversized body", "bet.html", strings.Repeat("a", 70<<10), 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, beforeV := h.Balance(t, p), h.Version(t, p)
			r := h.post(t, "pragmatic", tt.segment, tt.body)
			if r.Error != tt.err {
				t.Fatalf("error %d (%s), want %d", r.Error, r.Description, tt.err)
			}
			if tt.err != 0 && (h.Balance(t, p) != before || h.Version(t, p) != beforeV) {
				t.Fatalf("a refused request changed the wallet: %s → %s", before, h.Balance(t, p))
			}
		})
	}
	if got := h.Version(t, p); got != version+1 {
		t.Fatalf("version %d, want %d (one bet applied in all)", got, version+1)
	}
}

func TestRouting(t *testing.T) {
	h := newHarness(t)
	p := h.player(t, "EUR", "10")
	body := func(params map[string]string) string {
		v := url.Values{"providerId": {"pragmaticplay"}, "userId": {p}}
		for k, x := range params {
			v.Set(k, x)
		}
		v.Set("hash", pragmatic.Sign(v, secret))
		return v.Encode()
	}
	for _, seg := range []string{"GetBalancePerGame.html", "getBalancePerGame.html", "GETBALANCEPERGAME.HTML"} {
		if r := h.post(t, "pragmatic", seg, body(map[string]string{"gameIdList": "vs20"})); r.Error != 0 || len(r.GamesBalances) != 1 {
			t.Errorf("%s: %s", seg, r.raw)
		}
	}
	if r := h.post(t, "pragmatic", "Balance.html", body(nil)); r.Error != 0 || r.Cash != "10.00" {
		t.Errorf("Balance.html: %s", r.raw)
	}
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{"POST", "/providers/pragmatic/balance", 404},
		{"POST", "/providers/pragmatic/withdraw.html", 404},
		{"POST", "/providers/pragmatic/.html", 404},
		{"GET", "/providers/pragmatic/balance.html", 405},
		{"POST", "/providers/nosuch/balance.html", 404},
	} {
		status, b := h.Do(t, tt.method, tt.path, "", []byte(body(nil)), false)
		if status != tt.status || !strings.Contains(string(b), `"error":{"code"`) {
			t.Errorf("%s %s: %d %s, want %d in the contract's error JSON", tt.method, tt.path, status, b, tt.status)
		}
	}
}

func TestStorageOutageIsRetryNeverInsufficient(t *testing.T) {
	h := newHarness(t)
	p := h.player(t, "EUR", "100")
	if r := h.call(t, "pragmatic", "bet", with(money("r1", "b1", "10"), "userId", p)); r.Error != 0 {
		t.Fatal(r.raw)
	}
	h.Store.SetDown(true)
	calls := []struct {
		method string
		params map[string]string
	}{
		{"bet", money("r1", "b2", "10")},
		{"result", money("r1", "w1", "5")},
		{"refund", map[string]string{"reference": "b1"}},
		{"endRound", map[string]string{"gameId": "g", "roundId": "r1"}},
		{"adjustment", map[string]string{"gameId": "g", "roundId": "r1", "amount": "-1", "reference": "a1", "validBetAmount": "1", "timestamp": "1"}},
	}
	for _, c := range calls {
		if r := h.call(t, "pragmatic", c.method, with(c.params, "userId", p)); r.Error != 100 {
			t.Errorf("%s during an outage: error %d (%s), want 100", c.method, r.Error, r.Description)
		}
	}
	h.Store.SetDown(false)
	if got := h.Balance(t, p); got != "90.00" {
		t.Fatalf("after the outage: balance %s, want 90.00 (nothing applied)", got)
	}
	// Pragmatic retries: now they apply, once.
	// The result settles b1 and b2, so the refund of b1 is refused.
	want := []string{"80.00", "85.00", "85.00", "85.00", "84.00"}
	wantErr := []int{0, 0, 120, 0, 0}
	for i, c := range calls {
		if r := h.call(t, "pragmatic", c.method, with(c.params, "userId", p)); r.Error != wantErr[i] {
			t.Fatalf("retry of %s: %s, want error %d", c.method, r.raw, wantErr[i])
		}
		if got := h.Balance(t, p); got != want[i] {
			t.Fatalf("after the retry of %s: balance %s, want %s", c.method, got, want[i])
		}
	}
}

func TestSessionStoreOutage(t *testing.T) {
	h := newHarness(t)
	p := h.player(t, "EUR", "100")
	tok := h.Launch(t, p, "pragmatic", "")
	if r := h.call(t, "pragmatic", "bet", with(money("r1", "b1", "10"), "userId", p, "token", tok)); r.Error != 0 {
		t.Fatal(r.raw)
	}
	h.Sessions.Close() // every session call fails from now on
	if r := h.call(t, "pragmatic", "authenticate", map[string]string{"token": tok}); r.Error != 100 {
		t.Errorf("authenticate with the session store down: %s, want 100 (not 4: the token may be fine)", r.raw)
	}
	if r := h.call(t, "pragmatic", "bet", with(money("r1", "b2", "10"), "userId", p, "token", tok)); r.Error != 100 || h.Balance(t, p) != "90.00" {
		t.Errorf("bet with a token, the session store down: %s, balance %s", r.raw, h.Balance(t, p))
	}
	// Settlements need no session: they go on.
	if r := h.call(t, "pragmatic", "result", with(money("r1", "w1", "30"), "userId", p, "token", tok)); r.Error != 0 || h.Balance(t, p) != "120.00" {
		t.Errorf("result with the session store down: %s, balance %s", r.raw, h.Balance(t, p))
	}
}
