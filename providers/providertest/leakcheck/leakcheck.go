// Package leakcheck fails a test binary that leaves goroutines behind (an
// engine, a server, a pool or a client not closed). It depends on nothing
// of walletd, so any package's tests can use it.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Main runs a package's tests, then fails the run if goroutines are left
// behind: call it from TestMain as os.Exit(leakcheck.Main(m)). It allows a
// few seconds for goroutines that are already on their way out.
func Main(m *testing.M) int {
	base := len(goroutines())
	code := m.Run()
	deadline := time.Now().Add(5 * time.Second)
	left := goroutines()
	for len(left) > base && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		left = goroutines()
	}
	if len(left) > base {
		fmt.Fprintf(os.Stderr, "leakcheck: %d goroutines leaked (%d before the tests, %d after):\n\n%s\n",
			len(left)-base, base, len(left), strings.Join(left, "\n\n"))
		if code == 0 {
			code = 1
		}
	}
	return code
}

// goroutines returns the stacks of the goroutines that count: not this
// one, nor those the runtime or the testing package keep for the whole
// process (the signal loop the fuzzing engine starts, say).
func goroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "leakcheck.goroutines") || strings.Contains(g, "os/signal.loop") {
			continue
		}
		out = append(out, g)
	}
	return out
}
