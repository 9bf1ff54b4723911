package walletpb

import (
	"fmt"
	"strings"
	"time"

	"github.com/walletd/walletd/wallet"
)

// ApplyCall builds the call of one money command.
func ApplyCall(playerID string, cmd wallet.Command, requestID string) *WalletCall {
	return &WalletCall{
		Op: Op_OP_APPLY, PlayerId: playerID, RequestId: requestID,
		TxId: cmd.TxID, Kind: string(cmd.Kind), Amount: cmd.Amount, ExtraZeros: cmd.ExtraZeros,
		RoundId: cmd.RoundID, GameId: cmd.GameID, Ref: cmd.Ref, Currency: cmd.Currency,
	}
}

// OpenCall builds the call that opens a wallet in currency c.
func OpenCall(playerID string, c wallet.Currency, requestID string) *WalletCall {
	return &WalletCall{Op: Op_OP_OPEN, PlayerId: playerID, RequestId: requestID, Currency: c.Code, CurrencyMinor: c.Minor}
}

// GetCall builds the call that reads a wallet.
func GetCall(playerID string, requestID string) *WalletCall {
	return &WalletCall{Op: Op_OP_GET, PlayerId: playerID, RequestId: requestID}
}

// Command is the money command of an apply call.
func (c *WalletCall) Command() wallet.Command {
	return wallet.Command{
		Kind: wallet.Kind(c.GetKind()), TxID: c.GetTxId(), Amount: c.GetAmount(), ExtraZeros: c.GetExtraZeros(),
		RoundID: c.GetRoundId(), GameID: c.GetGameId(), Ref: c.GetRef(), Currency: c.GetCurrency(),
	}
}

// OpenCurrency is the currency of an open call.
func (c *WalletCall) OpenCurrency() wallet.Currency {
	return wallet.Currency{Code: c.GetCurrency(), Minor: c.GetCurrencyMinor()}
}

// SetError records err: its code and message if it is a *wallet.Error,
// INTERNAL otherwise (internals never cross the wire, as at the HTTP edge).
func (r *WalletReply) SetError(err error) {
	if err == nil {
		return
	}
	r.ErrorCode = string(wallet.ErrorCode(err))
	r.ErrorMessage = wallet.ErrorMessage(err)
}

// Err returns the reply's error as a *wallet.Error, or nil.
func (r *WalletReply) Err() error {
	if r.GetErrorCode() == "" {
		return nil
	}
	return &wallet.Error{Code: wallet.Code(r.GetErrorCode()), Message: r.GetErrorMessage()}
}

// SetView records the wallet view of an open or get.
func (r *WalletReply) SetView(playerID string, c wallet.Currency, balance wallet.Amount, version uint64) {
	r.PlayerId, r.Currency, r.CurrencyMinor = playerID, c.Code, c.Minor
	r.Balance, r.Version = balance.String(), version
}

// View returns the fields SetView recorded.
func (r *WalletReply) View() (playerID string, c wallet.Currency, balance wallet.Amount, version uint64, err error) {
	balance, err = ParseAmount(r.GetBalance())
	return r.GetPlayerId(), wallet.Currency{Code: r.GetCurrency(), Minor: r.GetCurrencyMinor()}, balance, r.GetVersion(), err
}

// SetResult records the result of an apply.
func (r *WalletReply) SetResult(res wallet.Result) {
	r.TxId, r.Kind, r.Amount = res.TxID, string(res.Kind), res.Amount.String()
	r.ResultBalance, r.ResultVersion = res.Balance.String(), res.Version
	r.Duplicate, r.Outcome, r.Settled = res.Duplicate, string(res.Outcome), res.Settled
	r.Currency, r.CurrencyMinor = res.Currency.Code, res.Currency.Minor // an apply reply has no view
	if !res.At.IsZero() {
		r.AtUnixNano = res.At.UnixNano()
	}
}

// Result returns the result SetResult recorded.
func (r *WalletReply) Result() (wallet.Result, error) {
	amount, err := ParseAmount(r.GetAmount())
	if err != nil {
		return wallet.Result{}, err
	}
	balance, err := ParseAmount(r.GetResultBalance())
	if err != nil {
		return wallet.Result{}, err
	}
	res := wallet.Result{
		TxID: r.GetTxId(), Kind: wallet.Kind(r.GetKind()), Amount: amount, Balance: balance,
		Version: r.GetResultVersion(), Duplicate: r.GetDuplicate(), Outcome: wallet.Outcome(r.GetOutcome()),
		Settled: r.GetSettled(), Currency: wallet.Currency{Code: r.GetCurrency(), Minor: r.GetCurrencyMinor()},
	}
	if n := r.GetAtUnixNano(); n != 0 {
		res.At = time.Unix(0, n).UTC()
	}
	return res, nil
}

// ParseAmount reads an amount written by wallet.Amount.String: its digits
// after the point are its exponent, so no currency is needed and the value
// and its scale come back exactly. "" (a reply without that field) is zero.
func ParseAmount(s string) (wallet.Amount, error) {
	if s == "" {
		return wallet.Amount{}, nil
	}
	_, frac, _ := strings.Cut(s, ".")
	a, err := wallet.ParseStored(s, wallet.Currency{Minor: int32(len(frac))})
	if err != nil {
		return wallet.Amount{}, fmt.Errorf("walletpb: %w", err)
	}
	return a, nil
}
