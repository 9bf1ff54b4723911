package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/walletd/walletd/providers/pragmatic"
)

// ppPlayer plays one wallet as Pragmatic Play.
type ppPlayer struct {
	*player
	token     string
	rounds    int
	lastStake int64 // the stake of the last bet: what its refund gives back
}

const ppGame = "vs20doghouse"

// ppReply is what the simulator reads of a Pragmatic reply.
type ppReply struct {
	Error         int
	Description   string
	TransactionID json.Number
	Cash          json.Number
	UserID        string
}

func (p *ppPlayer) start() bool {
	tok, ok := p.launch(ppGame)
	if !ok {
		return false
	}
	p.token = tok
	auth := url.Values{"providerId": {p.prov.ProviderID}, "token": {tok}, "gameId": {ppGame}, "ipAddress": {"10.0.0.1"}}
	r, ok := p.send("authenticate", auth, p.prov.Secret)
	if !ok {
		return false
	}
	p.check("authenticate", r, 0, "")
	if r.UserID != p.id {
		p.fail("authenticate answered userId %q", r.UserID)
	}
	return !p.broken
}

// round plays one round, picked at random with these weights.
func (p *ppPlayer) round() {
	p.rounds++
	round := fmt.Sprintf("r%d", p.rounds)
	switch pick(p.rng, 30, 12, 6, 5, 4, 6, 3, 3, 3, 4, 2, 2, 2) {
	case 0: // bet, result, endRound
		p.bet(round, p.stake(), true)
		p.result(round, 0)
		p.endRound(round)
	case 1: // a multi-bet round
		for range 2 + p.rng.IntN(2) {
			p.bet(round, p.stake(), false)
		}
		p.result(round, 0)
		p.endRound(round)
	case 2: // a bet refunded
		ref := p.bet(round, p.stake(), true)
		p.refund(ref, p.lastStake, 0)
		p.endRound(round)
	case 3: // a refund before its bet: a tombstone, then the bet is refused
		ref := p.ref("b")
		p.refund(ref, 0, 0)
		p.money("bet", p.betForm(round, ref, p.stake()), 120, 0)
		p.endRound(round)
	case 4: // more than the balance
		p.money("bet", p.betForm(round, p.ref("b"), p.ledger+1), 1, 0)
	case 5: // a win with a promo win on top
		p.bet(round, p.stake(), false)
		p.result(round, 1+p.rng.Int64N(5*p.unit()))
		p.endRound(round)
	case 6:
		j := 1 + p.rng.Int64N(100*p.unit())
		p.money("jackpotWin", p.form("gameId", ppGame, "roundId", round, "jackpotId", "j1", "amount", unpadded(j, int(p.cur.Minor)),
			"reference", p.ref("jp"), "timestamp", "1700000000000"), 0, j)
	case 7:
		a := 1 + p.rng.Int64N(10*p.unit())
		p.money("promoWin", p.form("campaignId", "c1", "campaignType", "tournament", "amount", unpadded(a, int(p.cur.Minor)),
			"currency", p.cur.Code, "reference", p.ref("pw"), "timestamp", "1700000000000"), 0, a)
	case 8: // bonusWin moves money only under the credit policy
		a := 1 + p.rng.Int64N(10*p.unit())
		delta := int64(0)
		if p.prov.BonusWin == pragmatic.BonusWinCredit {
			delta = a
		}
		p.money("bonusWin", p.form("amount", unpadded(a, int(p.cur.Minor)), "reference", p.ref("bw"), "bonusCode", "FR1", "timestamp", "1700000000000"), 0, delta)
	case 9: // an adjustment, negative now and then
		a := 1 + p.rng.Int64N(5*p.unit())
		text := unpadded(a, int(p.cur.Minor))
		if p.rng.IntN(2) == 0 && a <= p.ledger {
			a, text = -a, "-"+text
		}
		p.money("adjustment", p.form("gameId", ppGame, "roundId", round, "amount", text, "reference", p.ref("adj"),
			"validBetAmount", "0", "timestamp", "1700000000000"), 0, a)
	case 10: // a request signed with the wrong secret changes nothing
		r, ok := p.send("bet", p.betForm(round, p.ref("b"), 1), p.prov.Secret+"-wrong")
		if ok {
			p.check("bet", r, 5, "")
		}
	case 11:
		r, ok := p.send("balance", p.form(), p.prov.Secret)
		if ok {
			p.check("balance", r, 0, "")
		}
	case 12: // a refund after the round's result is refused
		ref := p.bet(round, p.stake(), false)
		p.result(round, 0)
		p.refund(ref, 0, 120)
		p.endRound(round)
	}
}

