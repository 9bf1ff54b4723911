package evolution_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walletd/walletd/providers"
	"github.com/walletd/walletd/providers/providertest"
)

const (
	token    = "evo-test-token"
	rotToken = "evo-rotating-token"
)

// harness is a stack with two Evolution instances: "evolution" (the env
// shortcut) and "evorot" (from a providers file, rotating the sid on check).
type harness struct {
	*providertest.Stack
	n atomic.Int64
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	file := filepath.Join(t.TempDir(), "providers.json")
	conf := fmt.Sprintf(`{"instances": [{"name": "evorot", "kind": "evolution", "authToken": %q, "rotateSidOnCheck": true}]}`, rotToken)
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return &harness{Stack: providertest.New(t, providers.Config{File: file, EvolutionAuthToken: token})}
}

func (h *harness) player(t testing.TB, currency, deposit string) string {
	id := fmt.Sprintf("evo-player-%d", h.n.Add(1))
	h.Wallet(t, id, currency, deposit)
	return id
}

// reply is an Evolution reply, numbers kept as their text.
type reply struct {
	Status  string
	SID     string
	Balance json.Number
	Bonus   json.Number
	UUID    string
	raw     string
}

// body is a request body; amounts are written as raw JSON text.
type body map[string]any

func num(s string) json.RawMessage { return json.RawMessage(s) }

// call posts b (with a fresh uuid unless b has one) to method with the
// instance's authToken.
func (h *harness) call(t testing.TB, instance, method string, b body) reply {
	t.Helper()
	if _, ok := b["uuid"]; !ok {
		b["uuid"] = fmt.Sprintf("uuid-%d", h.n.Add(1))
	}
	tok := token
	if instance == "evorot" {
		tok = rotToken
	}
	raw, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	r := h.raw(t, instance, method, "authToken="+url.QueryEscape(tok), raw)
	if r.UUID != b["uuid"] {
		t.Fatalf("%s: uuid %q, want %q echoed", method, r.UUID, b["uuid"])
	}
	return r
}

func (h *harness) raw(t testing.TB, instance, method, query string, raw []byte) reply {
	t.Helper()
	status, out := h.Do(t, http.MethodPost, "/providers/"+instance+"/"+method+"?"+query, "application/json", raw, false)
	if status != http.StatusOK {
		t.Fatalf("%s: HTTP %d %s, want 200", method, status, out)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	dec.UseNumber()
	var r reply
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("%s: reply %s: %v", method, out, err)
	}
	r.raw = string(out)
	return r
}

// game is a round of a blackjack table.
func game(round string) map[string]any {
	return map[string]any{"id": round, "type": "blackjack", "details": map[string]any{"table": map[string]any{"id": "vip1", "vid": "v1"}}}
}

func debit(p, sid, round, id, ref, amount string) body {
	return body{"sid": sid, "userId": p, "currency": "EUR", "game": game(round),
		"transaction": map[string]any{"id": id, "refId": ref, "amount": num(amount)}}
}

func credit(p, sid, round, id, ref, amount string) body {
	return debit(p, sid, round, id, ref, amount)
}

func cancel(p, sid, round, id, ref string) body {
	return debit(p, sid, round, id, ref, "10")
}

func promo(p, sid, id, amount string) body {
	return body{"sid": sid, "userId": p, "currency": "EUR",
		"promoTransaction": map[string]any{"type": "FreeRoundPlayableSpent", "id": id, "amount": num(amount), "voucherId": "v1", "remainingRounds": 0}}
}

// step is one call of a scenario. build gets the player and a live sid.
type step struct {
	method  string
	build   func(p, sid string) body
	status  string
	balance string // the wallet's balance afterwards, also in the reply when it has one
}

