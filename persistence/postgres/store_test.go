package postgres

import (
	"sync"
	"testing"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/persistence/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) actors.Store {
		s, _ := openTest(t, Options{})
		return s
	})
}

// TestConformanceSharded runs the suite with two writers, each owning the
// wallets that hash to it.
func TestConformanceSharded(t *testing.T) {
	storetest.Run(t, func(t *testing.T) actors.Store {
		s, _ := openTest(t, Options{Writers: 2, MaxConns: 4})
		return s
	})
}

func TestDurability(t *testing.T) {
	var (
		mu   sync.Mutex
		dsns = make(map[actors.Store]string) // the database of each store opened
	)
	storetest.RunDurability(t,
		func(t *testing.T) actors.Store {
			s, dsn := openTest(t, Options{})
			mu.Lock()
			defer mu.Unlock()
			dsns[s] = dsn
			return s
		},
		func(t *testing.T, s actors.Store) actors.Store {
			if err := s.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			mu.Lock()
			dsn := dsns[s]
			mu.Unlock()
			return openOn(t, dsn, Options{})
		})
}
