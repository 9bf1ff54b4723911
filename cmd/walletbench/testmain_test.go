package main

import (
	"context"
	"os"
	"testing"
)

// TestMain lets the test binary stand in for walletbench: the suite starts
// its naive and ceiling servers by re-executing its own binary with `serve`
// (os.Executable), and in a test that binary is this one. Without this,
// `serve` would run every test again, each starting more servers.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		os.Exit(Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
