package bench

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"
)

// startWalletd builds walletd and runs it on the embedded store in a
// temporary folder, as its own process.
func startWalletd(t *testing.T, dsn string) *Process {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs walletd; skipped with -short")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	bin, err := BuildWalletd(ctx, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	p, err := StartProcess(ctx, "walletd", bin, nil, WalletdEnv(testKey, filepath.Join(dir, "data"), dsn), filepath.Join(dir, "walletd.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(20 * time.Second); err != nil {
			t.Errorf("stop walletd: %v", err)
		}
	})
	return p
}

const testKey = "bench-test-key"

// A few hundred requests of every kind against a real walletd process: no
// error, no discrepancy, figures that add up.
func TestEndToEndEmbedded(t *testing.T) {
	p := startWalletd(t, "")
	ctx := context.Background()
	c := NewClient(p.URL(), testKey, 8)
	defer c.Close()
	l := NewLedger()
	ids := WalletIDs("e2e-", 5)
	if err := Setup(ctx, c, l, ids, 100_000, 4); err != nil {
		t.Fatal(err)
	}
	res, err := Execute(ctx, RunSpec{
		Target:   Target{System: "walletd-embedded", URL: p.URL(), PID: p.PID()},
		Scenario: "uniform",
		Workload: Workload{Users: 8, Skew: Skew{Kind: "uniform"}, Mix: Mix{Bet: 50, Win: 25, Rollback: 10, Retry: 15}, Requests: 400, Warmup: 100 * time.Millisecond, Seed: 1},
		Wallets:  ids, Protocol: c, Reader: c, Ledger: l, CPU: NewCPUProbe(p.PID(), false),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Requests != 400 || res.OK != 400 || res.Errors != 0 {
		t.Errorf("requests %d ok %d errors %d (%v), want 400 ok", res.Requests, res.OK, res.Errors, res.ErrorCodes)
	}
	if !res.Checked || res.Discrepancies != 0 {
		t.Errorf("check: checked %v, discrepancies %v", res.Checked, res.DiscrepancyDetails)
	}
	if e := res.Engine; e == nil || e.EventsPerCommit < 1 || e.CommitsPerS <= 0 {
		t.Errorf("engine stats from /metrics: %+v", e)
	}
	// The check read every journal entry: the wallets' versions add up to
	// the entries it checked (setup, warm-up and measured; retries of the
	// same tx_id add none, so the count depends on the machine's speed, not
	// on the 400 measured requests).
	var entries uint64
	for _, id := range ids {
		w, err := c.Wallet(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		entries += w.Version
	}
	if res.CheckedWallets != 5 || uint64(res.CheckedTransactions) != entries || entries < 300 {
		t.Errorf("checked %d wallets, %d transactions; the wallets' versions add up to %d", res.CheckedWallets, res.CheckedTransactions, entries)
	}
}

// The check must catch lost money: a proxy that acknowledges every 100th
// write without forwarding it makes the run fail with "lost" discrepancies.
func TestBrokenServerFailsTheCheck(t *testing.T) {
	p := startWalletd(t, "")
	ctx := context.Background()
	direct := NewClient(p.URL(), testKey, 8)
	defer direct.Close()
	l := NewLedger()
	ids := WalletIDs("broken-", 3)
	if err := Setup(ctx, direct, l, ids, 100_000, 3); err != nil {
		t.Fatal(err)
	}
	drop, err := NewDropEvery(p.URL(), 100)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(drop)
	defer proxy.Close()
	broken := NewClient(proxy.URL, testKey, 8)
	defer broken.Close()
	res, err := Execute(ctx, RunSpec{
		Target:   Target{System: "broken", URL: proxy.URL},
		Scenario: "uniform",
		Workload: Workload{Users: 4, Skew: Skew{Kind: "uniform"}, Mix: Mix{Bet: 70, Win: 30}, Requests: 500, Seed: 2},
		Wallets:  ids, Protocol: broken, Reader: direct, Ledger: l,
	})
	if err != nil {
		t.Fatal(err)
	}
	if drop.Dropped() < 4 {
		t.Fatalf("the proxy dropped %d writes, want at least 4", drop.Dropped())
	}
	lost := 0
	for _, d := range res.DiscrepancyDetails {
		if d.Kind == "lost" {
			lost++
		}
	}
	if !res.Failed() || res.Discrepancies < int(drop.Dropped()) || lost == 0 {
		t.Fatalf("dropped %d acknowledged writes; the check found %d discrepancies (%d lost shown): %v", drop.Dropped(), res.Discrepancies, lost, res.DiscrepancyDetails)
	}
	t.Logf("dropped %d writes; %d discrepancies, e.g. %v", drop.Dropped(), res.Discrepancies, res.DiscrepancyDetails[0])
}
