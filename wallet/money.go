package wallet

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cockroachdb/apd/v3"
)

// Currency is an ISO 4217 currency with its number of minor-unit digits.
type Currency struct {
	Code  string
	Minor int32 // digits after the decimal point: EUR 2, JPY 0, KWD 3
}

// currencies holds the ISO 4217 codes of the markets walletd serves, with
// their minor units. Crypto and non-ISO codes are deliberately absent: a
// currency's precision is a money rule and must be exact.
var currencies = func() map[string]Currency {
	byMinor := map[int32]string{
		0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF",
		2: "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN BZD " +
			"CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD " +
			"HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK " +
			"MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB " +
			"SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD " +
			"UYU UZS VES WST XCD YER ZAR ZMW ZWG",
		3: "BHD IQD JOD KWD LYD OMR TND",
		4: "CLF UYW",
	}
	m := make(map[string]Currency)
	for minor, codes := range byMinor {
		for _, code := range strings.Fields(codes) {
			m[code] = Currency{Code: code, Minor: minor}
		}
	}
	return m
}()

// LookupCurrency returns the currency with the given ISO 4217 code (upper case).
func LookupCurrency(code string) (Currency, bool) {
	c, ok := currencies[code]
	return c, ok
}

// MaxIntegerDigits bounds the integer part of any amount (wallet-api.md).
const MaxIntegerDigits = 18

// maxBalanceDigits bounds a balance: amounts are ≤ 18 integer digits, and a
// balance may not grow past 10^21 — far beyond any real wallet, and well within
// Postgres NUMERIC and the 34-digit arithmetic context below.
const maxBalanceDigits = 21

// arith is the context of every money operation: 34 significant digits and
// traps on anything inexact, so a rounding can never pass unnoticed.
var arith = func() *apd.Context {
	c := apd.BaseContext.WithPrecision(34)
	c.Traps = apd.DefaultTraps | apd.Inexact | apd.Rounded
	return c
}()

// Amount is an exact, non-negative or negative decimal quantity of money,
// always held at its currency's exponent (EUR 12.5 is held as 1250e-2). It is
// an immutable value: operations return new amounts.
type Amount struct {
	d apd.Decimal
}

// Zero returns zero in currency c.
func Zero(c Currency) Amount {
	var a Amount
	a.d.SetFinite(0, -c.Minor)
	return a
}

// MinorUnits builds an amount from an integer count of minor units (test and
// tooling helper): MinorUnits(1250, EUR) is 12.50.
func MinorUnits(n int64, c Currency) Amount {
	var a Amount
	a.d.SetFinite(n, -c.Minor)
	return a
}

// ParseAmount parses a request amount strictly, as wallet-api.md requires: a
// plain non-negative decimal (digits, optionally a point and digits), at most
// 18 integer digits, at most the currency's minor-unit digits after the point.
// Exponents, signs, NaN, Inf, spaces and empty strings are INVALID_AMOUNT.
func ParseAmount(s string, c Currency) (Amount, error) {
	intPart, frac, err := splitPlainDecimal(s, MaxIntegerDigits)
	if err != nil {
		return Amount{}, err
	}
	if int32(len(frac)) > c.Minor {
		return Amount{}, Errorf(CodeInvalidAmount, "amount %q has more than %d decimal places for %s", s, c.Minor, c.Code)
	}
	return build(intPart, frac, c)
}

// ParseAmountExact parses a plain non-negative decimal that may carry more
// fractional digits than the currency has, as long as the extra digits are
// zeros: "10.500000" is EUR 10.50, "10.505" is refused. Provider wire formats
// (Evolution sends up to 6 decimals) need this; the value is never rounded.
func ParseAmountExact(s string, c Currency) (Amount, error) {
	intPart, frac, err := splitPlainDecimal(s, MaxIntegerDigits)
	if err != nil {
		return Amount{}, err
	}
	if int32(len(frac)) > c.Minor {
		extra := frac[c.Minor:]
		if strings.Trim(extra, "0") != "" {
			return Amount{}, Errorf(CodeInvalidAmount, "amount %q cannot be held in %s (%d decimal places)", s, c.Code, c.Minor)
		}
		frac = frac[:c.Minor]
	}
	return build(intPart, frac, c)
}

