package naive

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/walletd/walletd/internal/pgtest"
)

// The baseline must be correct, or comparing against it means nothing.
func TestNaiveIsCorrect(t *testing.T) {
	ctx := context.Background()
	w, err := Open(ctx, pgtest.DSN(t), 8)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Create(ctx, "p1", "EUR", "10.00"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 20; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				// Each tx_id is sent by two goroutines.
				if _, err := w.Debit(ctx, "p1", fmt.Sprintf("b%d-%d", g%10, i), "bet", "0.10"); err != nil && err != ErrInsufficientFunds {
					t.Errorf("debit: %v", err)
				}
			}
		}(g)
	}
	wg.Wait()
	bal, ver, err := w.Balance(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if bal != "5.00" || ver != 50 {
		t.Fatalf("balance %s version %d, want 5.00 and 50", bal, ver)
	}
	if _, err := w.Debit(ctx, "p1", "big", "bet", "5.01"); err != ErrInsufficientFunds {
		t.Fatalf("overdraft: %v", err)
	}
	r, err := w.Debit(ctx, "p1", "b0-0", "bet", "0.10")
	if err != nil || !r.Duplicate || r.Balance != "5.00" {
		t.Fatalf("retry: %+v %v", r, err)
	}
}

// add must give what Postgres's numeric gave in the round trip it replaces.
func TestAdd(t *testing.T) {
	for _, tc := range []struct {
		a, b, want string
		sign       int
	}{
		{"10.00", "-0.10", "9.90", 1},
		{"0.10", "-0.10", "0.00", 0},
		{"0.10", "-0.11", "-0.01", -1},
		{"5", "0.25", "5.25", 1},
		{"1.5", "-1.50", "0.00", 0},
		{"99999999999999999999.99", "0.01", "100000000000000000000.00", 1},
	} {
		got, sign, err := add(tc.a, tc.b)
		if err != nil || got != tc.want || sign != tc.sign {
			t.Errorf("add(%s, %s) = %s, %d, %v; want %s, %d", tc.a, tc.b, got, sign, err, tc.want, tc.sign)
		}
	}
	for _, bad := range [][2]string{{"x", "1"}, {"1", ""}, {"1e40", "1e-40"}} {
		if got, _, err := add(bad[0], bad[1]); err == nil {
			t.Errorf("add(%s, %s) = %s, want an error", bad[0], bad[1], got)
		}
	}
}
