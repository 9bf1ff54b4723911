package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind of a money operation, as the generic API names it.
type Kind string

const (
	KindDeposit  Kind = "deposit"
	KindBet      Kind = "bet"
	KindWin      Kind = "win"
	KindRollback Kind = "rollback"
)

// credits reports whether the kind adds its amount to the balance.
func (k Kind) credits() bool { return k != KindBet && k != "withdraw" }

// Op is one money request. Amounts are in cents (the harness uses EUR only,
// so every amount is exact integer arithmetic).
type Op struct {
	Wallet  string
	Kind    Kind
	TxID    string
	RoundID string // bet
	Ref     string // win: bet_tx_id; rollback: ref_tx_id
	Amount  int64  // cents; for a rollback, the refunded bet's amount
	Retry   bool   // a resend of an earlier request with the same tx_id
}

// Reply is what a protocol learnt from a money request.
type Reply struct {
	Status int    // HTTP status
	Code   string // error code, when the request was refused
	// The transaction's journal version and the balance after it, when the
	// wire format says (the generic API always does).
	Version    uint64
	HasVersion bool
	Balance    int64
	HasBalance bool
	Duplicate  bool
}

// OK reports whether the request succeeded.
func (r Reply) OK() bool { return r.Status == http.StatusOK && r.Code == "" }

// Protocol sends money operations in one wire format.
type Protocol interface {
	// Name is "generic", "pragmatic" or "evolution".
	Name() string
	// Do sends op. An error means the outcome is unknown (transport failure,
	// timeout, unreadable reply): the operation may or may not have applied.
	Do(ctx context.Context, op Op) (Reply, error)
}

// Client speaks walletd's generic operator API (wallet-api.md). It is
// safe for concurrent use; every virtual user shares its keep-alive pool.
type Client struct {
	raw *rawClient
}

// NewClient returns a client of the server at base (http://host:port) with
// the operator key. conns is how many connections it keeps alive: at least
// the number of concurrent users, or every request beyond it would open a
// new connection and the benchmark would measure TCP handshakes.
func NewClient(base, apiKey string, conns int) *Client {
	conns = max(conns, 8)
	return &Client{raw: newRawClient(strings.TrimRight(base, "/"), "Bearer "+apiKey, conns*2)}
}

// Close drops the idle connections.
func (c *Client) Close() { c.raw.closeIdle() }

// Name implements Protocol.
func (c *Client) Name() string { return "generic" }

// Do implements Protocol with the generic API's money endpoints.
func (c *Client) Do(ctx context.Context, op Op) (Reply, error) {
	body := make([]byte, 0, 160)
	body = append(body, `{"tx_id":"`...)
	body = append(body, op.TxID...)
	switch op.Kind {
	case KindBet:
		body = append(body, `","round_id":"`...)
		body = append(body, op.RoundID...)
		body = append(body, `","game_id":"bench","amount":"`...)
		body = appendCents(body, op.Amount)
	case KindWin, KindDeposit:
		body = append(body, `","amount":"`...)
		body = appendCents(body, op.Amount)
		if op.Ref != "" {
			body = append(body, `","bet_tx_id":"`...)
			body = append(body, op.Ref...)
		}
	case KindRollback:
		body = append(body, `","ref_tx_id":"`...)
		body = append(body, op.Ref...)
	default:
		return Reply{}, fmt.Errorf("bench: unknown kind %q", op.Kind)
	}
	body = append(body, `"}`...)

	var out moneyReply
	status, err := c.raw.do(ctx, http.MethodPost, "/v1/wallets/"+op.Wallet+"/"+string(op.Kind), body, func(status int, data []byte) error {
		return decodeReply(http.MethodPost, op.Wallet, op.Kind, status, data, &out)
	})
	if err != nil {
		return Reply{Status: status}, err
	}
	r := Reply{Status: status, Code: out.Error.Code}
	if status == http.StatusOK {
		if r.Balance, err = parseCents(out.Balance); err != nil {
			return r, fmt.Errorf("reply to %s %s: %w", op.Kind, op.TxID, err)
		}
		r.Version, r.HasVersion, r.HasBalance, r.Duplicate = out.Version, true, true, out.Duplicate
	} else if r.Code == "" {
		r.Code = "HTTP_" + strconv.Itoa(status)
	}
	return r, nil
}

// CreateWallet opens a EUR wallet (201, or 200 when it exists).
func (c *Client) CreateWallet(ctx context.Context, playerID string) error {
	body := []byte(`{"player_id":"` + playerID + `","currency":"EUR"}`)
	var out struct {
		Error struct{ Code string } `json:"error"`
	}
	status, err := c.call(ctx, http.MethodPost, "/v1/wallets", body, &out)
	if err != nil {
		return err
	}
	if status != http.StatusCreated && status != http.StatusOK {
		return fmt.Errorf("create wallet %s: HTTP %d %s", playerID, status, out.Error.Code)
	}
	return nil
}

