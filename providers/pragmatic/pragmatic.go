// Package pragmatic is the adapter for Pragmatic Play's Seamless Wallet
// API (providers.md): form-encoded POSTs to /providers/{instance}/{method}.html,
// signed with an MD5 hash, answered with HTTP 200 and JSON whose `error`
// field says what happened.
//
// The adapter translates only. Each money call becomes one wallet command
// keyed by the provider's reference, namespaced per instance
// ("pp.<instance>:bet:<reference>"), so a retry is a wallet duplicate and
// answers with the original transactionId and the current balance.
//
// transactionId is the wallet's journal sequence of the transaction
// (GET /v1/wallets/{userId}/transactions lists it as seq): stable on
// retries, and what an operator looks up when Pragmatic asks about one.
package pragmatic

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	wallethttp "github.com/walletd/walletd/http"
	"github.com/walletd/walletd/providers/provider"
	"github.com/walletd/walletd/providers/sessions"
	"github.com/walletd/walletd/wallet"
)

// Error codes of the Seamless Wallet API that walletd answers.
const (
	codeOK             = 0
	codeInsufficient   = 1
	codePlayerNotFound = 2
	codeTokenInvalid   = 4
	codeBadHash        = 5
	codeBadParameters  = 7
	codeBetLimit       = 50
	codeRetry          = 100 // internal error, retry: also every storage outage
	codeNoRetry        = 120 // internal error, do not retry: a bet after its refund, …
)

// Classes of wallet keys (provider.Keys.ID).
const (
	keyBet         = "bet"
	keyWin         = "win"
	keyResultPromo = "resultpromo"
	keyBonus       = "bonus"
	keyBonusInfo   = "bonusinfo"
	keyJackpot     = "jackpot"
	keyPromo       = "promowin"
	keyRefund      = "refund"
	keyEnd         = "end"
	keyAdjust      = "adjust"
	keyRound       = "round"
	keyGame        = "game"
)

// Canonical method names.
const (
	mAuthenticate      = "authenticate"
	mBalance           = "balance"
	mBet               = "bet"
	mResult            = "result"
	mBonusWin          = "bonusWin"
	mJackpotWin        = "jackpotWin"
	mPromoWin          = "promoWin"
	mRefund            = "refund"
	mEndRound          = "endRound"
	mAdjustment        = "adjustment"
	mGetBalancePerGame = "getBalancePerGame"
)

// spec is one method: its class and required parameters (providers.md;
// hash is checked separately).
type spec struct {
	provider.Method
	required []string
}

func specs() map[string]spec {
	money := []string{"userId", "gameId", "roundId", "amount", "reference", "providerId", "timestamp", "roundDetails"}
	list := []spec{
		{provider.Method{Name: mAuthenticate, Class: provider.ClassAuth}, []string{"token", "providerId"}},
		{provider.Method{Name: mBalance, Class: provider.ClassRead}, []string{"providerId", "userId"}},
		{provider.Method{Name: mBet, Class: provider.ClassGameplay}, money},
		{provider.Method{Name: mResult, Class: provider.ClassSettle}, money},
		{provider.Method{Name: mBonusWin, Class: provider.ClassSettle}, []string{"userId", "amount", "reference", "providerId", "timestamp", "bonusCode"}},
		{provider.Method{Name: mJackpotWin, Class: provider.ClassSettle}, []string{"providerId", "timestamp", "userId", "gameId", "roundId", "jackpotId", "amount", "reference"}},
		{provider.Method{Name: mPromoWin, Class: provider.ClassSettle}, []string{"providerId", "timestamp", "userId", "campaignId", "campaignType", "amount", "currency", "reference"}},
		{provider.Method{Name: mRefund, Class: provider.ClassSettle}, []string{"userId", "reference", "providerId"}},
		{provider.Method{Name: mEndRound, Class: provider.ClassSettle}, []string{"userId", "gameId", "roundId", "providerId"}},
		// An adjustment may debit, but it is Pragmatic correcting a round
		// already played, not a player's new stake: never rate limited.
		{provider.Method{Name: mAdjustment, Class: provider.ClassSettle}, []string{"userId", "gameId", "roundId", "amount", "reference", "providerId", "validBetAmount", "timestamp"}},
		{provider.Method{Name: mGetBalancePerGame, Class: provider.ClassRead}, []string{"userId", "providerId", "gameIdList"}},
	}
	m := make(map[string]spec, len(list))
	for _, s := range list {
		m[strings.ToLower(s.Name)] = s
	}
	return m
}

