package wallet

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error code. The values are part of the
// public HTTP contract (wallet-api.md) and never change.
type Code string

// Error codes of the contract. Each maps to exactly one HTTP status in the
// http package; adapters map them to their providers' own codes.
const (
	CodeBadRequest        Code = "BAD_REQUEST"
	CodeInvalidAmount     Code = "INVALID_AMOUNT"
	CodeUnauthorized      Code = "UNAUTHORIZED"
	CodeWalletNotFound    Code = "WALLET_NOT_FOUND"
	CodeBetNotFound       Code = "BET_NOT_FOUND"
	CodeTxConflict        Code = "TX_CONFLICT"
	CodeBetRolledBack     Code = "BET_ROLLED_BACK"
	CodeBetAlreadySettled Code = "BET_ALREADY_SETTLED"
	CodeCurrencyMismatch  Code = "CURRENCY_MISMATCH"
	CodeInsufficientFunds Code = "INSUFFICIENT_FUNDS"
	CodeRateLimited       Code = "RATE_LIMITED"
	CodeUnavailable       Code = "UNAVAILABLE"
	CodeInternal          Code = "INTERNAL"
)

// Error is the one error type of the domain: a code for machines and a
// message for people. Anything that is not an *Error is an internal error at
// the edge, so internals never leak to callers.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf builds an *Error.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, CodeInternal for errors that are not
// domain errors, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the human-readable message of a domain error, or a
// generic text for anything else.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// IsBusiness reports whether err is a rule of the wallet refusing a request
// (as opposed to an outage or a malformed request): the outcome is final and
// retrying the same request gives the same answer until the wallet changes.
func IsBusiness(err error) bool {
	switch ErrorCode(err) {
	case CodeWalletNotFound, CodeBetNotFound, CodeTxConflict, CodeBetRolledBack,
		CodeBetAlreadySettled, CodeCurrencyMismatch, CodeInsufficientFunds:
		return true
	}
	return false
}
