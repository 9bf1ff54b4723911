package http

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/wallet"
)

// History page sizes.
const (
	defaultHistoryLimit = 50
	maxHistoryLimit     = 1000
)

// walletJSON is a wallet in replies.
type walletJSON struct {
	PlayerID string `json:"player_id"`
	Currency string `json:"currency"`
	Balance  string `json:"balance"`
	Version  uint64 `json:"version"`
}

func toWalletJSON(v actors.View) walletJSON {
	return walletJSON{PlayerID: v.PlayerID, Currency: v.Currency.Code, Balance: v.Balance.String(), Version: v.Version}
}

// txResultJSON is the reply to a money request.
type txResultJSON struct {
	TxID      string      `json:"tx_id"`
	PlayerID  string      `json:"player_id"`
	Kind      wallet.Kind `json:"kind"`
	Amount    string      `json:"amount"`
	Balance   string      `json:"balance"`
	Version   uint64      `json:"version"`
	Duplicate bool        `json:"duplicate"`
}

// appendJSON appends t as encoding/json would marshal it, without
// reflection: it is the reply to every money call. ok is false when a string
// holds a byte encoding/json would escape; the caller then marshals.
func (t *txResultJSON) appendJSON(b []byte) (_ []byte, ok bool) {
	for _, s := range [...]string{t.TxID, t.PlayerID, string(t.Kind), t.Amount, t.Balance} {
		if !plainJSON(s) {
			return b, false
		}
	}
	b = append(b, `{"tx_id":"`...)
	b = append(b, t.TxID...)
	b = append(b, `","player_id":"`...)
	b = append(b, t.PlayerID...)
	b = append(b, `","kind":"`...)
	b = append(b, t.Kind...)
	b = append(b, `","amount":"`...)
	b = append(b, t.Amount...)
	b = append(b, `","balance":"`...)
	b = append(b, t.Balance...)
	b = append(b, `","version":`...)
	b = strconv.AppendUint(b, t.Version, 10)
	b = append(b, `,"duplicate":`...)
	b = strconv.AppendBool(b, t.Duplicate)
	return append(b, '}'), true
}

// plainJSON reports whether s goes into a JSON string as it is: printable
// ASCII that encoding/json does not escape (it escapes <, > and &).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// txJSON is one transaction of the history.
type txJSON struct {
	Seq          uint64      `json:"seq"`
	TxID         string      `json:"tx_id"`
	Kind         wallet.Kind `json:"kind"`
	Amount       string      `json:"amount"`
	BalanceAfter string      `json:"balance_after"`
	RoundID      string      `json:"round_id"`
	RefTxID      string      `json:"ref_tx_id"`
	CreatedAt    string      `json:"created_at"`
}

type historyJSON struct {
	Transactions []txJSON `json:"transactions"`
}

// walletCtx is the context of one call of the wallets: the request's values
// but not its cancellation (a client that goes away must never cancel a money
// write halfway), bounded by cfg.RequestTimeout.
func (s *Server) walletCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.RequestTimeout)
}

// pathPlayer returns the valid :player_id of the route.
func pathPlayer(r *http.Request) (string, error) {
	id := httprouter.ParamsFromContext(r.Context()).ByName("player_id")
	if !wallet.ValidID(id) {
		return "", badRequest("player_id must be 1-128 characters of [A-Za-z0-9._:@-]")
	}
	SetPlayerID(r.Context(), id)
	return id, nil
}

// POST /v1/wallets {"player_id","currency"}
func (s *Server) handleCreateWallet(w http.ResponseWriter, r *http.Request) {
	var req struct {
		PlayerID string `json:"player_id"`
		Currency string `json:"currency"`
	}
	if err := s.decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := checkID("player_id", req.PlayerID); err != nil {
		s.writeError(w, r, err)
		return
	}
	SetPlayerID(r.Context(), req.PlayerID)
	cur, err := lookupCurrency(req.Currency)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx, cancel := s.walletCtx(r)
	defer cancel()
	view, created, err := s.wallets.Open(ctx, req.PlayerID, cur)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", "/v1/wallets/"+url.PathEscape(req.PlayerID))
	}
	writeJSON(w, status, toWalletJSON(view))
}

