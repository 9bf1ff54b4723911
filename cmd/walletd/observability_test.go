package main

import (
	"bytes"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/walletd/walletd/internal/config"
	"github.com/walletd/walletd/ratelimit/ratelimittest"
)

// TestMetricsAfterTraffic scrapes /metrics after traffic and checks the
// families and labels ops rely on; the output passes promtool's lint.
func TestMetricsAfterTraffic(t *testing.T) {
	ts := startServer(t, nil)
	ts.open("p1", "EUR")
	ts.expect(ts.do("POST", "/v1/wallets/p1/deposit", `{"tx_id":"d1","amount":"10"}`), 200, "")
	ts.expect(ts.do("POST", "/v1/wallets/p1/deposit", `{"tx_id":"d1","amount":"10"}`), 200, "")
	ts.expect(ts.do("POST", "/v1/wallets/p1/bet", `{"tx_id":"b1","round_id":"r","game_id":"g","amount":"11"}`), 422, "INSUFFICIENT_FUNDS")
	ts.expect(ts.do("POST", "/v1/wallets/p1/bet", `{"tx_id":"b2","round_id":"r","game_id":"g","amount":"1"}`), 200, "")

	r := ts.do("GET", "/metrics", "")
	ts.expect(r, 200, "")
	for _, want := range []string{
		`walletd_http_requests_total{code="200",method="POST",route="/v1/wallets/:player_id/deposit"} 2`,
		`walletd_http_requests_total{code="422",method="POST",route="/v1/wallets/:player_id/bet"} 1`,
		`walletd_http_request_duration_seconds_bucket{method="POST",route="/v1/wallets/:player_id/bet",le=`,
		`walletd_wallet_transactions_total{kind="deposit",outcome="applied"} 1`,
		`walletd_wallet_transactions_total{kind="deposit",outcome="duplicate"} 1`,
		`walletd_wallet_transactions_total{kind="bet",outcome="insufficient_funds"} 1`,
		`walletd_wallet_transactions_total{kind="bet",outcome="applied"} 1`,
		`walletd_wallet_actors_active 1`,
		`walletd_wallet_activations_total`,
		`walletd_wallet_passivations_total`,
		`walletd_wallet_queue_depth_bucket{le=`,
		`walletd_wallet_overload_refusals_total`,
		`walletd_wallet_writes_total{result="ok"}`,
		`walletd_journal_batch_events_bucket{le=`,
		`walletd_journal_batch_writes_bucket{le=`,
		`walletd_journal_commit_duration_seconds_bucket{le=`,
		`walletd_journal_commit_errors_total 0`,
		`walletd_snapshot_writes_total`,
		`walletd_store_up 1`,
		`walletd_build_info{`,
		`go_goroutines`,
	} {
		if !strings.Contains(r.Raw, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	problems, err := promlint.New(strings.NewReader(r.Raw)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed; .ci/run installs it")
		}
		t.Log("promtool not installed: only the promlint check ran")
		return
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(r.Raw)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestRequestIDInLogs: the request id of a failed bet is on its access line
// and on a line written deeper down (the engine); no configured secret
// appears anywhere in the logs.
func TestRequestIDInLogs(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.LogLevel = slog.LevelDebug })
	ts.open("p1", "EUR")
	ts.expect(ts.do("POST", "/v1/wallets/p1/bet", `{"tx_id":"b1","round_id":"r","game_id":"g","amount":"5"}`, "X-Request-ID", "failed-bet-7"), 422, "INSUFFICIENT_FUNDS")

	var access, deeper bool
	for _, line := range strings.Split(ts.logs.String(), "\n") {
		if !strings.Contains(line, `"request_id":"failed-bet-7"`) {
			continue
		}
		switch {
		case strings.Contains(line, `"msg":"http request"`):
			access = strings.Contains(line, `"status":422`)
		case strings.Contains(line, `"msg":"wallet refused a command"`):
			deeper = strings.Contains(line, `"code":"INSUFFICIENT_FUNDS"`)
		}
	}
	if !access || !deeper {
		t.Fatalf("request id on access line: %v, on a deeper line: %v\n%s", access, deeper, ts.logs.String())
	}
	if bytes.Contains([]byte(ts.logs.String()), []byte(testKey)) {
		t.Fatal("the API key appears in the logs")
	}
	if regexp.MustCompile(`(?i)authorization`).MatchString(ts.logs.String()) {
		t.Fatal("an Authorization header appears in the logs")
	}
}

// TestDashboardAndAlertsUseRealMetrics: every metric the Grafana dashboard
// and the Prometheus alert rules query is one walletd really exports (with
// Redis and both providers configured, after one provider callback).
func TestDashboardAndAlertsUseRealMetrics(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.RedisAddr = ratelimittest.Addr(t)
		c.PragmaticSecret = "s"
		c.EvolutionAuthToken = "t"
	})
	// One (unsigned, refused) Pragmatic callback makes the provider series exist.
	req, _ := http.NewRequest("POST", ts.base+"/providers/pragmatic/balance.html", strings.NewReader("providerId=PragmaticPlay&userId=u1&hash=00"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	exported := ts.do("GET", "/metrics", "").Raw

	name := regexp.MustCompile(`\bwalletd_[a-z0-9_]+`)
	for _, file := range []string{"../../deploy/grafana/dashboards/walletd.json", "../../deploy/prometheus/alerts.yml"} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range name.FindAllString(string(raw), -1) {
			if m == "walletd_backup_last_success_timestamp_seconds" {
				continue // written by scripts/backup.sh for node_exporter, not by walletd
			}
			family := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
			if !strings.Contains(exported, "# TYPE "+family+" ") {
				t.Errorf("%s queries %s, which walletd does not export", file, m)
			}
		}
	}
}