func TestScenarioTable(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name  string
		steps []step
	}{
		{"debit, credit", []step{
			{"debit", func(p, s string) body { return debit(p, s, "g1", "t1", "r1", "10") }, "OK", "90.00"},
			{"credit", func(p, s string) body { return credit(p, s, "g1", "c1", "r1", "25.5") }, "OK", "115.50"},
		}},
		{"duplicate debit: BET_ALREADY_EXIST, the balance moves once", []step{
			{"debit", func(p, s string) body { return debit(p, s, "g1", "t1", "r1", "10") }, "OK", "90.00"},
			{"debit", func(p, s string) body { return debit(p, s, "g1", "t1", "r1", "10") }, "BET_ALREADY_EXIST", "90.00"},
			{"debit", func(p, s string) body { return debit(p, s, "g1", "t1", "r1", "12") }, "BET_ALREADY_EXIST", "90.00"},
		}},
		{"debit over the balance: INSUFFICIENT_FUNDS, unchanged and sent back", []step{
			{"debit", func(p, s string) body { return debit(p, s, "g1", "t1", "r1", "100.01") }, "INSUFFICIENT_FUNDS", "100.00"},
			{"debit", func(p, s string) body { return debit(p, s, "g1", "t1", "r1", "100") }, "OK", "0.00"},
		}},
		{"credit for an unknown refId: BET_DOES_NOT_EXIST", []step{
			{"credit", func(p, s string) body { return credit(p, s, "g1", "c1", "nope", "5") }, "BET_DOES_NOT_EXIST", "100.00"},
		}},
		{"credit twice: BET_ALREADY_SETTLED, pays once", []step{
			{"debit", func(p, s string) body { return debit(p, s, "g1", "t1", "r1", "10") }, "OK", "90.00"},
			{"credit", func(p, s string) body { return credit(p, s, "g1", "c1", "r1", "20") }, "OK", "110.00"},
			{"credit", func(p, s string) body { return credit(p, s, "g1", "c1", "r1", "20") }, "BET_ALREADY_SETTLED", "110.00"},
			{"credit", func(p, s string) body { return credit(p, s, "g1", "c2", "r1", "20") }, "BET_ALREADY_SETTLED", "110.00"},
		}},
		{"credit after cancel: BET_ALREADY_SETTLED", []step{
			{"debit", func(p, s string) body { return debit(p, s, "g1", "t1", "r1", "10") }, "OK", "90.00"},
			{"cancel", func(p, s string) body { return cancel(p, s, "g1", "t1", "r1") }, "OK", "100.00"},
			{"credit", func(p, s string) body { return credit(p, s, "g1", "c1", "r1", "20") }, "BET_ALREADY_SETTLED", "100.00"},
		}},
		{"cancel after credit: BET_ALREADY_SETTLED", []step{
			{"debit", func(p, s string) body { return debit(p, s, "g1", "t1", "r1", "10") }, "OK", "90.00"},
			{"credit", func(p, s string) body { return credit(p, s, "g1", "c1", "r1", "0") }, "OK", "90.00"},
			{"cancel", func(p, s string) body { return cancel(p, s, "g1", "t1", "r1") }, "BET_ALREADY_SETTLED", "90.00"},
		}},
		{"cancel twice: BET_ALREADY_SETTLED, refunds once", []step{
			{"debit", func(p, s string) body { return debit(p, s, "g1", "t1", "r1", "10") }, "OK", "90.00"},
			{"cancel", func(p, s string) body { return cancel(p, s, "g1", "t1", "r1") }, "OK", "100.00"},
			{"cancel", func(p, s string) body { return cancel(p, s, "g1", "t1", "r1") }, "BET_ALREADY_SETTLED", "100.00"},
		}},
		{"cancel of an unknown bet keeps a tombstone; its debit is FINAL_ERROR_ACTION_FAILED", []step{
			{"cancel", func(p, s string) body { return cancel(p, s, "g1", "t1", "r1") }, "BET_DOES_NOT_EXIST", "100.00"},
			{"debit", func(p, s string) body { return debit(p, s, "g1", "t1", "r1", "10") }, "FINAL_ERROR_ACTION_FAILED", "100.00"},
			{"debit", func(p, s string) body { return debit(p, s, "g1", "t2", "r2", "10") }, "OK", "90.00"},
		}},
		{"credit with amount 0: OK", []step{
			{"debit", func(p, s string) body { return debit(p, s, "g1", "t1", "r1", "10") }, "OK", "90.00"},
			{"credit", func(p, s string) body { return credit(p, s, "g1", "c1", "r1", "0") }, "OK", "90.00"},
		}},
		{"one round, many debits with their own refIds", []step{
			{"debit", func(p, s string) body { return debit(p, s, "g1", "t1", "r1", "10") }, "OK", "90.00"},
			{"debit", func(p, s string) body { return debit(p, s, "g1", "t2", "r2", "5") }, "OK", "85.00"},
			{"credit", func(p, s string) body { return credit(p, s, "g1", "c2", "r2", "12") }, "OK", "97.00"},
			{"cancel", func(p, s string) body { return cancel(p, s, "g1", "t1", "r1") }, "OK", "107.00"},
		}},
		{"promo_payout repeated: OK, credited once", []step{
			{"promo_payout", func(p, s string) body { return promo(p, s, "pr1", "7.25") }, "OK", "107.25"},
			{"promo_payout", func(p, s string) body { return promo(p, s, "pr1", "7.25") }, "OK", "107.25"},
		}},
		{"amounts: up to 6 decimals, exactly", []step{
			{"debit", func(p, s string) body { return debit(p, s, "g1", "t1", "r1", "10.500000") }, "OK", "89.50"},
			{"debit", func(p, s string) body { return debit(p, s, "g1", "t2", "r2", "0.000001") }, "INVALID_PARAMETER", "89.50"},
			{"debit", func(p, s string) body { return debit(p, s, "g1", "t2", "r2", "10.505") }, "INVALID_PARAMETER", "89.50"},
			{"debit", func(p, s string) body { return debit(p, s, "g1", "t2", "r2", "1e1") }, "INVALID_PARAMETER", "89.50"},
			{"debit", func(p, s string) body { return debit(p, s, "g1", "t2", "r2", "-1") }, "INVALID_PARAMETER", "89.50"},
			{"debit", func(p, s string) body { return debit(p, s, "g1", "t2", "r2", `"1.00"`) }, "INVALID_PARAMETER", "89.50"},
			{"debit", func(p, s string) body { return debit(p, s, "g1", "t2", "r2", "null") }, "INVALID_PARAMETER", "89.50"},
			{"credit", func(p, s string) body { return credit(p, s, "g1", "c1", "r1", "0.100000") }, "OK", "89.60"},
		}},
		{"a currency that is not the wallet's: INVALID_PARAMETER", []step{
			{"debit", func(p, s string) body { b := debit(p, s, "g1", "t1", "r1", "1"); b["currency"] = "USD"; return b }, "INVALID_PARAMETER", "100.00"},
		}},
		{"missing fields: INVALID_PARAMETER", []step{
			{"debit", func(p, s string) body { b := debit(p, s, "", "t1", "r1", "1"); return b }, "INVALID_PARAMETER", "100.00"},
			{"debit", func(p, s string) body { b := debit(p, s, "g1", "t1", "r1", "1"); delete(b, "transaction"); return b }, "INVALID_PARAMETER", "100.00"},
			{"credit", func(p, s string) body { return credit(p, s, "g1", "c1", "", "1") }, "INVALID_PARAMETER", "100.00"},
			{"promo_payout", func(p, s string) body { return promo(p, s, "", "1") }, "INVALID_PARAMETER", "100.00"},
		}},
		{"balance and check", []step{
			{"balance", func(p, s string) body { return body{"sid": s, "userId": p, "currency": "EUR"} }, "OK", "100.00"},
			{"check", func(p, s string) body { return body{"sid": s, "userId": p, "channel": map[string]any{"type": "P"}} }, "OK", "100.00"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := h.player(t, "EUR", "100")
			sid := h.Launch(t, p, "evolution", "")
			for i, s := range tt.steps {
				r := h.call(t, "evolution", s.method, s.build(p, sid))
				if r.Status != s.status {
					t.Fatalf("step %d %s: status %s, want %s (%s)", i+1, s.method, r.Status, s.status, r.raw)
				}
				if got := h.Balance(t, p); got != s.balance {
					t.Fatalf("step %d %s: balance %s, want %s", i+1, s.method, got, s.balance)
				}
				switch {
				case s.method == "check":
					if r.SID != sid || r.Balance != "" {
						t.Fatalf("check reply %s: want {status, sid, uuid}", r.raw)
					}
				case r.Balance != json.Number(s.balance) || r.Bonus != "0.00":
					// The real balance, on errors too.
					t.Fatalf("step %d %s: reply balance %q bonus %q, want %s and 0.00: %s", i+1, s.method, r.Balance, r.Bonus, s.balance, r.raw)
				}
			}
		})
	}
}