// GET /v1/wallets/:player_id
func (s *Server) handleGetWallet(w http.ResponseWriter, r *http.Request) {
	id, err := pathPlayer(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx, cancel := s.walletCtx(r)
	defer cancel()
	view, err := s.wallets.Get(ctx, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toWalletJSON(view))
}

// fundsRequest is the body of a deposit or a withdrawal. Each endpoint
// decodes into a struct of only its own fields, so any other is refused.
type fundsRequest struct {
	TxID   string      `json:"tx_id"`
	Amount amountField `json:"amount"`
}

func (r *fundsRequest) flatFields(dst []flatField) []flatField {
	return append(dst, flatField{name: "tx_id", str: &r.TxID}, flatField{name: "amount", amount: &r.Amount})
}

type betRequest struct {
	TxID     string      `json:"tx_id"`
	RoundID  string      `json:"round_id"`
	GameID   string      `json:"game_id"`
	Amount   amountField `json:"amount"`
	Currency string      `json:"currency"`
}

func (r *betRequest) flatFields(dst []flatField) []flatField {
	return append(dst, flatField{name: "tx_id", str: &r.TxID}, flatField{name: "round_id", str: &r.RoundID},
		flatField{name: "game_id", str: &r.GameID}, flatField{name: "amount", amount: &r.Amount},
		flatField{name: "currency", str: &r.Currency})
}

type winRequest struct {
	TxID     string      `json:"tx_id"`
	Amount   amountField `json:"amount"`
	RoundID  string      `json:"round_id"`
	BetTxID  string      `json:"bet_tx_id"`
	Currency string      `json:"currency"`
}

func (r *winRequest) flatFields(dst []flatField) []flatField {
	return append(dst, flatField{name: "tx_id", str: &r.TxID}, flatField{name: "amount", amount: &r.Amount},
		flatField{name: "round_id", str: &r.RoundID}, flatField{name: "bet_tx_id", str: &r.BetTxID},
		flatField{name: "currency", str: &r.Currency})
}

type rollbackRequest struct {
	TxID    string `json:"tx_id"`
	RefTxID string `json:"ref_tx_id"`
}

func (r *rollbackRequest) flatFields(dst []flatField) []flatField {
	return append(dst, flatField{name: "tx_id", str: &r.TxID}, flatField{name: "ref_tx_id", str: &r.RefTxID})
}

// POST /v1/wallets/:player_id/deposit {"tx_id","amount"}
func (s *Server) handleDeposit(w http.ResponseWriter, r *http.Request) {
	s.handleFunds(w, r, wallet.KindDeposit)
}

// POST /v1/wallets/:player_id/withdraw {"tx_id","amount"}
func (s *Server) handleWithdraw(w http.ResponseWriter, r *http.Request) {
	s.handleFunds(w, r, wallet.KindWithdraw)
}

func (s *Server) handleFunds(w http.ResponseWriter, r *http.Request, kind wallet.Kind) {
	s.handleMoney(w, r, func() (wallet.Command, error) {
		var req fundsRequest
		if err := s.decode(w, r, &req); err != nil {
			return wallet.Command{}, err
		}
		if err := firstErr(s.checkTxID(req.TxID), checkAmount(req.Amount)); err != nil {
			return wallet.Command{}, err
		}
		return wallet.Command{Kind: kind, TxID: req.TxID, Amount: req.Amount.text}, nil
	})
}

// POST /v1/wallets/:player_id/bet {"tx_id","round_id","game_id","amount"} (+ "currency")
func (s *Server) handleBet(w http.ResponseWriter, r *http.Request) {
	s.handleMoney(w, r, func() (wallet.Command, error) {
		var req betRequest
		if err := s.decode(w, r, &req); err != nil {
			return wallet.Command{}, err
		}
		if err := firstErr(
			s.checkTxID(req.TxID),
			checkID("round_id", req.RoundID),
			checkID("game_id", req.GameID),
			checkAmount(req.Amount),
			checkOptionalCurrency(req.Currency),
		); err != nil {
			return wallet.Command{}, err
		}
		return wallet.Command{Kind: wallet.KindBet, TxID: req.TxID, RoundID: req.RoundID, GameID: req.GameID,
			Amount: req.Amount.text, Currency: req.Currency}, nil
	})
}

// POST /v1/wallets/:player_id/win {"tx_id","amount"} (+ "round_id", "bet_tx_id", "currency")
func (s *Server) handleWin(w http.ResponseWriter, r *http.Request) {
	s.handleMoney(w, r, func() (wallet.Command, error) {
		var req winRequest
		if err := s.decode(w, r, &req); err != nil {
			return wallet.Command{}, err
		}
		if err := firstErr(
			s.checkTxID(req.TxID),
			checkAmount(req.Amount),
			checkOptionalID("round_id", req.RoundID),
			checkOptionalID("bet_tx_id", req.BetTxID),
			checkOptionalCurrency(req.Currency),
		); err != nil {
			return wallet.Command{}, err
		}
		return wallet.Command{Kind: wallet.KindWin, TxID: req.TxID, Amount: req.Amount.text, RoundID: req.RoundID,
			Ref: req.BetTxID, Currency: req.Currency}, nil
	})
}

// POST /v1/wallets/:player_id/rollback {"tx_id","ref_tx_id"}
func (s *Server) handleRollback(w http.ResponseWriter, r *http.Request) {
	s.handleMoney(w, r, func() (wallet.Command, error) {
		var req rollbackRequest
		if err := s.decode(w, r, &req); err != nil {
			return wallet.Command{}, err
		}
		if err := firstErr(s.checkTxID(req.TxID), checkID("ref_tx_id", req.RefTxID)); err != nil {
			return wallet.Command{}, err
		}
		return wallet.Command{Kind: wallet.KindRollback, TxID: req.TxID, Ref: req.RefTxID}, nil
	})
}

// handleMoney validates the path, builds the command from the body with
// build, applies it and answers the tx result.
func (s *Server) handleMoney(w http.ResponseWriter, r *http.Request, build func() (wallet.Command, error)) {
	id, err := pathPlayer(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	cmd, err := build()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx, cancel := s.walletCtx(r)
	defer cancel()
	res, err := s.wallets.Apply(ctx, id, cmd)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	txID := res.TxID
	if txID == "" {
		txID = cmd.TxID
	}
	kind := res.Kind
	if kind == "" {
		kind = cmd.Kind
	}
	out := txResultJSON{
		TxID: txID, PlayerID: id, Kind: kind, Amount: res.Amount.String(), Balance: res.Balance.String(),
		Version: res.Version, Duplicate: res.Duplicate,
	}
	if b, ok := out.appendJSON(make([]byte, 0, 256)); ok {
		writeJSONBytes(w, http.StatusOK, b)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// GET /v1/wallets/:player_id/transactions?limit=N&before=SEQ
func (s *Server) handleTransactions(w http.ResponseWriter, r *http.Request) {
	id, err := pathPlayer(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit, before, err := historyParams(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx, cancel := s.walletCtx(r)
	defer cancel()
	evs, err := s.wallets.History(ctx, id, before, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := historyJSON{Transactions: make([]txJSON, 0, len(evs))}
	for _, ev := range evs {
		out.Transactions = append(out.Transactions, txJSON{
			Seq: ev.Seq, TxID: ev.TxID, Kind: ev.Kind, Amount: ev.Amount.String(),
			BalanceAfter: ev.BalanceAfter.String(), RoundID: ev.RoundID, RefTxID: ev.Ref,
			CreatedAt: ev.At.UTC().Format(time.RFC3339Nano),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// historyParams parses limit (1..1000, default 50) and before (a positive
// sequence; absent: from the newest, 0 for the wallets).
func historyParams(q url.Values) (limit int, before uint64, err error) {
	limit = defaultHistoryLimit
	if q.Has("limit") {
		n, err := strconv.ParseUint(q.Get("limit"), 10, 32)
		if err != nil || n < 1 || n > maxHistoryLimit {
			return 0, 0, badRequest("limit must be an integer from 1 to %d", maxHistoryLimit)
		}
		limit = int(n)
	}
	if q.Has("before") {
		n, err := strconv.ParseUint(q.Get("before"), 10, 64)
		if err != nil || n < 1 {
			return 0, 0, badRequest("before must be a positive integer (a transaction's seq)")
		}
		before = n
	}
	return limit, before, nil
}
