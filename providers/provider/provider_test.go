package provider

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/walletd/walletd/wallet"
)

func TestKeys(t *testing.T) {
	k, err := NewKeys("pp", "main")
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("r", 200)
	tests := []struct {
		class, ref, want string
	}{
		{"bet", "12345", "pp.main:bet:12345"},
		{"bet", "a.b_c:d@e-f", "pp.main:bet:a.b_c:d@e-f"},
		{"round", "", "pp.main:round:"},
		{"bet", "with space", "pp.main:bet@" + sha("with space")},
		{"bet", "ü", "pp.main:bet@" + sha("ü")},
		{"bet", long, "pp.main:bet@" + sha(long)},
	}
	for _, tt := range tests {
		got := k.ID(tt.class, tt.ref)
		if got != tt.want {
			t.Errorf("ID(%q, %q) = %q, want %q", tt.class, tt.ref, got, tt.want)
		}
		if !wallet.ValidID(got) {
			t.Errorf("ID(%q, %q) = %q is not a valid wallet id", tt.class, tt.ref, got)
		}
	}
	// The longest reference that still fits is kept as is; one more
	// character and it is hashed: the two never meet.
	fit := strings.Repeat("x", 128-len("pp.main:bet:"))
	if got := k.ID("bet", fit); got != "pp.main:bet:"+fit {
		t.Errorf("a fitting reference was hashed: %q", got)
	}
	if got := k.ID("bet", fit+"x"); !strings.HasPrefix(got, "pp.main:bet@") {
		t.Errorf("an oversized reference was not hashed: %q", got)
	}
	// A reference that looks like a hashed id stays distinct from it.
	if k.ID("bet", "@"+sha("with space")) == k.ID("bet", "with space") {
		t.Error("collision between a plain and a hashed id")
	}
	other, _ := NewKeys("pp", "other")
	if other.ID("bet", "1") == k.ID("bet", "1") || k.ID("win", "1") == k.ID("bet", "1") {
		t.Error("instances or classes share ids")
	}
	for _, bad := range [][2]string{{"PP", "main"}, {"pp", "Main"}, {"pp", ""}, {"pp", "a:b"}, {"pp", strings.Repeat("a", 33)}, {"p:p", "main"}} {
		if _, err := NewKeys(bad[0], bad[1]); err == nil {
			t.Errorf("NewKeys(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func FuzzKeysAreInjective(f *testing.F) {
	f.Add("1", "2")
	f.Add("a b", "@")
	f.Add(strings.Repeat("x", 116), strings.Repeat("x", 117))
	k, _ := NewKeys("evo", "live")
	f.Fuzz(func(t *testing.T, a, b string) {
		ida, idb := k.ID("bet", a), k.ID("bet", b)
		if !wallet.ValidID(ida) || !wallet.ValidID(idb) {
			t.Fatalf("invalid ids %q %q", ida, idb)
		}
		if (a == b) != (ida == idb) {
			t.Fatalf("ID(%q) = %q, ID(%q) = %q", a, ida, b, idb)
		}
	})
}

func TestMoney(t *testing.T) {
	tests := []struct {
		currency string
		minor    int64
		min      int
		want     string
	}{
		{"EUR", 1250, 2, "12.50"},
		{"EUR", 0, 2, "0.00"},
		{"JPY", 1234, 2, "1234.00"},
		{"JPY", 1234, 0, "1234"},
		{"KWD", 12345, 2, "12.345"},
		{"KWD", 12345, 0, "12.345"},
		{"CLF", 12345, 2, "1.2345"},
		{"EUR", 636272909234, 2, "6362729092.34"},
	}
	for _, tt := range tests {
		c, _ := wallet.LookupCurrency(tt.currency)
		got := Money(wallet.MinorUnits(tt.minor, c), tt.min)
		b, err := json.Marshal(struct{ N Number }{got})
		if err != nil || string(b) != `{"N":`+tt.want+`}` {
			t.Errorf("Money(%d %s, %d) = %s (%s, %v), want %s", tt.minor, tt.currency, tt.min, got, b, err, tt.want)
		}
	}
	if b, _ := json.Marshal(Number("")); string(b) != "0" {
		t.Errorf("zero Number = %s", b)
	}
}