// splitPlainDecimal checks that s is a plain non-negative decimal with at most
// maxInt integer digits (leading zeros do not count) and splits it at the point.
func splitPlainDecimal(s string, maxInt int) (intPart, frac string, err error) {
	bad := func(why string) (string, string, error) {
		return "", "", Errorf(CodeInvalidAmount, "amount %q is not a plain non-negative decimal: %s", truncate(s, 40), why)
	}
	if s == "" {
		return bad("empty")
	}
	intPart, frac, hasPoint := strings.Cut(s, ".")
	if intPart == "" || (hasPoint && frac == "") {
		return bad("digits must stand on both sides of the point")
	}
	for _, part := range []string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return bad("only digits and one point are allowed")
			}
		}
	}
	if digits := len(strings.TrimLeft(intPart, "0")); digits > maxInt {
		return "", "", Errorf(CodeInvalidAmount, "amount has more than %d integer digits", maxInt)
	}
	return intPart, frac, nil
}

func build(intPart, frac string, c Currency) (Amount, error) {
	digits := strings.TrimLeft(intPart, "0") + frac + strings.Repeat("0", int(c.Minor)-len(frac))
	if strings.TrimLeft(digits, "0") == "" {
		return Zero(c), nil
	}
	var a Amount
	if _, ok := a.d.Coeff.SetString(strings.TrimLeft(digits, "0"), 10); !ok {
		return Amount{}, Errorf(CodeInvalidAmount, "amount is not a number")
	}
	a.d.Exponent = -c.Minor
	return a, nil
}

// ParseStored parses an amount written by String (journal, snapshots). It
// accepts a leading minus, at most the currency's digits after the point, and
// up to maxBalanceDigits integer digits: a balance may legitimately outgrow
// the 18 integer digits of a single request amount, and must load again.
func ParseStored(s string, c Currency) (Amount, error) {
	neg := strings.HasPrefix(s, "-")
	intPart, frac, err := splitPlainDecimal(strings.TrimPrefix(s, "-"), maxBalanceDigits)
	if err == nil && int32(len(frac)) > c.Minor {
		err = Errorf(CodeInvalidAmount, "more than %d decimal places for %s", c.Minor, c.Code)
	}
	var a Amount
	if err == nil {
		a, err = build(intPart, frac, c)
	}
	if err != nil {
		return Amount{}, fmt.Errorf("stored amount %q: %w", s, err)
	}
	if neg {
		a.d.Negative = !a.d.IsZero()
	}
	return a, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// String prints the amount with exactly its currency's minor digits ("12.50").
func (a Amount) String() string { return a.d.Text('f') }

// Append appends String's text to b, without allocating it on its own (the
// Postgres writer encodes two amounts per event this way).
func (a Amount) Append(b []byte) []byte { return a.d.Append(b, 'f') }

// MarshalJSON writes the amount as a decimal string, as the API requires.
func (a Amount) MarshalJSON() ([]byte, error) { return json.Marshal(a.String()) }

// Decimal returns a copy of the underlying exact decimal.
func (a Amount) Decimal() *apd.Decimal { return new(apd.Decimal).Set(&a.d) }

// IsZero, Sign and Cmp compare exactly.
func (a Amount) IsZero() bool { return a.d.IsZero() }
func (a Amount) Sign() int    { return a.d.Sign() }
func (a Amount) Cmp(b Amount) int {
	return a.d.Cmp(&b.d)
}

// Add returns a+b. Both must be of one currency (same exponent); the result is exact.
func (a Amount) Add(b Amount) Amount {
	var r Amount
	if _, err := arith.Add(&r.d, &a.d, &b.d); err != nil {
		panic(fmt.Sprintf("wallet: inexact addition %s + %s: %v", a, b, err)) // cannot happen within maxBalanceDigits
	}
	return r
}

// Sub returns a-b exactly.
func (a Amount) Sub(b Amount) Amount {
	var r Amount
	if _, err := arith.Sub(&r.d, &a.d, &b.d); err != nil {
		panic(fmt.Sprintf("wallet: inexact subtraction %s - %s: %v", a, b, err))
	}
	return r
}

// Neg returns -a.
func (a Amount) Neg() Amount {
	var r Amount
	r.d.Neg(&a.d)
	return r
}

// tooLarge reports whether a balance has grown past maxBalanceDigits.
func (a Amount) tooLarge() bool {
	return a.d.NumDigits()+int64(a.d.Exponent) > maxBalanceDigits
}
