package sim

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"

	"github.com/walletd/walletd/providers/evolution"
	"github.com/walletd/walletd/wallet"
)

// player is one wallet played by one goroutine, so its ledger is exact at
// every step: the balance walletd must report after each reply.
type player struct {
	ctx      context.Context
	cfg      *Config
	c        *client
	prov     Provider
	t        *tally
	mismatch func(string)
	rng      *mrand.Rand

	id     string
	cur    wallet.Currency
	ledger int64 // minor units
	seq    int   // makes references unique
	broken bool  // a request failed outright: stop playing this wallet
}

func (p *player) play() {
	if !p.open() {
		return
	}
	var kind interface{ round() }
	if p.prov.Kind == evolution.Kind {
		e := &evoPlayer{player: p}
		if !e.start() {
			return
		}
		kind = e
	} else {
		pp := &ppPlayer{player: p}
		if !pp.start() {
			return
		}
		kind = pp
	}
	for range p.cfg.Rounds {
		if p.broken || p.ctx.Err() != nil {
			return
		}
		p.topUp()
		kind.round()
		p.t.round()
	}
	p.verify()
}

// open creates the wallet and funds it.
func (p *player) open() bool {
	err := p.c.api(p.ctx, http.MethodPost, "/v1/wallets", map[string]string{"player_id": p.id, "currency": p.cur.Code}, http.StatusCreated, nil)
	if err != nil {
		p.fail("create wallet: %v", err)
		return false
	}
	p.deposit(1000 * p.unit())
	return !p.broken
}

// topUp deposits when the balance runs low, so rounds keep being played.
func (p *player) topUp() {
	if p.ledger < 100*p.unit() {
		p.deposit(1000 * p.unit())
	}
}

func (p *player) deposit(amount int64) {
	p.seq++
	var res struct{ Balance string }
	body := map[string]string{"tx_id": fmt.Sprintf("sim-deposit-%d", p.seq), "amount": p.text(amount)}
	if err := p.c.api(p.ctx, http.MethodPost, walletPath(p.id, "/deposit"), body, http.StatusOK, &res); err != nil {
		p.fail("deposit: %v", err)
		return
	}
	p.ledger += amount
	p.checkText("deposit", res.Balance)
}

// launch issues a launch token for the player at the instance.
func (p *player) launch(game string) (string, bool) {
	var res struct{ Token string }
	body := map[string]string{"player_id": p.id, "provider": p.prov.Instance, "game_id": game}
	if err := p.c.api(p.ctx, http.MethodPost, "/v1/sessions", body, http.StatusCreated, &res); err != nil {
		p.fail("launch: %v", err)
		return "", false
	}
	return res.Token, true
}

// verify compares the wallet's balance with the ledger at the end.
func (p *player) verify() {
	var w struct{ Balance string }
	if err := p.c.api(p.ctx, http.MethodGet, walletPath(p.id), nil, http.StatusOK, &w); err != nil {
		p.fail("final balance: %v", err)
		return
	}
	p.checkText("final balance", w.Balance)
}

// checkText compares a balance written by walletd with the ledger.
func (p *player) checkText(what, text string) {
	got, err := p.parse(text)
	if err != nil || got != p.ledger {
		p.mismatch(fmt.Sprintf("%s %s: %s is %q, the ledger says %s", p.prov.Instance, p.id, what, text, p.text(p.ledger)))
	}
}

func (p *player) fail(format string, args ...any) {
	p.broken = true
	p.mismatch(fmt.Sprintf("%s %s: ", p.prov.Instance, p.id) + fmt.Sprintf(format, args...))
}

// unit is one whole currency unit in minor units.
func (p *player) unit() int64 {
	u := int64(1)
	for range p.cur.Minor {
		u *= 10
	}
	return u
}

// stake picks an amount for a bet: up to a fifth of the balance, at most
// 50 units, at least one minor unit; zero-stake bets now and then (free
// rounds).
func (p *player) stake() int64 {
	if p.rng.IntN(20) == 0 {
		return 0
	}
	hi := min(p.ledger/5, 50*p.unit())
	if hi < 1 {
		return 0
	}
	return 1 + p.rng.Int64N(hi)
}

// win picks a payout: nothing half the time, else up to 3 units' worth of
// the stake.
func (p *player) win(stake int64) int64 {
	if p.rng.IntN(2) == 0 {
		return 0
	}
	return p.rng.Int64N(3*max(stake, p.unit()) + 1)
}

// text writes minor units as the API writes money ("12.50").
func (p *player) text(n int64) string { return formatMinor(n, int(p.cur.Minor), 0) }

// parse reads money text (a JSON number or string) into minor units:
// extra fractional digits must be zeros ("9900.00" for JPY).
func (p *player) parse(s string) (int64, error) { return parseMinor(s, int(p.cur.Minor)) }

func (p *player) ref(kind string) string {
	p.seq++
	return fmt.Sprintf("%s-%s%d", p.id, kind, p.seq)
}

// chance reports true with probability f.
func (p *player) chance(f float64) bool { return f > 0 && p.rng.Float64() < f }

// formatMinor writes n minor units with minor digits, then pads the
// fraction to at least pad digits (Evolution's 6) with zeros.
func formatMinor(n int64, minor, pad int) string {
	neg := n < 0
	if neg {
		n = -n
	}
	s := strconv.FormatInt(n, 10)
	if minor > 0 {
		if len(s) <= minor {
			s = strings.Repeat("0", minor-len(s)+1) + s
		}
		s = s[:len(s)-minor] + "." + s[len(s)-minor:]
	}
	if pad > minor {
		if minor == 0 {
			s += "."
		}
		s += strings.Repeat("0", pad-minor)
	}
	if neg {
		s = "-" + s
	}
	return s
}

// unpadded writes an amount as Pragmatic does: "5.6", "1.0", "100.25".
func unpadded(n int64, minor int) string {
	s := formatMinor(n, minor, 0)
	if minor == 0 {
		return s + ".0"
	}
	s = strings.TrimRight(s, "0")
	if strings.HasSuffix(s, ".") {
		s += "0"
	}
	return s
}

func parseMinor(s string, minor int) (int64, error) {
	intPart, frac, _ := strings.Cut(s, ".")
	if len(frac) > minor {
		if strings.Trim(frac[minor:], "0") != "" {
			return 0, fmt.Errorf("%q has more than %d decimals", s, minor)
		}
		frac = frac[:minor]
	}
	frac += strings.Repeat("0", minor-len(frac))
	n, err := strconv.ParseInt(intPart+frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not money: %w", s, err)
	}
	return n, nil
}

// pick returns an index with probability proportional to its weight.
func pick(rng *mrand.Rand, weights ...int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := rng.IntN(total)
	for i, w := range weights {
		if n < w {
			return i
		}
		n -= w
	}
	return len(weights) - 1
}
