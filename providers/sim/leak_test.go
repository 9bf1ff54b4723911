package sim_test

import (
	"os"
	"testing"

	"github.com/walletd/walletd/providers/providertest/leakcheck"
)

// TestMain fails the run if a test leaves goroutines behind.
func TestMain(m *testing.M) { os.Exit(leakcheck.Main(m)) }
