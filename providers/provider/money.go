package provider

import (
	"strings"

	"github.com/walletd/walletd/wallet"
)

// Number is a JSON number written exactly as its text: provider replies
// carry money as JSON numbers, and going through float64 could change them.
// Build it with Money; the zero value writes 0.
type Number string

// MarshalJSON writes the number's text.
func (n Number) MarshalJSON() ([]byte, error) {
	if n == "" {
		return []byte("0"), nil
	}
	return []byte(n), nil
}

// Money writes an amount as a JSON number with at least minDecimals digits
// after the point, and more when the currency has more: never fewer than
// the amount needs, so nothing is ever rounded. With minDecimals 2: EUR
// 12.50 → 12.50, JPY 1234 → 1234.00, KWD 12.345 → 12.345.
func Money(a wallet.Amount, minDecimals int) Number {
	s := a.String()
	intPart, frac, _ := strings.Cut(s, ".")
	if len(frac) >= minDecimals {
		return Number(s)
	}
	return Number(intPart + "." + frac + strings.Repeat("0", minDecimals-len(frac)))
}