func TestBigAmountsAndCurrencies(t *testing.T) {
	h := newHarness(t)
	for _, tt := range []struct {
		currency, deposit, amount, status, balance, reply string
	}{
		{"EUR", "100000000", "63727092.34", "OK", "36272907.66", "36272907.66"},
		{"EUR", "100000000", "63727092.340000", "OK", "36272907.66", "36272907.66"},
		{"JPY", "10000", "100.000000", "OK", "9900", "9900"},
		{"JPY", "10000", "100.5", "INVALID_PARAMETER", "10000", "10000"},
		{"KWD", "10", "1.234000", "OK", "8.766", "8.766"},
		{"KWD", "10", "1.2345", "INVALID_PARAMETER", "10.000", "10.000"},
	} {
		p := h.player(t, tt.currency, tt.deposit)
		sid := h.Launch(t, p, "evolution", "")
		b := debit(p, sid, "g1", "t1", "r1", tt.amount)
		b["currency"] = tt.currency
		r := h.call(t, "evolution", "debit", b)
		if r.Status != tt.status || h.Balance(t, p) != tt.balance || string(r.Balance) != tt.reply {
			t.Errorf("%s debit %s: %s, balance %s; want %s, %s, reply %s", tt.currency, tt.amount, r.raw, h.Balance(t, p), tt.status, tt.balance, tt.reply)
		}
	}
}

