package wallet

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func mustCurrency(t testing.TB, code string) Currency {
	t.Helper()
	c, ok := LookupCurrency(code)
	if !ok {
		t.Fatalf("currency %s is missing", code)
	}
	return c
}

var (
	eur = Currency{Code: "EUR", Minor: 2}
	jpy = Currency{Code: "JPY", Minor: 0}
	kwd = Currency{Code: "KWD", Minor: 3}
	clf = Currency{Code: "CLF", Minor: 4}
)

func TestParseAmountValid(t *testing.T) {
	eighteen := strings.Repeat("9", 18)
	tests := []struct {
		in   string
		c    Currency
		want string
	}{
		{"0", eur, "0.00"},
		{"0", jpy, "0"},
		{"0", kwd, "0.000"},
		{"0", clf, "0.0000"},
		{"00", eur, "0.00"},
		{"0.0", eur, "0.00"},
		{"0.00", eur, "0.00"},
		{"12.5", eur, "12.50"},
		{"12.50", eur, "12.50"},
		{"12", eur, "12.00"},
		{"007.10", eur, "7.10"},
		{"0.01", eur, "0.01"},
		{"12", jpy, "12"},
		{"007", jpy, "7"},
		{"12.5", kwd, "12.500"},
		{"12.345", kwd, "12.345"},
		{"0.001", kwd, "0.001"},
		{"12.5", clf, "12.5000"},
		{"1.2345", clf, "1.2345"},
		{eighteen, eur, eighteen + ".00"},
		{eighteen + ".99", eur, eighteen + ".99"},
		{eighteen, jpy, eighteen},
		{eighteen + ".999", kwd, eighteen + ".999"},
		{eighteen + ".9999", clf, eighteen + ".9999"},
		{"000" + eighteen, eur, eighteen + ".00"}, // leading zeros are not integer digits
		{"1" + strings.Repeat("0", 17), eur, "1" + strings.Repeat("0", 17) + ".00"},
		{"9223372036854775807", jpy, ""}, // 19 digits: refused below, listed here to keep the boundary visible
	}
	for _, tt := range tests {
		if tt.want == "" {
			continue
		}
		t.Run(tt.c.Code+"/"+tt.in, func(t *testing.T) {
			a, err := ParseAmount(tt.in, tt.c)
			if err != nil {
				t.Fatalf("ParseAmount(%q, %s): %v", tt.in, tt.c.Code, err)
			}
			if got := a.String(); got != tt.want {
				t.Fatalf("ParseAmount(%q, %s) = %s, want %s", tt.in, tt.c.Code, got, tt.want)
			}
			if got := string(a.Append([]byte("x"))); got != "x"+tt.want {
				t.Fatalf("Append of %s = %q, want %q", tt.want, got, "x"+tt.want)
			}
			if a.Sign() < 0 {
				t.Fatalf("negative amount %s", a)
			}
			// An accepted amount parses back to itself from its own text.
			b, err := ParseAmount(a.String(), tt.c)
			if err != nil || b.Cmp(a) != 0 || b.String() != a.String() {
				t.Fatalf("round trip of %s: %v, %v", a, b, err)
			}
		})
	}
}

func TestParseAmountInvalid(t *testing.T) {
	nineteen := "1" + strings.Repeat("0", 18)
	tests := []struct {
		in string
		c  Currency
	}{
		{"", eur},
		{"abc", eur},
		{"NaN", eur},
		{"nan", eur},
		{"Inf", eur},
		{"+Inf", eur},
		{"-Inf", eur},
		{"Infinity", eur},
		{"1e3", eur},
		{"1E3", eur},
		{"1.0e2", eur},
		{"0x10", eur},
		{"-1", eur},
		{"-0", eur},
		{"+1", eur},
		{" 1", eur},
		{"1 ", eur},
		{"1\n", eur},
		{"1.", eur},
		{".5", eur},
		{".", eur},
		{"1..5", eur},
		{"1.2.3", eur},
		{"1.234", eur},
		{"0.001", eur},
		{"1.5", jpy},
		{"1.0", jpy},
		{"1.2345", kwd},
		{"1.23456", clf},
		{nineteen, eur},
		{nineteen, jpy},
		{nineteen + ".00", eur},
		{strings.Repeat("9", 19), kwd},
		{"1,5", eur},
		{"1_000", eur},
		{"١٢", eur},         // Arabic-Indic digits
		{"１２", eur},         // full-width digits
		{"1\u00a0000", eur}, // no-break space
		{"\"1\"", eur},
		{"null", eur},
	}
	for _, tt := range tests {
		t.Run(tt.c.Code+"/"+tt.in, func(t *testing.T) {
			a, err := ParseAmount(tt.in, tt.c)
			if err == nil {
				t.Fatalf("ParseAmount(%q, %s) = %s, want INVALID_AMOUNT", tt.in, tt.c.Code, a)
			}
			if got := ErrorCode(err); got != CodeInvalidAmount {
				t.Fatalf("ParseAmount(%q, %s): code %s (%v), want INVALID_AMOUNT", tt.in, tt.c.Code, got, err)
			}
			var e *Error
			if !errors.As(err, &e) || e.Message == "" {
				t.Fatalf("error %v is not a domain error with a message", err)
			}
		})
	}
}

