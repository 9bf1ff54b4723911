package requestid

import (
	"context"
	"strings"
	"testing"
)

func TestSane(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"", false},
		{"a", true},
		{"req-1.2_3:4@host", true},
		{strings.Repeat("x", 128), true},
		{strings.Repeat("x", 129), false},
		{"has space", false},
		{"new\nline", false},
		{`quote"`, false},
		{"ünïcode", false},
		{"slash/", false},
	} {
		if got := Sane(tc.id); got != tc.want {
			t.Errorf("Sane(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

func TestNew(t *testing.T) {
	a, b := New(), New()
	if len(a) != 32 || !Sane(a) {
		t.Fatalf("New() = %q: want 32 sane hex characters", a)
	}
	if a == b {
		t.Fatalf("New() returned %q twice", a)
	}
}

func TestContext(t *testing.T) {
	ctx := context.Background()
	if got := FromContext(ctx); got != "" {
		t.Fatalf("FromContext(empty) = %q", got)
	}
	if got := FromContext(WithID(ctx, "abc")); got != "abc" {
		t.Fatalf("FromContext = %q, want abc", got)
	}
}