// Adapter serves one Pragmatic Play instance. It implements provider.Adapter.
type Adapter struct {
	name  string
	cfg   Config
	keys  provider.Keys
	deps  provider.Deps
	specs map[string]spec
}

var _ provider.Adapter = (*Adapter)(nil)

// New returns the adapter of instance name; cfg must have been Resolved.
func New(name string, cfg Config, deps provider.Deps) (*Adapter, error) {
	keys, err := provider.NewKeys(KeyTag, name)
	if err != nil {
		return nil, err
	}
	if err := cfg.Resolve(nil); err != nil {
		return nil, fmt.Errorf("pragmatic instance %s: %w", name, err)
	}
	if deps.Wallets == nil || deps.Sessions == nil {
		return nil, errors.New("pragmatic: Wallets and Sessions are required")
	}
	return &Adapter{name: name, cfg: cfg, keys: keys, deps: deps, specs: specs()}, nil
}

func (a *Adapter) Kind() string { return Kind }
func (a *Adapter) Name() string { return a.name }

// Lookup resolves "{method}.html", the method name matched case-insensitively
// (Pragmatic sends both GetBalancePerGame.html and getBalancePerGame.html).
func (a *Adapter) Lookup(segment string) (provider.Method, bool) {
	const ext = ".html"
	if len(segment) <= len(ext) || !strings.EqualFold(segment[len(segment)-len(ext):], ext) {
		return provider.Method{}, false
	}
	s, ok := a.specs[strings.ToLower(segment[:len(segment)-len(ext)])]
	return s.Method, ok
}

// call is a decoded request: its method and its parameters, each given once.
type call struct {
	m provider.Method
	f map[string]string
}

func (c *call) Method() provider.Method { return c.m }
func (c *call) PlayerID() string        { return c.f["userId"] }

// Decode parses the form, verifies the hash and checks the parameters.
// Order matters: nothing about the request is believed before the hash
// matched, so an unsigned request learns only that its hash is wrong.
func (a *Adapter) Decode(m provider.Method, req provider.Request) (provider.Call, *provider.Reply) {
	if req.Oversize {
		return nil, ptr(failure(codeBadParameters, "the request body is too large"))
	}
	values, err := url.ParseQuery(string(req.Body))
	if err != nil {
		return nil, ptr(failure(codeBadParameters, "the body is not a valid form (application/x-www-form-urlencoded)"))
	}
	if !Verify(values, a.cfg.Secret) {
		return nil, ptr(failure(codeBadHash, "invalid hash"))
	}
	f := make(map[string]string, len(values))
	for k, v := range values {
		if len(v) != 1 {
			return nil, ptr(failure(codeBadParameters, fmt.Sprintf("parameter %s is given more than once", clip(k))))
		}
		f[k] = v[0]
	}
	s := a.specs[strings.ToLower(m.Name)]
	for _, name := range s.required {
		if _, ok := f[name]; !ok {
			return nil, ptr(failure(codeBadParameters, "missing parameter "+name))
		}
	}
	if !strings.EqualFold(f["providerId"], a.cfg.ProviderID) {
		return nil, ptr(failure(codeBadParameters, "unknown providerId"))
	}
	if _, ok := f["userId"]; ok && !wallet.ValidID(f["userId"]) {
		// walletd's player ids are 1–128 characters of [A-Za-z0-9._:@-]:
		// any other userId cannot name a player.
		return nil, ptr(failure(codePlayerNotFound, "player not found"))
	}
	return &call{m: s.Method, f: f}, nil
}

// Refuse answers a call the edge refused (a rate limit).
func (a *Adapter) Refuse(ctx context.Context, c provider.Call, err error) provider.Reply {
	return a.fail(ctx, c.(*call), err)
}