// WalletState is a wallet as GET /v1/wallets/:id reports it.
type WalletState struct {
	Balance int64 // cents
	Version uint64
}

// Wallet returns a wallet's balance and version.
func (c *Client) Wallet(ctx context.Context, playerID string) (WalletState, error) {
	var out struct {
		Balance string `json:"balance"`
		Version uint64 `json:"version"`
	}
	status, err := c.call(ctx, http.MethodGet, "/v1/wallets/"+playerID, nil, &out)
	if err != nil {
		return WalletState{}, err
	}
	if status != http.StatusOK {
		return WalletState{}, fmt.Errorf("get wallet %s: HTTP %d", playerID, status)
	}
	bal, err := parseCents(out.Balance)
	return WalletState{Balance: bal, Version: out.Version}, err
}

// HistoryTx is one transaction of a wallet's history.
type HistoryTx struct {
	Seq          uint64
	TxID         string
	Kind         Kind
	Amount       int64
	BalanceAfter int64
	Ref          string
}

// History returns up to limit transactions with seq < before (0: from the
// newest), newest first.
func (c *Client) History(ctx context.Context, playerID string, before uint64, limit int) ([]HistoryTx, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if before > 0 {
		q.Set("before", strconv.FormatUint(before, 10))
	}
	var out struct {
		Transactions []struct {
			Seq          uint64 `json:"seq"`
			TxID         string `json:"tx_id"`
			Kind         Kind   `json:"kind"`
			Amount       string `json:"amount"`
			BalanceAfter string `json:"balance_after"`
			RefTxID      string `json:"ref_tx_id"`
		} `json:"transactions"`
	}
	status, err := c.call(ctx, http.MethodGet, "/v1/wallets/"+playerID+"/transactions?"+q.Encode(), nil, &out)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("history of %s: HTTP %d", playerID, status)
	}
	txs := make([]HistoryTx, len(out.Transactions))
	for i, t := range out.Transactions {
		amount, err1 := parseCents(t.Amount)
		after, err2 := parseCents(t.BalanceAfter)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("history of %s, seq %d: %w", playerID, t.Seq, err)
		}
		txs[i] = HistoryTx{Seq: t.Seq, TxID: t.TxID, Kind: t.Kind, Amount: amount, BalanceAfter: after, Ref: t.RefTxID}
	}
	return txs, nil
}

// call sends one request and decodes a JSON reply of any status into out.
// An error means no complete reply was read.
func (c *Client) call(ctx context.Context, method, path string, body []byte, out any) (int, error) {
	return c.raw.do(ctx, method, path, body, func(status int, data []byte) error {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: HTTP %d, unreadable reply %.200q: %w", method, path, status, data, err)
		}
		return nil
	})
}

// moneyReply is what Do reads from the reply to a money request.
type moneyReply struct {
	Balance   string `json:"balance"`
	Version   uint64 `json:"version"`
	Duplicate bool   `json:"duplicate"`
	Error     struct {
		Code string `json:"code"`
	} `json:"error"`
}

// decodeReply reads a money reply with scanMoneyReply, or with
// encoding/json when the scanner declines (which also words the error).
func decodeReply(method, wallet string, kind Kind, status int, data []byte, out *moneyReply) error {
	if scanMoneyReply(data, out) {
		return nil
	}
	*out = moneyReply{}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s /v1/wallets/%s/%s: HTTP %d, unreadable reply %.200q: %w", method, wallet, kind, status, data, err)
	}
	return nil
}

// scanMoneyReply parses data into out without reflection: a strict JSON
// scanner that checks the whole document and keeps the fields Do needs.
// It returns false, leaving out partly set, on malformed JSON and on
// anything it does not handle the way encoding/json would (escaped keys or
// values, keys in another case, nulls, wrong types, deep nesting).
func scanMoneyReply(data []byte, out *moneyReply) bool {
	s := jsonScan{b: data}
	s.ws()
	if !s.eat('{') {
		return false
	}
	ok := s.members(func(key []byte) bool {
		switch string(key) {
		case "balance":
			v, ok := s.plainString()
			out.Balance = string(v)
			return ok
		case "version":
			v, ok := s.uint()
			out.Version = v
			return ok
		case "duplicate":
			switch {
			case s.lit("true"):
				out.Duplicate = true
			case s.lit("false"):
				out.Duplicate = false
			default:
				return false
			}
			return true
		case "error":
			s.ws()
			if !s.eat('{') {
				return false
			}
			return s.members(func(key []byte) bool {
				if string(key) == "code" {
					v, ok := s.plainString()
					out.Error.Code = string(v)
					return ok
				}
				return !bytes.EqualFold(key, []byte("code")) && s.value(1)
			})
		}
		for _, k := range [...]string{"balance", "version", "duplicate", "error"} {
			if bytes.EqualFold(key, []byte(k)) {
				return false // encoding/json would match it
			}
		}
		return s.value(0)
	})
	s.ws()
	return ok && s.i == len(s.b)
}