func TestParseAmountExact(t *testing.T) {
	tests := []struct {
		in   string
		c    Currency
		want string // "" = INVALID_AMOUNT
	}{
		{"10.500000", eur, "10.50"},
		{"10.5", eur, "10.50"},
		{"10.50", eur, "10.50"},
		{"10.505", eur, ""},
		{"10.500001", eur, ""},
		{"63727092.34", eur, "63727092.34"},
		{"63727092.340000", eur, "63727092.34"},
		{"0.000000", eur, "0.00"},
		{"10.000000", jpy, "10"},
		{"10.000001", jpy, ""},
		{"10.5", jpy, ""},
		{"1.234000", kwd, "1.234"},
		{"1.234500", kwd, ""},
		{"1.000000", clf, "1.0000"},
		{"1." + strings.Repeat("0", 1000), eur, "1.00"},
		{"", eur, ""},
		{"1e3", eur, ""},
		{"-1.00", eur, ""},
		{"1.", eur, ""},
		{"1" + strings.Repeat("0", 18) + ".000", eur, ""},
	}
	for _, tt := range tests {
		t.Run(tt.c.Code+"/"+truncate(tt.in, 20), func(t *testing.T) {
			a, err := ParseAmountExact(tt.in, tt.c)
			if tt.want == "" {
				if ErrorCode(err) != CodeInvalidAmount {
					t.Fatalf("ParseAmountExact(%q) = %v, %v; want INVALID_AMOUNT", tt.in, a, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAmountExact(%q): %v", tt.in, err)
			}
			if a.String() != tt.want {
				t.Fatalf("ParseAmountExact(%q) = %s, want %s", tt.in, a, tt.want)
			}
		})
	}
}

func TestAmountStringAndJSON(t *testing.T) {
	tests := []struct {
		a    Amount
		want string
	}{
		{Zero(eur), "0.00"},
		{Zero(jpy), "0"},
		{Zero(kwd), "0.000"},
		{Zero(clf), "0.0000"},
		{MinorUnits(1250, eur), "12.50"},
		{MinorUnits(1, eur), "0.01"},
		{MinorUnits(-1, eur), "-0.01"},
		{MinorUnits(-1250, eur), "-12.50"},
		{MinorUnits(1250, jpy), "1250"},
		{MinorUnits(1250, kwd), "1.250"},
		{MinorUnits(5, kwd), "0.005"},
		{MinorUnits(1, clf), "0.0001"},
		{MinorUnits(100, eur).Sub(MinorUnits(100, eur)), "0.00"},
		{MinorUnits(100, eur).Sub(MinorUnits(250, eur)), "-1.50"},
		{MinorUnits(0, eur).Neg(), "0.00"},
		{MinorUnits(150, eur).Neg(), "-1.50"},
	}
	for _, tt := range tests {
		if got := tt.a.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
		b, err := json.Marshal(tt.a)
		if err != nil || string(b) != `"`+tt.want+`"` {
			t.Errorf("MarshalJSON = %s, %v; want %q", b, err, tt.want)
		}
	}
	// The amount embedded in a struct is a JSON string too.
	b, _ := json.Marshal(struct{ A Amount }{MinorUnits(705, eur)})
	if string(b) != `{"A":"7.05"}` {
		t.Errorf("embedded: %s", b)
	}
}

func TestAmountArithmetic(t *testing.T) {
	p := func(s string, c Currency) Amount {
		t.Helper()
		a, err := ParseAmount(s, c)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	// 0.1 + 0.2 is exactly 0.3, unlike float64.
	if got := p("0.1", eur).Add(p("0.2", eur)); got.String() != "0.30" || got.Cmp(p("0.3", eur)) != 0 {
		t.Errorf("0.1+0.2 = %s", got)
	}
	// Ten times 0.10 is exactly 1.00.
	sum := Zero(eur)
	for range 10 {
		sum = sum.Add(p("0.10", eur))
	}
	if sum.String() != "1.00" {
		t.Errorf("10 × 0.10 = %s", sum)
	}
	big := strings.Repeat("9", 18) + ".99"
	if got := p(big, eur).Add(p("0.01", eur)); got.String() != "1"+strings.Repeat("0", 18)+".00" {
		t.Errorf("carry: %s", got)
	}
	if got := p(big, eur).Add(p(big, eur)).Add(p(big, eur)); got.String() != "2999999999999999999.97" {
		t.Errorf("3 × max = %s", got)
	}
	if got := p(big, eur).Sub(p(big, eur)); got.String() != "0.00" || !got.IsZero() || got.Sign() != 0 {
		t.Errorf("x-x = %s", got)
	}
	if got := p("1.000", kwd).Sub(p("0.001", kwd)); got.String() != "0.999" {
		t.Errorf("KWD: %s", got)
	}
	if got := p("100", jpy).Sub(p("101", jpy)); got.String() != "-1" || got.Sign() != -1 {
		t.Errorf("JPY: %s", got)
	}
	if got := p("0.0001", clf).Add(p("0.0002", clf)); got.String() != "0.0003" {
		t.Errorf("CLF: %s", got)
	}
	// Cmp compares values, not representations.
	if p("12.5", eur).Cmp(p("12.50", eur)) != 0 || p("12.49", eur).Cmp(p("12.5", eur)) != -1 || p("12.51", eur).Cmp(p("12.5", eur)) != 1 {
		t.Error("Cmp")
	}
	// Decimal returns a copy: changing it does not change the amount.
	a := p("1.00", eur)
	d := a.Decimal()
	d.Coeff.SetInt64(999)
	if a.String() != "1.00" {
		t.Errorf("Decimal() aliases the amount: %s", a)
	}
	if MinorUnits(1, eur).tooLarge() || p(strings.Repeat("9", 18), eur).Add(p(strings.Repeat("9", 18), eur)).tooLarge() {
		t.Error("small balances are not too large")
	}
	if !MinorUnits(1, eur).Add(minorDigits(t, "1"+strings.Repeat("0", 21)+"00", eur)).tooLarge() {
		t.Error("10^21 is too large for a balance")
	}
	if minorDigits(t, strings.Repeat("9", 21)+"99", eur).tooLarge() {
		t.Error("21 integer digits are allowed in a balance")
	}
}

// minorDigits builds an amount from a (possibly huge) count of minor units.
func minorDigits(t testing.TB, digits string, c Currency) Amount {
	t.Helper()
	var a Amount
	if _, ok := a.d.Coeff.SetString(digits, 10); !ok {
		t.Fatalf("bad digits %q", digits)
	}
	a.d.Exponent = -c.Minor
	return a
}

func TestParseStored(t *testing.T) {
	tests := []struct {
		in   string
		c    Currency
		want string // "" = error
	}{
		{"12.50", eur, "12.50"},
		{"-12.50", eur, "-12.50"},
		{"0.00", eur, "0.00"},
		{"-0.00", eur, "0.00"},
		{"-0.01", eur, "-0.01"},
		{"-7", jpy, "-7"},
		{"1.005", kwd, "1.005"},
		{"-1.005", kwd, "-1.005"},
		{"12.5", eur, "12.50"}, // fewer digits are still exact
		// A balance may outgrow the 18 integer digits of one request amount
		// (up to maxBalanceDigits): what the wallet writes must load again.
		{"1000000000000000000.00", eur, "1000000000000000000.00"},
		{strings.Repeat("9", 21) + ".99", eur, strings.Repeat("9", 21) + ".99"},
		{"-" + strings.Repeat("9", 21), jpy, "-" + strings.Repeat("9", 21)},
		{"1" + strings.Repeat("0", 21) + ".00", eur, ""},
		{"12.505", eur, ""},
		{"--1.00", eur, ""},
		{"+1.00", eur, ""},
		{"-", eur, ""},
		{"", eur, ""},
		{"1e2", eur, ""},
	}
	for _, tt := range tests {
		a, err := ParseStored(tt.in, tt.c)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParseStored(%q) = %s, want error", tt.in, a)
			}
			continue
		}
		if err != nil || a.String() != tt.want {
			t.Errorf("ParseStored(%q) = %s, %v; want %s", tt.in, a, err, tt.want)
			continue
		}
		b, err := ParseStored(a.String(), tt.c)
		if err != nil || b.Cmp(a) != 0 || b.String() != a.String() {
			t.Errorf("round trip of %s: %s, %v", a, b, err)
		}
	}
	// Every amount String prints parses back to itself, negatives included.
	for _, c := range []Currency{eur, jpy, kwd, clf} {
		for _, n := range []int64{0, 1, -1, 9, 10, -10, 99, 100, 12345, -12345, 1 << 62, -(1 << 62)} {
			a := MinorUnits(n, c)
			b, err := ParseStored(a.String(), c)
			if err != nil || b.Cmp(a) != 0 || b.String() != a.String() {
				t.Errorf("%s %d: %s → %s, %v", c.Code, n, a, b, err)
			}
		}
	}
}

func TestCurrencies(t *testing.T) {
	want := map[string]int32{
		// Zero minor digits.
		"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "VND": 0, "PYG": 0, "UGX": 0, "XAF": 0, "XOF": 0,
		// Three.
		"KWD": 3, "BHD": 3, "OMR": 3, "TND": 3, "JOD": 3, "IQD": 3, "LYD": 3,
		// Four.
		"CLF": 4,
		// Two: the big casino markets.
		"EUR": 2, "USD": 2, "GBP": 2, "SEK": 2, "NOK": 2, "DKK": 2, "CAD": 2, "AUD": 2, "NZD": 2,
		"BRL": 2, "MXN": 2, "ZAR": 2, "INR": 2, "TRY": 2, "PLN": 2, "CZK": 2, "HUF": 2, "RON": 2,
		"BGN": 2, "CHF": 2, "ARS": 2, "PEN": 2, "COP": 2, "UAH": 2, "KZT": 2, "GEL": 2, "RSD": 2,
		"PHP": 2, "THB": 2, "MYR": 2, "IDR": 2, "NGN": 2, "KES": 2, "GHS": 2, "CNY": 2, "HKD": 2,
		"SGD": 2, "TWD": 2, "ILS": 2, "AED": 2, "SAR": 2, "QAR": 2, "EGP": 2, "MAD": 2, "UYU": 2,
		"BOB": 2, "CRC": 2, "DOP": 2, "GTQ": 2, "AZN": 2, "AMD": 2, "MDL": 2, "MKD": 2, "BAM": 2,
		"ALL": 2, "UZS": 2, "PKR": 2, "BDT": 2, "LKR": 2, "NPR": 2, "TZS": 2, "ZMW": 2,
	}
	for code, minor := range want {
		c, ok := LookupCurrency(code)
		if !ok {
			t.Errorf("%s missing", code)
			continue
		}
		if c.Code != code || c.Minor != minor {
			t.Errorf("%s = %+v, want minor %d", code, c, minor)
		}
	}
	for _, code := range []string{"", "eur", "Eur", "XXX", "BTC", "USDT", "EURO", "XAU", "HRK", "EU"} {
		if c, ok := LookupCurrency(code); ok {
			t.Errorf("LookupCurrency(%q) = %+v, want unknown", code, c)
		}
	}
	// Every code in the table is three upper-case letters with 0–4 minor digits.
	for code, c := range currencies {
		if len(code) != 3 || strings.ToUpper(code) != code || c.Code != code || c.Minor < 0 || c.Minor > 4 {
			t.Errorf("bad table entry %q: %+v", code, c)
		}
	}
	if len(currencies) < 150 {
		t.Errorf("only %d currencies", len(currencies))
	}
}

func TestErrorHelpers(t *testing.T) {
	err := Errorf(CodeInsufficientFunds, "balance %s is less than %s", "1.00", "2.00")
	if err.Error() != "INSUFFICIENT_FUNDS: balance 1.00 is less than 2.00" {
		t.Errorf("Error() = %q", err.Error())
	}
	wrapped := errors.Join(errors.New("context"), err)
	if ErrorCode(wrapped) != CodeInsufficientFunds || ErrorMessage(wrapped) != "balance 1.00 is less than 2.00" {
		t.Errorf("wrapped: %s %q", ErrorCode(wrapped), ErrorMessage(wrapped))
	}
	if ErrorCode(nil) != "" || ErrorCode(errors.New("x")) != CodeInternal || ErrorMessage(errors.New("secret")) != "internal error" {
		t.Error("non-domain errors")
	}
	for code, want := range map[Code]bool{
		CodeInsufficientFunds: true, CodeTxConflict: true, CodeBetNotFound: true, CodeBetRolledBack: true,
		CodeBetAlreadySettled: true, CodeCurrencyMismatch: true, CodeWalletNotFound: true,
		CodeBadRequest: false, CodeInvalidAmount: false, CodeUnavailable: false, CodeRateLimited: false, CodeInternal: false,
	} {
		if got := IsBusiness(Errorf(code, "x")); got != want {
			t.Errorf("IsBusiness(%s) = %v", code, got)
		}
	}
	if IsBusiness(&NeedLookup{IDs: []string{"a"}}) {
		t.Error("NeedLookup is not a business refusal")
	}
}

func TestValidID(t *testing.T) {
	for _, s := range []string{"a", "A", "0", "tx-1", "round_7", "p.q", "a:b", "user@host", strings.Repeat("x", 128), "-._:@"} {
		if !ValidID(s) {
			t.Errorf("ValidID(%q) = false", s)
		}
	}
	for _, s := range []string{"", strings.Repeat("x", 129), "a b", "a/b", "a\x00", "é", "a+b", "a#b", "a\n", "ü", "a,b", "a;b", "'"} {
		if ValidID(s) {
			t.Errorf("ValidID(%q) = true", s)
		}
	}
}