// Execute performs one decoded call.
func (a *Adapter) Execute(ctx context.Context, pc provider.Call) provider.Reply {
	c := pc.(*call)
	switch c.m.Name {
	case mAuthenticate:
		return a.authenticate(ctx, c)
	case mBalance:
		return a.balance(ctx, c)
	case mBet:
		return a.bet(ctx, c)
	case mResult:
		return a.result(ctx, c)
	case mBonusWin:
		return a.bonusWin(ctx, c)
	case mJackpotWin:
		return a.money(ctx, c, wallet.Command{Kind: wallet.KindWin, TxID: a.keys.ID(keyJackpot, c.f["reference"]), Amount: c.f["amount"]}, nil)
	case mPromoWin:
		return a.money(ctx, c, wallet.Command{
			Kind: wallet.KindWin, TxID: a.keys.ID(keyPromo, c.f["reference"]), Amount: c.f["amount"],
			Currency: strings.ToUpper(c.f["currency"]),
		}, nil)
	case mRefund:
		return a.refund(ctx, c)
	case mEndRound:
		return a.endRound(ctx, c)
	case mAdjustment:
		return a.adjustment(ctx, c)
	case mGetBalancePerGame:
		return a.balancePerGame(ctx, c)
	}
	return failure(codeBadParameters, "unknown method")
}

func (a *Adapter) authenticate(ctx context.Context, c *call) provider.Reply {
	s, r := a.session(ctx, c, c.f["token"])
	if r != nil {
		return *r
	}
	wallethttp.SetPlayerID(ctx, s.PlayerID)
	v, err := a.deps.Wallets.Get(ctx, s.PlayerID)
	if err != nil {
		return a.fail(ctx, c, err)
	}
	rep := a.balanceReply(v.Currency, v.Balance, 0)
	rep.UserID = s.PlayerID
	rep.Token = c.f["token"]
	return ok(rep)
}

func (a *Adapter) balance(ctx context.Context, c *call) provider.Reply {
	v, err := a.deps.Wallets.Get(ctx, c.f["userId"])
	if err != nil {
		return a.fail(ctx, c, err)
	}
	return ok(a.balanceReply(v.Currency, v.Balance, 0))
}

func (a *Adapter) bet(ctx context.Context, c *call) provider.Reply {
	// The token is optional on bet; when sent it must be a live session of
	// this player in this instance (and game, if the launch named one), so
	// an ended or stolen session cannot stake money.
	if tok := c.f["token"]; tok != "" {
		s, r := a.session(ctx, c, tok)
		if r != nil {
			return *r
		}
		if s.PlayerID != c.f["userId"] {
			return failure(codeTokenInvalid, "the token belongs to another player")
		}
	}
	cmd := wallet.Command{
		Kind: wallet.KindBet, TxID: a.keys.ID(keyBet, c.f["reference"]), Amount: c.f["amount"],
		RoundID: a.keys.ID(keyRound, c.f["roundId"]), GameID: a.keys.ID(keyGame, c.f["gameId"]),
	}
	return a.money(ctx, c, cmd, func(r *reply) { r.UsedPromo = r.Bonus })
}

func (a *Adapter) result(ctx context.Context, c *call) provider.Reply {
	// The win names the round, so it settles every open bet of it (a
	// round may hold several bets, each with its own reference).
	win := wallet.Command{
		Kind: wallet.KindWin, TxID: a.keys.ID(keyWin, c.f["reference"]), Amount: c.f["amount"],
		RoundID: a.keys.ID(keyRound, c.f["roundId"]),
	}
	cur, res, err := a.apply(ctx, c, win)
	if err != nil {
		return a.fail(ctx, c, err)
	}
	if promo := c.f["promoWinAmount"]; promo != "" {
		// A second credit with a key of its own: a retry of the result
		// finds both applied and pays neither again; if only the first
		// was applied (an outage in between), the retry pays the second.
		ref := c.f["promoWinReference"]
		if ref == "" {
			ref = c.f["reference"]
		}
		p, err := a.deps.Wallets.Apply(ctx, c.f["userId"], wallet.Command{
			Kind: wallet.KindWin, TxID: a.keys.ID(keyResultPromo, ref), Amount: promo, ExtraZeros: true,
		})
		if err != nil {
			return a.fail(ctx, c, err)
		}
		res.Balance = p.Balance
	}
	return ok(a.balanceReply(cur, res.Balance, res.Version))
}