func TestSIDs(t *testing.T) {
	h := newHarness(t)
	p := h.player(t, "EUR", "100")
	other := h.player(t, "EUR", "100")
	sid := h.Launch(t, p, "evolution", "")
	otherSID := h.Launch(t, other, "evolution", "")
	rotSID := h.Launch(t, p, "evorot", "")

	bal := func(sid, user string) body { return body{"sid": sid, "userId": user} }
	for _, tt := range []struct {
		name, inst, method string
		b                  body
		status             string
	}{
		{"unknown sid on check", "evolution", "check", bal("nope", p), "INVALID_SID"},
		{"unknown sid on balance", "evolution", "balance", bal("nope", p), "INVALID_SID"},
		{"unknown sid on debit", "evolution", "debit", debit(p, "nope", "g1", "t1", "r1", "1"), "INVALID_SID"},
		{"no sid on debit", "evolution", "debit", debit(p, "", "g1", "t1", "r1", "1"), "INVALID_SID"},
		{"a sid of another instance", "evolution", "balance", bal(rotSID, p), "INVALID_SID"},
		{"another player's sid", "evolution", "balance", bal(otherSID, p), "INVALID_PARAMETER"},
		{"another player's sid on debit", "evolution", "debit", debit(p, otherSID, "g1", "t1", "r1", "1"), "INVALID_PARAMETER"},
		{"an unknown userId", "evolution", "balance", bal(sid, "nobody"), "INVALID_PARAMETER"},
		{"an invalid userId", "evolution", "balance", bal(sid, "no body"), "INVALID_PARAMETER"},
		{"an unknown userId on credit", "evolution", "credit", credit("nobody", sid, "g1", "c1", "r1", "1"), "INVALID_PARAMETER"},
		{"an unknown userId on sid", "evolution", "sid", bal("", "nobody"), "INVALID_PARAMETER"},
	} {
		before := h.Balance(t, p)
		if r := h.call(t, tt.inst, tt.method, tt.b); r.Status != tt.status {
			t.Errorf("%s: %s, want %s", tt.name, r.raw, tt.status)
		}
		if h.Balance(t, p) != before {
			t.Errorf("%s changed the balance", tt.name)
		}
	}

	// A debit under a live sid, then the sid expires: check, balance and
	// debit are refused; credit and cancel are still accepted.
	if r := h.call(t, "evolution", "debit", debit(p, sid, "g1", "t1", "r1", "10")); r.Status != "OK" {
		t.Fatal(r.raw)
	}
	if r := h.call(t, "evolution", "debit", debit(p, sid, "g1", "t2", "r2", "10")); r.Status != "OK" {
		t.Fatal(r.raw)
	}
	h.Clock.Advance(25 * time.Hour)
	for _, m := range []string{"check", "balance"} {
		if r := h.call(t, "evolution", m, bal(sid, p)); r.Status != "INVALID_SID" {
			t.Errorf("%s on an expired sid: %s", m, r.raw)
		}
	}
	if r := h.call(t, "evolution", "debit", debit(p, sid, "g1", "t3", "r3", "10")); r.Status != "INVALID_SID" || h.Balance(t, p) != "80.00" {
		t.Errorf("debit on an expired sid: %s, balance %s", r.raw, h.Balance(t, p))
	}
	if r := h.call(t, "evolution", "credit", credit(p, sid, "g1", "c1", "r1", "30")); r.Status != "OK" || h.Balance(t, p) != "110.00" {
		t.Errorf("credit on an expired sid: %s, balance %s", r.raw, h.Balance(t, p))
	}
	if r := h.call(t, "evolution", "cancel", cancel(p, sid, "g1", "t2", "r2")); r.Status != "OK" || h.Balance(t, p) != "120.00" {
		t.Errorf("cancel on an expired sid: %s, balance %s", r.raw, h.Balance(t, p))
	}
	if r := h.call(t, "evolution", "promo_payout", promo(p, sid, "pp1", "1")); r.Status != "OK" || h.Balance(t, p) != "121.00" {
		t.Errorf("promo_payout on an expired sid: %s, balance %s", r.raw, h.Balance(t, p))
	}

	// sid issues a fresh session for a known player.
	r := h.call(t, "evolution", "sid", body{"userId": p, "channel": map[string]any{"type": "M"}})
	if r.Status != "OK" || len(r.SID) != 43 {
		t.Fatalf("sid: %s", r.raw)
	}
	if r2 := h.call(t, "evolution", "balance", bal(r.SID, p)); r2.Status != "OK" || r2.Balance != "121.00" {
		t.Fatalf("balance with the sid from sid: %s", r2.raw)
	}
}

