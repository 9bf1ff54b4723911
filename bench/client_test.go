package bench

import "testing"

func TestCents(t *testing.T) {
	for _, tc := range []struct {
		text  string
		cents int64
		back  string
		ok    bool
	}{
		{"12.50", 1250, "12.50", true},
		{"12.5", 1250, "12.50", true},
		{"0.01", 1, "0.01", true},
		{"7", 700, "7.00", true},
		{"-3.05", -305, "-3.05", true},
		{"1000000.00", 100_000_000, "1000000.00", true},
		{"1.234", 0, "", false},
		{"", 0, "", false},
		{"1e3", 0, "", false},
		{"abc", 0, "", false},
		{".5", 0, "", false},
	} {
		got, err := parseCents(tc.text)
		if (err == nil) != tc.ok || got != tc.cents {
			t.Errorf("parseCents(%q) = %d, %v", tc.text, got, err)
			continue
		}
		if tc.ok && formatCents(got) != tc.back {
			t.Errorf("formatCents(%d) = %q, want %q", got, formatCents(got), tc.back)
		}
	}
}