func (a *Adapter) bonusWin(ctx context.Context, c *call) provider.Reply {
	ref := c.f["reference"]
	cmd := wallet.Command{Kind: wallet.KindWin, TxID: a.keys.ID(keyBonus, ref), Amount: c.f["amount"]}
	if a.cfg.BonusWin == BonusWinInformational {
		// Journaled as a zero win under a key of its own: it moves no money
		// yet has a stable transactionId, and the journal shows that the
		// notice came (and under which policy).
		cmd = wallet.Command{Kind: wallet.KindWin, TxID: a.keys.ID(keyBonusInfo, ref), Amount: "0"}
	}
	return a.money(ctx, c, cmd, nil)
}

func (a *Adapter) refund(ctx context.Context, c *call) provider.Reply {
	ref := c.f["reference"]
	cmd := wallet.Command{Kind: wallet.KindRollback, TxID: a.keys.ID(keyRefund, ref), Ref: a.keys.ID(keyBet, ref)}
	// Every success outcome answers success: applied (refunded),
	// tombstoned (the bet is unknown: nothing moves and a late bet is
	// refused with 120), duplicate (the same transactionId again).
	return a.money(ctx, c, cmd, func(r *reply) { r.Currency, r.Cash, r.Bonus = "", "", "" })
}

func (a *Adapter) endRound(ctx context.Context, c *call) provider.Reply {
	// A zero win naming the round settles every bet of it still open; its
	// key is the round's, so a repeated endRound is a duplicate and answers
	// success again. The request's `win` is information only.
	cmd := wallet.Command{
		Kind: wallet.KindWin, TxID: a.keys.ID(keyEnd, c.f["roundId"]), Amount: "0",
		RoundID: a.keys.ID(keyRound, c.f["roundId"]),
	}
	return a.money(ctx, c, cmd, func(r *reply) { r.TransactionID, r.Currency = 0, "" })
}

func (a *Adapter) adjustment(ctx context.Context, c *call) provider.Reply {
	// A negative amount takes money back: a withdrawal (not a bet, so it
	// opens nothing in the round and no round win can settle it); zero or
	// positive is a plain credit (no round, so it settles no bet either).
	// The sign is stripped as text; the wallet parses the amount.
	cmd := wallet.Command{Kind: wallet.KindWin, TxID: a.keys.ID(keyAdjust, c.f["reference"]), Amount: c.f["amount"]}
	if rest, neg := strings.CutPrefix(cmd.Amount, "-"); neg {
		cmd.Kind, cmd.Amount = wallet.KindWithdraw, rest
	}
	return a.money(ctx, c, cmd, nil)
}

func (a *Adapter) balancePerGame(ctx context.Context, c *call) provider.Reply {
	v, err := a.deps.Wallets.Get(ctx, c.f["userId"])
	if err != nil {
		return a.fail(ctx, c, err)
	}
	// One wallet per player: every game sees the same balance.
	games := []gameBalance{}
	for _, g := range strings.Split(c.f["gameIdList"], ",") {
		if g = strings.TrimSpace(g); g != "" {
			b := a.balanceReply(v.Currency, v.Balance, 0)
			games = append(games, gameBalance{GameID: g, Cash: b.Cash, Bonus: b.Bonus})
		}
	}
	return ok(reply{GamesBalances: games})
}

// money applies one command and answers with the transaction's id and the
// balance after it; edit adjusts the reply to the method's fields.
func (a *Adapter) money(ctx context.Context, c *call, cmd wallet.Command, edit func(*reply)) provider.Reply {
	cur, res, err := a.apply(ctx, c, cmd)
	if err != nil {
		return a.fail(ctx, c, err)
	}
	r := a.balanceReply(cur, res.Balance, res.Version)
	if edit != nil {
		edit(&r)
	}
	return ok(r)
}

// apply applies cmd to the call's wallet and returns its currency too (from
// the Result: a successful answer carries it).
// Amounts come unpadded ("5.6", "1.0"), even for a JPY wallet ("100.0"):
// ExtraZeros lets the wallet accept trailing zeros beyond its currency's
// digits, never anything it would have to round.
func (a *Adapter) apply(ctx context.Context, c *call, cmd wallet.Command) (wallet.Currency, wallet.Result, error) {
	cmd.ExtraZeros = true
	res, err := a.deps.Wallets.Apply(ctx, c.f["userId"], cmd)
	return res.Currency, res, err
}