func TestCheckRotatesTheSID(t *testing.T) {
	h := newHarness(t)
	p := h.player(t, "EUR", "100")
	old := h.Launch(t, p, "evorot", "")
	r := h.call(t, "evorot", "check", body{"sid": old, "userId": p, "channel": map[string]any{"type": "P"}})
	if r.Status != "OK" || r.SID == "" || r.SID == old {
		t.Fatalf("check: %s; want a new sid", r.raw)
	}
	for _, m := range []string{"check", "balance"} {
		if r := h.call(t, "evorot", m, body{"sid": old, "userId": p}); r.Status != "INVALID_SID" {
			t.Errorf("%s with the rotated-out sid: %s", m, r.raw)
		}
	}
	if r := h.call(t, "evorot", "debit", debit(p, old, "g1", "t1", "r1", "5")); r.Status != "INVALID_SID" {
		t.Errorf("debit with the rotated-out sid: %s", r.raw)
	}
	if r := h.call(t, "evorot", "debit", debit(p, r.SID, "g1", "t1", "r1", "5")); r.Status != "OK" || r.Balance != "95.00" {
		t.Errorf("debit with the new sid: %s", r.raw)
	}
	// A credit for a bet placed under the old sid is still paid.
	if r := h.call(t, "evorot", "credit", credit(p, old, "g1", "c1", "r1", "10")); r.Status != "OK" || r.Balance != "105.00" {
		t.Errorf("credit naming the old sid: %s", r.raw)
	}
}

func TestAuthTokenAndMalformedRequests(t *testing.T) {
	h := newHarness(t)
	p := h.player(t, "EUR", "100")
	sid := h.Launch(t, p, "evolution", "")
	good, _ := json.Marshal(debit(p, sid, "g1", "t1", "r1", "10"))
	withUUID := func(b []byte) []byte {
		var m map[string]any
		json.Unmarshal(b, &m)
		m["uuid"] = "u-1"
		out, _ := json.Marshal(m)
		return out
	}
	for _, tt := range []struct {
		name, inst, query string
		body              []byte
		status, uuid      string
	}{
		{"no authToken", "evolution", "", withUUID(good), "INVALID_TOKEN_ID", "u-1"},
		{"wrong authToken", "evolution", "authToken=nope", withUUID(good), "INVALID_TOKEN_ID", "u-1"},
		{"another instance's authToken", "evolution", "authToken=" + rotToken, withUUID(good), "INVALID_TOKEN_ID", "u-1"},
		{"a prefix of the authToken", "evolution", "authToken=" + token[:5], withUUID(good), "INVALID_TOKEN_ID", "u-1"},
		{"malformed JSON", "evolution", "authToken=" + token, []byte(`{"uuid":"u-2","userId":`), "INVALID_PARAMETER", ""},
		{"not an object", "evolution", "authToken=" + token, []byte(`[1,2]`), "INVALID_PARAMETER", ""},
		{"a wrong type", "evolution", "authToken=" + token, []byte(`{"uuid":"u-3","userId":7,"sid":"x"}`), "INVALID_PARAMETER", "u-3"},
		{"no uuid", "evolution", "authToken=" + token, good, "INVALID_PARAMETER", ""},
		{"an oversized body", "evolution", "authToken=" + token, []byte(`{"uuid":"u-4","x":"` + strings.Repeat("a", 70<<10) + `"}`), "INVALID_PARAMETER", ""},
	} {
		r := h.raw(t, tt.inst, "debit", tt.query, tt.body)
		if r.Status != tt.status || r.UUID != tt.uuid || r.Balance != "" {
			t.Errorf("%s: %s; want %s with uuid %q and no balance", tt.name, r.raw, tt.status, tt.uuid)
		}
	}
	if got := h.Balance(t, p); got != "100.00" {
		t.Fatalf("refused requests changed the balance to %s", got)
	}
	status, b := h.Do(t, http.MethodPost, "/providers/evolution/withdraw?authToken="+token, "", withUUID(good), false)
	if status != http.StatusNotFound {
		t.Fatalf("unknown method: %d %s", status, b)
	}
	if r := h.raw(t, "evolution", "DEBIT", "authToken="+token, withUUID(good)); r.Status != "OK" {
		t.Fatalf("DEBIT (case-insensitive): %s", r.raw)
	}
}

