package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"

	"github.com/walletd/walletd/providers/evolution"
)

// evoPlayer plays one wallet as Evolution.
type evoPlayer struct {
	*player
	sid   string
	games int
}

// evoReply is what the simulator reads of an Evolution reply.
type evoReply struct {
	Status  string
	SID     string
	Balance json.Number
	UUID    string
}

func (e *evoPlayer) start() bool {
	sid, ok := e.launch("")
	if !ok {
		return false
	}
	e.sid = sid
	return e.check()
}

// check validates the sid; an instance that rotates it answers a new one,
// and the old one must then be refused.
func (e *evoPlayer) check() bool {
	r, ok := e.send("check", e.body(nil), e.prov.AuthToken)
	if !ok {
		return false
	}
	if r.Status != evolution.StatusOK || r.SID == "" {
		e.fail("check answered %s with sid %q", r.Status, r.SID)
		return false
	}
	if e.prov.RotateSID {
		if r.SID == e.sid {
			e.mismatch(fmt.Sprintf("%s %s: check did not rotate the sid", e.prov.Instance, e.id))
		}
		old := e.sid
		e.sid = r.SID
		if r, ok := e.send("balance", e.body(map[string]any{"sid": old}), e.prov.AuthToken); ok {
			e.expect("balance", r, evolution.StatusInvalidSID)
		}
	} else if r.SID != e.sid {
		e.mismatch(fmt.Sprintf("%s %s: check changed the sid", e.prov.Instance, e.id))
	}
	return true
}

// round plays one round (a game), picked at random with these weights.
func (e *evoPlayer) round() {
	e.games++
	game := fmt.Sprintf("g%d", e.games)
	switch pick(e.rng, 30, 12, 6, 5, 4, 3, 4, 3, 2, 2, 2) {
	case 0: // debit, credit
		ref, stake := e.debit(game)
		e.credit(game, ref, e.win(stake))
	case 1: // several debits in one game, each settled on its own
		type bet struct {
			ref   string
			stake int64
		}
		var bets []bet
		for range 2 + e.rng.IntN(2) {
			ref, stake := e.debit(game)
			bets = append(bets, bet{ref, stake})
		}
		for i, b := range bets {
			if i == 0 && e.rng.IntN(3) == 0 {
				e.cancel(game, b.ref, b.stake)
				continue
			}
			e.credit(game, b.ref, e.win(b.stake))
		}
	case 2: // a debit cancelled
		ref, stake := e.debit(game)
		e.cancel(game, ref, stake)
	case 3: // a cancel before its debit: a tombstone, then the debit is final-failed
		ref := e.ref("t")
		e.money("cancel", e.txBody(game, ref, ref, 1), evolution.StatusBetDoesNotExist, evolution.StatusBetAlreadySettled, 0)
		e.money("debit", e.txBody(game, ref, ref, e.stake()), evolution.StatusFinalErrorAction, evolution.StatusFinalErrorAction, 0)
	case 4: // more than the balance
		ref := e.ref("t")
		e.money("debit", e.txBody(game, ref, ref, e.ledger+1), evolution.StatusInsufficientFunds, evolution.StatusInsufficientFunds, 0)
	case 5: // a credit for a bet nobody placed
		e.money("credit", e.txBody(game, e.ref("c"), e.ref("nobet"), 5), evolution.StatusBetDoesNotExist, evolution.StatusBetDoesNotExist, 0)
	case 6: // a promotion, repeated: credited once
		a := 1 + e.rng.Int64N(10*e.unit())
		b := e.body(map[string]any{"promoTransaction": map[string]any{
			"type": "FreeRoundPlayableSpent", "id": e.ref("promo"), "amount": e.number(a), "voucherId": "v1", "remainingRounds": 0,
		}})
		e.money("promo_payout", b, evolution.StatusOK, evolution.StatusOK, a)
	case 7: // a second credit (another id) for a settled bet
		ref, stake := e.debit(game)
		e.credit(game, ref, e.win(stake))
		e.money("credit", e.txBody(game, e.ref("c"), ref, 1), evolution.StatusBetAlreadySettled, evolution.StatusBetAlreadySettled, 0)
	case 8:
		if r, ok := e.send("balance", e.body(nil), e.prov.AuthToken); ok {
			e.expect("balance", r, evolution.StatusOK)
		}
	case 9:
		e.check()
	case 10: // a wrong authToken changes nothing and learns nothing
		ref := e.ref("t")
		if r, ok := e.send("debit", e.txBody(game, ref, ref, 1), e.prov.AuthToken+"-wrong"); ok {
			e.expect("debit", r, evolution.StatusInvalidTokenID)
			if r.Balance != "" {
				e.mismatch(fmt.Sprintf("%s %s: INVALID_TOKEN_ID came with a balance", e.prov.Instance, e.id))
			}
		}
	}
}

// debit places a bet and returns its refId and stake.
func (e *evoPlayer) debit(game string) (string, int64) {
	ref, stake := e.ref("t"), e.stake()
	e.money("debit", e.txBody(game, ref, ref, stake), evolution.StatusOK, evolution.StatusBetAlreadyExist, -stake)
	return ref, stake
}