// session returns the live session of token for this instance (and the
// call's game, when both name one), or the reply refusing it.
func (a *Adapter) session(ctx context.Context, c *call, token string) (sessions.Session, *provider.Reply) {
	s, err := a.deps.Sessions.Lookup(ctx, token)
	switch {
	case errors.Is(err, sessions.ErrNotFound):
		return s, ptr(failure(codeTokenInvalid, "token invalid or expired"))
	case err != nil:
		wallethttp.RequestLogger(ctx).Warn("pragmatic: session store failed", "instance", a.name, "method", c.m.Name, "err", err)
		return s, ptr(failure(codeRetry, "internal error, retry"))
	case s.Provider != a.name:
		return s, ptr(failure(codeTokenInvalid, "token invalid or expired"))
	case s.GameID != "" && c.f["gameId"] != "" && s.GameID != c.f["gameId"]:
		return s, ptr(failure(codeTokenInvalid, "the token was issued for another game"))
	}
	return s, nil
}

// fail maps a wallet error to Pragmatic's codes. Business refusals keep
// the wallet's message; anything else is "retry" (100), never a business
// code: a storage outage must not look like insufficient funds.
func (a *Adapter) fail(ctx context.Context, c *call, err error) provider.Reply {
	msg := wallet.ErrorMessage(err)
	switch wallet.ErrorCode(err) {
	case wallet.CodeInsufficientFunds:
		return failure(codeInsufficient, "insufficient balance")
	case wallet.CodeWalletNotFound:
		return failure(codePlayerNotFound, "player not found")
	case wallet.CodeBadRequest, wallet.CodeInvalidAmount, wallet.CodeCurrencyMismatch:
		return failure(codeBadParameters, msg)
	case wallet.CodeTxConflict:
		return failure(codeBadParameters, "reference already used for a different transaction: "+msg)
	case wallet.CodeBetRolledBack, wallet.CodeBetAlreadySettled, wallet.CodeBetNotFound:
		return failure(codeNoRetry, msg)
	case wallet.CodeRateLimited:
		if c.m.Class == provider.ClassGameplay {
			return failure(codeBetLimit, "bet limit reached: too many requests, slow down")
		}
		return failure(codeRetry, "too many requests, retry later")
	}
	wallethttp.RequestLogger(ctx).Warn("pragmatic: wallet call failed", "instance", a.name, "method", c.m.Name, "err", err)
	return failure(codeRetry, "internal error, retry")
}

// reply is every field a Pragmatic reply may carry; each method fills its own.
type reply struct {
	UserID        string          `json:"userId,omitempty"`
	TransactionID uint64          `json:"transactionId,omitempty"` // journal sequences start at 1
	Currency      string          `json:"currency,omitempty"`
	Cash          provider.Number `json:"cash,omitempty"`
	Bonus         provider.Number `json:"bonus,omitempty"`
	UsedPromo     provider.Number `json:"usedPromo,omitempty"`
	Token         string          `json:"token,omitempty"`
	GamesBalances []gameBalance   `json:"gamesBalances,omitempty"`
	Error         int             `json:"error"`
	Description   string          `json:"description"`
}

type gameBalance struct {
	GameID string          `json:"gameID"`
	Cash   provider.Number `json:"cash"`
	Bonus  provider.Number `json:"bonus"`
}

// balanceReply fills currency, cash and bonus. Money goes out as JSON
// numbers with 2 decimals, or with the currency's own when it has more
// (KWD 12.345): never rounded, so the game never shows money the player
// does not have. walletd keeps no bonus money: bonus is always zero.
func (a *Adapter) balanceReply(cur wallet.Currency, balance wallet.Amount, version uint64) reply {
	return reply{
		TransactionID: version,
		Currency:      cur.Code,
		Cash:          provider.Money(balance, 2),
		Bonus:         provider.Money(wallet.Zero(cur), 2),
	}
}

func ok(r reply) provider.Reply {
	r.Error, r.Description = codeOK, "Success"
	return provider.Reply{Status: http.StatusOK, Body: r, Code: "0"}
}

// failure is an error reply: always HTTP 200, as Pragmatic requires.
func failure(code int, description string) provider.Reply {
	return provider.Reply{Status: http.StatusOK, Body: reply{Error: code, Description: description}, Code: fmt.Sprint(code)}
}

func ptr[T any](v T) *T { return &v }

// clip shortens caller-supplied text quoted in replies.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
