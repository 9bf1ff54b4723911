package bench

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// EngineStats is what walletd's own metrics (/metrics) say about its group
// commit during the measured phase: how many commits, how much each carried,
// how long each took. With the CPU split it tells whether walletd waits on
// the store (few, slow commits) or burns CPU around it.
type EngineStats struct {
	CommitsPerS     float64 `json:"commits_per_s"`
	EventsPerCommit float64 `json:"events_per_commit"`
	WritesPerCommit float64 `json:"wallet_writes_per_commit"`
	CommitMS        float64 `json:"commit_ms"` // mean
	SnapshotsPerS   float64 `json:"snapshots_per_s"`
}

// engineCounters are the cumulative series EngineStats is computed from.
type engineCounters struct {
	at                       time.Time
	commits, events, writes  float64
	commitSeconds, snapshots float64
	found                    bool
}

// scrapeEngine reads walletd's journal metrics at base/metrics. A server
// without them (the naive and ceiling servers) reports found=false.
func scrapeEngine(ctx context.Context, base string) engineCounters {
	c := engineCounters{at: time.Now()}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/metrics", nil)
	if err != nil {
		return c
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return c
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch name {
		case "walletd_journal_batch_events_count":
			c.commits, c.found = v, true
		case "walletd_journal_batch_events_sum":
			c.events = v
		case "walletd_journal_batch_writes_sum":
			c.writes = v
		case "walletd_journal_commit_duration_seconds_sum":
			c.commitSeconds = v
		case "walletd_snapshot_writes_total":
			c.snapshots = v
		}
	}
	return c
}

// stats is the activity between o and c.
func (c engineCounters) stats(o engineCounters) *EngineStats {
	commits := c.commits - o.commits
	wall := c.at.Sub(o.at).Seconds()
	if !c.found || !o.found || commits <= 0 || wall <= 0 {
		return nil
	}
	return &EngineStats{
		CommitsPerS:     round1(commits / wall),
		EventsPerCommit: round1((c.events - o.events) / commits),
		WritesPerCommit: round1((c.writes - o.writes) / commits),
		CommitMS:        round3(1000 * (c.commitSeconds - o.commitSeconds) / commits),
		SnapshotsPerS:   round1((c.snapshots - o.snapshots) / wall),
	}
}