func TestStoreOutageIsTemporaryError(t *testing.T) {
	h := newHarness(t)
	p := h.player(t, "EUR", "100")
	sid := h.Launch(t, p, "evolution", "")
	if r := h.call(t, "evolution", "debit", debit(p, sid, "g1", "t1", "r1", "10")); r.Status != "OK" {
		t.Fatal(r.raw)
	}
	h.Store.SetDown(true)
	calls := []struct {
		method string
		b      body
	}{
		{"debit", debit(p, sid, "g1", "t2", "r2", "10")},
		{"credit", credit(p, sid, "g1", "c1", "r1", "30")},
		{"cancel", cancel(p, sid, "g1", "t2", "r2")},
		{"promo_payout", promo(p, sid, "pr1", "5")},
	}
	for _, c := range calls {
		if r := h.call(t, "evolution", c.method, c.b); r.Status != "TEMPORARY_ERROR" {
			t.Errorf("%s during an outage: %s, want TEMPORARY_ERROR", c.method, r.raw)
		}
	}
	h.Store.SetDown(false)
	if got := h.Balance(t, p); got != "90.00" {
		t.Fatalf("after the outage: %s, want 90.00", got)
	}
	// Evolution retries each: they apply once now. The cancel of r2
	// follows its debit, so it refunds it.
	for i, want := range []string{"80.00", "110.00", "120.00", "125.00"} {
		c := calls[i]
		delete(c.b, "uuid")
		if r := h.call(t, "evolution", c.method, c.b); r.Status != "OK" || h.Balance(t, p) != want {
			t.Fatalf("retry of %s: %s, balance %s, want OK and %s", c.method, r.raw, h.Balance(t, p), want)
		}
	}
}

func TestSessionStoreOutage(t *testing.T) {
	h := newHarness(t)
	p := h.player(t, "EUR", "100")
	sid := h.Launch(t, p, "evolution", "")
	if r := h.call(t, "evolution", "debit", debit(p, sid, "g1", "t1", "r1", "10")); r.Status != "OK" {
		t.Fatal(r.raw)
	}
	h.Sessions.Close() // every session call fails from now on
	for _, m := range []string{"check", "sid"} {
		if r := h.call(t, "evolution", m, body{"sid": sid, "userId": p}); r.Status != "TEMPORARY_ERROR" {
			t.Errorf("%s with the session store down: %s, want TEMPORARY_ERROR (not INVALID_SID)", m, r.raw)
		}
	}
	if r := h.call(t, "evolution", "debit", debit(p, sid, "g1", "t2", "r2", "10")); r.Status != "TEMPORARY_ERROR" || h.Balance(t, p) != "90.00" {
		t.Errorf("debit with the session store down: %s, balance %s", r.raw, h.Balance(t, p))
	}
	// Credits and cancels need no session: they go on.
	if r := h.call(t, "evolution", "credit", credit(p, sid, "g1", "c1", "r1", "30")); r.Status != "OK" || r.Balance != "120.00" {
		t.Errorf("credit with the session store down: %s", r.raw)
	}
}