// jsonScan is a strict JSON reader over b (RFC 8259).
type jsonScan struct {
	b []byte
	i int
}

func (s *jsonScan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScan) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *jsonScan) lit(l string) bool {
	if bytes.HasPrefix(s.b[s.i:], []byte(l)) {
		s.i += len(l)
		return true
	}
	return false
}

// members reads an object's members after its '{' up to its '}', calling
// member for each key (unescaped keys only) with s at the value.
func (s *jsonScan) members(member func(key []byte) bool) bool {
	s.ws()
	if s.eat('}') {
		return true
	}
	for {
		s.ws()
		key, ok := s.plainString()
		if !ok {
			return false
		}
		s.ws()
		if !s.eat(':') {
			return false
		}
		s.ws()
		if !member(key) {
			return false
		}
		s.ws()
		if s.eat('}') {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
}

// plainString reads a string without escapes, in valid UTF-8.
func (s *jsonScan) plainString() ([]byte, bool) {
	start := s.i
	if !s.str() {
		return nil, false
	}
	v := s.b[start+1 : s.i-1]
	return v, bytes.IndexByte(v, '\\') < 0 && utf8.Valid(v)
}

// str reads a string, escapes included.
func (s *jsonScan) str() bool {
	if !s.eat('"') {
		return false
	}
	for s.i < len(s.b) {
		c := s.b[s.i]
		s.i++
		switch {
		case c == '"':
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if s.i >= len(s.b) {
				return false
			}
			e := s.b[s.i]
			s.i++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if s.i+4 > len(s.b) {
					return false
				}
				for _, h := range s.b[s.i : s.i+4] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false
					}
				}
				s.i += 4
			default:
				return false
			}
		}
	}
	return false
}

// uint reads a number that is a plain unsigned integer fitting uint64.
func (s *jsonScan) uint() (uint64, bool) {
	start := s.i
	if !s.number() {
		return 0, false
	}
	v, err := strconv.ParseUint(string(s.b[start:s.i]), 10, 64)
	return v, err == nil && (s.b[start] != '0' || s.i == start+1)
}

// number reads a JSON number.
func (s *jsonScan) number() bool {
	s.eat('-')
	switch {
	case s.eat('0'):
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.eat('.') && !s.digits() {
		return false
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits reads one or more digits.
func (s *jsonScan) digits() bool {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// value reads and checks any JSON value; depth bounds the nesting.
func (s *jsonScan) value(depth int) bool {
	if depth > 32 {
		return false
	}
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.str()
	case c == '{':
		s.i++
		return s.members(func([]byte) bool { return s.value(depth + 1) })
	case c == '[':
		s.i++
		s.ws()
		if s.eat(']') {
			return true
		}
		for {
			s.ws()
			if !s.value(depth + 1) {
				return false
			}
			s.ws()
			if s.eat(']') {
				return true
			}
			if !s.eat(',') {
				return false
			}
		}
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	default:
		return s.number()
	}
}

// appendCents appends cents as a EUR decimal ("12.05").
func appendCents(b []byte, cents int64) []byte {
	if cents < 0 {
		b = append(b, '-')
		cents = -cents
	}
	b = strconv.AppendInt(b, cents/100, 10)
	b = append(b, '.')
	if c := cents % 100; c < 10 {
		b = append(b, '0', byte('0'+c))
	} else {
		b = strconv.AppendInt(b, c, 10)
	}
	return b
}

// formatCents is appendCents to a string.
func formatCents(cents int64) string { return string(appendCents(nil, cents)) }

// parseCents parses a EUR decimal with at most two fractional digits
// ("12.5", "-3.05", "7") into cents, exactly.
func parseCents(s string) (int64, error) {
	neg := strings.HasPrefix(s, "-")
	digits := strings.TrimPrefix(s, "-")
	ip, fp, _ := strings.Cut(digits, ".")
	if ip == "" || len(fp) > 2 || strings.Trim(ip+fp, "0123456789") != "" {
		return 0, fmt.Errorf("amount %q is not a EUR decimal", s)
	}
	whole, err := strconv.ParseInt(ip, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", s, err)
	}
	frac := int64(0)
	if fp != "" {
		f, err := strconv.ParseInt(fp, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("amount %q: %w", s, err)
		}
		if len(fp) == 1 {
			f *= 10
		}
		frac = f
	}
	v := whole*100 + frac
	if neg {
		v = -v
	}
	return v, nil
}