// bet places a bet (with the session token if token) and returns its reference.
func (p *ppPlayer) bet(round string, stake int64, token bool) string {
	ref := p.ref("b")
	v := p.betForm(round, ref, stake)
	if token {
		v.Set("token", p.token)
	}
	p.lastStake = stake
	p.money("bet", v, 0, -stake)
	return ref
}

func (p *ppPlayer) betForm(round, ref string, amount int64) url.Values {
	return p.form("gameId", ppGame, "roundId", round, "reference", ref, "amount", unpadded(amount, int(p.cur.Minor)),
		"timestamp", "1700000000000", "roundDetails", "spin")
}

func (p *ppPlayer) result(round string, promo int64) {
	w := p.win(p.lastStake)
	v := p.betForm(round, p.ref("w"), w)
	if promo > 0 {
		v.Set("promoWinAmount", unpadded(promo, int(p.cur.Minor)))
		v.Set("promoWinReference", p.ref("pr"))
	}
	p.money("result", v, 0, w+promo)
}

func (p *ppPlayer) refund(ref string, stake int64, want int) {
	p.money("refund", p.form("reference", ref, "gameId", ppGame), want, stake)
}

func (p *ppPlayer) endRound(round string) {
	p.money("endRound", p.form("gameId", ppGame, "roundId", round), 0, 0)
}

// form returns the common parameters plus kv pairs.
func (p *ppPlayer) form(kv ...string) url.Values {
	v := url.Values{"providerId": {p.prov.ProviderID}, "userId": {p.id}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// money sends a money call and checks its reply against the ledger, which
// moves by delta when want is success. Now and then it sends the same
// request again, after the first or at the same time: a retry must answer
// the same code, the same transactionId and the current balance.
func (p *ppPlayer) money(method string, v url.Values, want int, delta int64) {
	if want == 0 {
		p.ledger += delta
	}
	switch {
	case p.chance(p.cfg.RetryRate / 2):
		var r [2]ppReply
		var ok [2]bool
		var wg sync.WaitGroup
		for i := range r {
			wg.Add(1)
			go func() { defer wg.Done(); r[i], ok[i] = p.post(method, v, p.prov.Secret) }()
		}
		wg.Wait()
		if !ok[0] || !ok[1] {
			p.fail("%s: a request failed", method)
			return
		}
		p.record(method, r[0], false)
		p.record(method, r[1], true)
		p.check(method, r[0], want, "")
		p.check(method, r[1], want, r[0].TransactionID)
	case p.chance(p.cfg.RetryRate / 2):
		r, ok := p.send(method, v, p.prov.Secret)
		if !ok {
			return
		}
		p.check(method, r, want, "")
		r2, ok := p.post(method, v, p.prov.Secret)
		if !ok {
			p.fail("%s: a retry failed", method)
			return
		}
		p.record(method, r2, true)
		p.check(method, r2, want, r.TransactionID)
	default:
		if r, ok := p.send(method, v, p.prov.Secret); ok {
			p.check(method, r, want, "")
		}
	}
}

// check compares a reply with the ledger: the code, the cash when the
// reply carries it, and the transactionId of the original for a retry.
func (p *ppPlayer) check(method string, r ppReply, want int, sameTx json.Number) {
	if r.Error != want {
		p.mismatch(fmt.Sprintf("%s %s: %s answered error %d (%s), want %d", p.prov.Instance, p.id, method, r.Error, r.Description, want))
		return
	}
	if r.Cash != "" {
		p.checkText(method+" cash", string(r.Cash))
	}
	if sameTx != "" && r.TransactionID != sameTx {
		p.mismatch(fmt.Sprintf("%s %s: a retry of %s answered transactionId %s, the original %s", p.prov.Instance, p.id, method, r.TransactionID, sameTx))
	}
}

// send posts once, records the outcome, and fails the player on a
// transport error.
func (p *ppPlayer) send(method string, v url.Values, secret string) (ppReply, bool) {
	r, ok := p.post(method, v, secret)
	if !ok {
		p.fail("%s: the request failed", method)
		return r, false
	}
	p.record(method, r, false)
	return r, true
}

func (p *ppPlayer) record(method string, r ppReply, retry bool) {
	o := method + " " + strconv.Itoa(r.Error)
	if retry {
		o += " (retry)"
	}
	p.t.add(o)
}

// post signs v with secret and posts it to method.
func (p *ppPlayer) post(method string, v url.Values, secret string) (ppReply, bool) {
	signed := url.Values{}
	for k, x := range v {
		signed[k] = x
	}
	signed.Set("hash", pragmatic.Sign(signed, secret))
	status, b, err := p.c.do(p.ctx, http.MethodPost, "/providers/"+p.prov.Instance+"/"+method+".html",
		"application/x-www-form-urlencoded", []byte(signed.Encode()), false)
	var r ppReply
	if err != nil || status != http.StatusOK || json.Unmarshal(b, &r) != nil {
		return r, false
	}
	return r, true
}