func (e *evoPlayer) credit(game, ref string, amount int64) {
	e.money("credit", e.txBody(game, e.ref("c"), ref, amount), evolution.StatusOK, evolution.StatusBetAlreadySettled, amount)
}

// cancel repeats the debit's transaction id and refId.
func (e *evoPlayer) cancel(game, ref string, stake int64) {
	e.money("cancel", e.txBody(game, ref, ref, stake), evolution.StatusOK, evolution.StatusBetAlreadySettled, stake)
}

// body returns a request body: sid, userId, currency and the fields given.
func (e *evoPlayer) body(fields map[string]any) map[string]any {
	b := map[string]any{"sid": e.sid, "userId": e.id, "currency": e.cur.Code, "channel": map[string]any{"type": "P"}}
	for k, v := range fields {
		b[k] = v
	}
	return b
}

func (e *evoPlayer) txBody(game, id, ref string, amount int64) map[string]any {
	return e.body(map[string]any{
		"game":        map[string]any{"id": game, "type": "blackjack", "details": map[string]any{"table": map[string]any{"id": "vip1", "vid": "v1"}}},
		"transaction": map[string]any{"id": id, "refId": ref, "amount": e.number(amount)},
	})
}

// number writes an amount as a JSON number, sometimes with Evolution's 6
// decimals.
func (e *evoPlayer) number(n int64) json.RawMessage {
	pad := 0
	if e.rng.IntN(2) == 0 {
		pad = 6
	}
	return json.RawMessage(formatMinor(n, int(e.cur.Minor), pad))
}

// money sends a money call whose first answer must be want (the ledger
// moving by delta when want is OK) and whose repeats must be again (now
// and then a retry follows, or runs at the same time).
func (e *evoPlayer) money(method string, b map[string]any, want, again string, delta int64) {
	if want == evolution.StatusOK {
		e.ledger += delta
	}
	switch {
	case e.chance(e.cfg.RetryRate / 2):
		var r [2]evoReply
		var ok [2]bool
		var wg sync.WaitGroup
		for i := range r {
			wg.Add(1)
			uuid := e.uuid()
			go func() { defer wg.Done(); r[i], ok[i] = e.post(method, b, e.prov.AuthToken, uuid) }()
		}
		wg.Wait()
		if !ok[0] || !ok[1] {
			e.fail("%s: a request failed", method)
			return
		}
		// Either may be the one that came first.
		first, second := r[0], r[1]
		if first.Status != want {
			first, second = second, first
		}
		e.record(method, first, false)
		e.record(method, second, true)
		e.expect(method, first, want)
		e.expect(method, second, again)
	case e.chance(e.cfg.RetryRate / 2):
		if r, ok := e.send(method, b, e.prov.AuthToken); ok {
			e.expect(method, r, want)
		}
		r, ok := e.post(method, b, e.prov.AuthToken, e.uuid())
		if !ok {
			e.fail("%s: a retry failed", method)
			return
		}
		e.record(method, r, true)
		e.expect(method, r, again)
	default:
		if r, ok := e.send(method, b, e.prov.AuthToken); ok {
			e.expect(method, r, want)
		}
	}
}

// expect compares a reply with the ledger: the status, and the balance,
// which Evolution wants on errors too.
func (e *evoPlayer) expect(method string, r evoReply, want string) {
	if r.Status != want {
		e.mismatch(fmt.Sprintf("%s %s: %s answered %s, want %s", e.prov.Instance, e.id, method, r.Status, want))
		return
	}
	if method != "check" && want != evolution.StatusInvalidTokenID {
		e.checkText(method+" balance", string(r.Balance))
	}
}

func (e *evoPlayer) send(method string, b map[string]any, token string) (evoReply, bool) {
	r, ok := e.post(method, b, token, e.uuid())
	if !ok {
		e.fail("%s: the request failed", method)
		return r, false
	}
	e.record(method, r, false)
	return r, true
}

func (e *evoPlayer) record(method string, r evoReply, retry bool) {
	o := method + " " + r.Status
	if retry {
		o += " (retry)"
	}
	e.t.add(o)
}

// uuid returns a fresh request uuid.
func (e *evoPlayer) uuid() string { return e.ref("uuid") }

// post sends b with uuid and checks that the uuid is echoed. It may run on
// another goroutine than the player's: it only reads the player.
func (e *evoPlayer) post(method string, b map[string]any, token, uuid string) (evoReply, bool) {
	body := map[string]any{"uuid": uuid}
	for k, v := range b {
		body[k] = v
	}
	raw, _ := json.Marshal(body)
	status, out, err := e.c.do(e.ctx, http.MethodPost, "/providers/"+e.prov.Instance+"/"+method+"?authToken="+url.QueryEscape(token),
		"application/json", raw, false)
	var r evoReply
	if err != nil || status != http.StatusOK || json.Unmarshal(out, &r) != nil || r.UUID != uuid {
		return r, false
	}
	return r, true
}
