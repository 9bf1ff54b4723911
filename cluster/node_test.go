package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/internal/config"
	"github.com/walletd/walletd/persistence/sqlite"
	"github.com/walletd/walletd/wallet"
)

// In-process members: each Node has its own actor system, remoting port
// and automanaged port, exactly as separate processes would. The stores are
// one SQLite store shared by the members (the processes of proc_test.go
// share one Postgres).

var eur, _ = wallet.LookupCurrency("EUR")

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func openStore(t testing.TB) actors.Store {
	t.Helper()
	st, err := sqlite.Open(t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

type member struct {
	*Node
	reg *prometheus.Registry
}

// startMembers starts n automanaged members on loopback sharing st.
//
// Not under the race detector: Proto.Actor's cluster and remoting race
// with themselves (grpclog.SetLoggerV2 in remote.Start, the BlockList, the
// endpoint reader and manager, disthash's rendezvous), so any in-process
// member fails a -race run on the library's account. The process tests
// (proc_test.go) run members as separate binaries and do run under -race;
// `go test ./cluster/` runs these.
func startMembers(t *testing.T, st actors.Store, n int, cfg actors.Config) []*member {
	t.Helper()
	if raceEnabled {
		t.Skip("in-process cluster members: Proto.Actor has data races of its own; run `go test ./cluster/` without -race for this test")
	}
	ports := make([]int, n)
	var peers []string
	for i := range ports {
		ports[i] = freePort(t)
		peers = append(peers, fmt.Sprintf("127.0.0.1:%d", ports[i]))
	}
	logger := testLogger(t)
	ms := make([]*member, n)
	for i := range ms {
		c := config.Config{ClusterProvider: "automanaged", ClusterName: "test", ClusterAddr: "127.0.0.1:0",
			ClusterPeerPort: ports[i], ClusterPeers: peers}
		reg := prometheus.NewRegistry()
		node, err := StartWithOptions(context.Background(), c, st, cfg, reg, logger.With("member", i),
			Options{AutomanagedRefresh: 300 * time.Millisecond})
		if err != nil {
			t.Fatalf("start member %d: %v", i, err)
		}
		ms[i] = &member{Node: node, reg: reg}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := node.Close(ctx); err != nil {
				t.Errorf("close member %d: %v", i, err)
			}
		})
	}
	for i, m := range ms {
		waitFor(t, fmt.Sprintf("member %d ready with %d members", i, n), 15*time.Second, func() bool {
			return m.Ready(context.Background()) == nil && m.Members() == n
		})
	}
	return ms
}

// testLogger logs to the test's output only with -v (WALLET_TEST_LOG=1).
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("WALLET_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ourGoroutines lists live goroutines running this package's code (the
// library's own goroutines are not ours to account for).
func ourGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "walletd/walletd/cluster.") && !strings.Contains(g, "cluster.ourGoroutines") &&
			!strings.Contains(g, "testing.tRunner") {
			out = append(out, g)
		}
	}
	return out
}

