// Package deploy holds the deployment files (Prometheus, Grafana); its test
// checks them with the real tools.
package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"testing"
)

// mustHave finds a tool; under CI=true a missing tool fails the test.
func mustHave(t *testing.T, tool string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed; .ci/run installs it", tool)
		}
		t.Skipf("%s is not installed", tool)
	}
	return path
}

// TestComposeValidates: `docker compose config` (or docker-compose v1) accepts
// the stack. Skipped only where there is no docker CLI at all.
func TestComposeValidates(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker CLI on this machine")
	}
	var cmd *exec.Cmd
	if exec.Command("docker", "compose", "version").Run() == nil {
		cmd = exec.Command("docker", "compose", "-f", "../docker-compose.yml", "config", "-q")
	} else {
		cmd = exec.Command(mustHave(t, "docker-compose"), "-f", "../docker-compose.yml", "config", "-q")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
}

func TestAlertRules(t *testing.T) {
	out, err := exec.Command(mustHave(t, "promtool"), "check", "rules", "prometheus/alerts.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

func TestDashboardIsValidJSON(t *testing.T) {
	raw, err := os.ReadFile("grafana/dashboards/walletd.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if d.UID == "" || len(d.Panels) < 8 {
		t.Fatalf("dashboard has uid %q and %d panels", d.UID, len(d.Panels))
	}
	for _, p := range d.Panels {
		if p.Title == "" || len(p.Targets) == 0 || p.Targets[0].Expr == "" {
			t.Fatalf("panel %q has no query", p.Title)
		}
	}
}
