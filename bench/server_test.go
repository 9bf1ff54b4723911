package bench

import (
	"net"
	"slices"
	"strings"
	"testing"
)

// A walletd that will not log its serving line gets a port picked for it,
// and the harness probes that address; one that logs is left alone.
func TestQuietAddr(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, free, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	for _, tc := range []struct {
		name      string
		env       []string
		wantProbe string // "*": a picked port on 127.0.0.1
		wantErr   bool
	}{
		{"info logs its address", []string{"WALLET_HTTP_ADDR=127.0.0.1:0", "WALLET_LOG_LEVEL=info"}, "", false},
		{"no level logs its address", []string{"WALLET_HTTP_ADDR=127.0.0.1:0"}, "", false},
		{"warn on port 0", []string{"WALLET_HTTP_ADDR=127.0.0.1:0", "WALLET_LOG_LEVEL=warn"}, "*", false},
		{"the last setting counts", []string{"WALLET_LOG_LEVEL=warn", "WALLET_HTTP_ADDR=127.0.0.1:0", "WALLET_LOG_LEVEL=info"}, "", false},
		{"ERROR, a fixed port", []string{"WALLET_HTTP_ADDR=127.0.0.1:" + free, "WALLET_LOG_LEVEL=ERROR"}, "127.0.0.1:" + free, false},
		{"wildcard host", []string{"WALLET_HTTP_ADDR=0.0.0.0:" + free, "WALLET_LOG_LEVEL=warn"}, "127.0.0.1:" + free, false},
		{"a fixed port in use", []string{"WALLET_HTTP_ADDR=" + taken.Addr().String(), "WALLET_LOG_LEVEL=warn"}, "", true},
		{"bad address", []string{"WALLET_HTTP_ADDR=nonsense", "WALLET_LOG_LEVEL=warn"}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, probe, err := quietAddr(slices.Clone(tc.env))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if tc.wantProbe != "*" {
				if probe != tc.wantProbe || !slices.Equal(env, tc.env) {
					t.Fatalf("probe %q env %q, want %q and the env unchanged", probe, env, tc.wantProbe)
				}
				return
			}
			addr, _ := envValue(env, "WALLET_HTTP_ADDR")
			host, port, err := net.SplitHostPort(addr)
			if err != nil || host != "127.0.0.1" || port == "0" || probe != addr || !strings.HasPrefix(env[len(env)-1], "WALLET_HTTP_ADDR=") {
				t.Fatalf("env %q probe %q: want a picked port on 127.0.0.1, probed", env, probe)
			}
		})
	}
}