func TestMemberServesWallets(t *testing.T) {
	st := openStore(t)
	m := startMembers(t, st, 1, actors.Config{})[0]
	ctx := context.Background()

	v, created, err := m.Open(ctx, "p1", eur)
	if err != nil || !created || v.PlayerID != "p1" || v.Balance.String() != "0.00" {
		t.Fatalf("open: %+v %v %v", v, created, err)
	}
	if _, created, err := m.Open(ctx, "p1", eur); err != nil || created {
		t.Fatalf("open again: %v %v", created, err)
	}
	if _, _, err := m.Open(ctx, "p1", wallet.Currency{Code: "JPY"}); wallet.ErrorCode(err) != wallet.CodeCurrencyMismatch {
		t.Fatalf("open in another currency: %v", err)
	}
	res, err := m.Apply(ctx, "p1", wallet.Command{Kind: wallet.KindDeposit, TxID: "d1", Amount: "10.50"})
	if err != nil || res.Balance.String() != "10.50" || res.Version != 1 || res.Duplicate || res.At.IsZero() {
		t.Fatalf("deposit: %+v %v", res, err)
	}
	if res, err := m.Apply(ctx, "p1", wallet.Command{Kind: wallet.KindDeposit, TxID: "d1", Amount: "10.50"}); err != nil || !res.Duplicate || res.Version != 1 {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if _, err := m.Apply(ctx, "p1", wallet.Command{Kind: wallet.KindBet, TxID: "b1", RoundID: "r", Amount: "11"}); wallet.ErrorCode(err) != wallet.CodeInsufficientFunds {
		t.Fatalf("bet beyond the balance: %v", err)
	}
	if res, err := m.Apply(ctx, "p1", wallet.Command{Kind: wallet.KindBet, TxID: "b2", RoundID: "r", Amount: "0.50"}); err != nil || res.Balance.String() != "10.00" {
		t.Fatalf("bet: %+v %v", res, err)
	}
	if v, err := m.Get(ctx, "p1"); err != nil || v.Balance.String() != "10.00" || v.Version != 2 || v.Currency != eur {
		t.Fatalf("get: %+v %v", v, err)
	}
	if evs, err := m.History(ctx, "p1", 0, 10); err != nil || len(evs) != 2 || evs[0].TxID != "b2" {
		t.Fatalf("history: %v %v", evs, err)
	}
	if _, err := m.Get(ctx, "nobody"); wallet.ErrorCode(err) != wallet.CodeWalletNotFound {
		t.Fatalf("get of no wallet: %v", err)
	}
	if _, err := m.History(ctx, "nobody", 0, 10); wallet.ErrorCode(err) != wallet.CodeWalletNotFound {
		t.Fatalf("history of no wallet: %v", err)
	}
	for _, name := range []string{"walletd_cluster_members", "walletd_cluster_owned_activations", "walletd_cluster_ready",
		"walletd_cluster_forward_duration_seconds", "walletd_cluster_evicted"} {
		if _, ok := gather(t, m.reg)[name]; !ok {
			t.Errorf("metric %s is not registered", name)
		}
	}
	if got := gauge(t, m.reg, "walletd_cluster_members"); got != 1 {
		t.Errorf("walletd_cluster_members = %v", got)
	}
	if got := gauge(t, m.reg, "walletd_cluster_owned_activations"); got != 2 {
		t.Errorf("walletd_cluster_owned_activations = %v, want 2 (p1, nobody)", got)
	}

	closeCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := m.Close(closeCtx); err != nil {
		t.Fatal(err)
	}
	if m.Ready(ctx) == nil {
		t.Fatal("ready after close")
	}
	if _, err := m.Get(ctx, "p1"); wallet.ErrorCode(err) != wallet.CodeUnavailable {
		t.Fatalf("get after close: %v", err)
	}
	waitFor(t, "no goroutine of ours left", 10*time.Second, func() bool { return len(ourGoroutines()) == 0 })
}

// TestMembersForwardAndHandOver: two members serve the same wallets
// through either one; when one leaves gracefully, its wallets come back on
// the other with nothing lost.
func TestMembersForwardAndHandOver(t *testing.T) {
	st := openStore(t)
	ms := startMembers(t, st, 2, actors.Config{})
	ctx := context.Background()
	const wallets = 20
	for i := 0; i < wallets; i++ {
		id := fmt.Sprintf("w%d", i)
		if _, _, err := ms[i%2].Open(ctx, id, eur); err != nil {
			t.Fatalf("open %s: %v", id, err)
		}
		for j, m := range ms {
			if _, err := m.Apply(ctx, id, wallet.Command{Kind: wallet.KindDeposit, TxID: fmt.Sprintf("d%d", j), Amount: "1"}); err != nil {
				t.Fatalf("deposit on %s via member %d: %v", id, j, err)
			}
		}
	}
	if a, b := ms[0].Active(), ms[1].Active(); a+b != wallets || a == 0 || b == 0 {
		t.Fatalf("activations %d + %d, want %d spread over both", a, b, wallets)
	}
	for i, m := range ms {
		if n := histCount(t, m.reg, "walletd_cluster_forward_duration_seconds", "remote"); n == 0 {
			t.Errorf("member %d forwarded nothing", i)
		}
	}

	closeCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := ms[1].Close(closeCtx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < wallets; i++ {
		id := fmt.Sprintf("w%d", i)
		res, err := ms[0].Apply(ctx, id, wallet.Command{Kind: wallet.KindDeposit, TxID: "after", Amount: "1"})
		if err != nil || res.Version != 3 || res.Balance.String() != "3.00" {
			t.Fatalf("%s after the handover: %+v %v", id, res, err)
		}
	}
	if ms[0].Active() != wallets {
		t.Fatalf("member 0 hosts %d wallets, want %d", ms[0].Active(), wallets)
	}
}

// TestGrainPassivation: an idle grain stops, and the wallet comes back.
func TestGrainPassivation(t *testing.T) {
	st := openStore(t)
	m := startMembers(t, st, 1, actors.Config{IdleTimeout: 200 * time.Millisecond})[0]
	ctx := context.Background()
	if _, _, err := m.Open(ctx, "p1", eur); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(ctx, "p1", wallet.Command{Kind: wallet.KindDeposit, TxID: "d1", Amount: "2"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "passivation", 5*time.Second, func() bool { return m.Active() == 0 })
	if v, err := m.Get(ctx, "p1"); err != nil || v.Version != 1 || v.Balance.String() != "2.00" {
		t.Fatalf("after passivation: %+v %v", v, err)
	}
	if m.Active() != 1 {
		t.Fatalf("active %d after reactivation", m.Active())
	}
}

func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]*dto.MetricFamily)
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mf := gather(t, reg)[name]
	if mf == nil || len(mf.Metric) == 0 {
		t.Fatalf("no metric %s", name)
	}
	return mf.Metric[0].GetGauge().GetValue()
}

func histCount(t *testing.T, reg *prometheus.Registry, name, target string) uint64 {
	t.Helper()
	for _, m := range gather(t, reg)[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "target" && l.GetValue() == target {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}
