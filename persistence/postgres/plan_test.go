package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/wallet"
)

// TestPlansUseIndexes: on a journal of 30,000 rows, the reads and the
// batch statements probe indexes instead of scanning the journal; the batch
// statements' generic plans, as the writer's session makes them, never scan
// a table.
func TestPlansUseIndexes(t *testing.T) {
	_, dsn := openTest(t, Options{})
	c := sqlConn(t, dsn)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(cfg.RuntimeParams, writerParams(time.Minute))
	wc, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close(context.Background())
	exec(t, c, `INSERT INTO wallets (player_id, currency, version, balance, created_at)
		SELECT 'p' || i, 'EUR', 100, 0, now() FROM generate_series(1, 300) i`)
	exec(t, c, `INSERT INTO journal (player_id, seq, tx_id, kind, amount, balance_after, round_id, ref_tx_id, bet_key, created_at)
		SELECT 'p' || i, s, 't' || s, CASE WHEN s % 2 = 0 THEN 'bet' ELSE 'win' END, 0, 0, 'r' || (s / 2),
			CASE WHEN s % 2 = 1 THEN 't' || (s - 1) ELSE '' END, CASE WHEN s % 2 = 0 THEN 't' || s END, now()
		FROM generate_series(1, 300) i, generate_series(1, 100) s`)
	exec(t, c, "ANALYZE")

	var a batchArgs
	w := &benchWallet{id: "p7", version: 100, balance: mustParse(t, "0.00")}
	if err := a.build([]*request{{w: actors.Write{PlayerID: w.id, Expected: 100, Events: w.deposits(3, time.Now())}}}); err != nil {
		t.Fatal(err)
	}
	for name, q := range map[string]struct {
		sql  string
		args []any
	}{
		"lookup":  {lookupSQL, []any{"p7", []string{"t10", "t11", "nope"}}},
		"history": {historySQL, []any{"p7", int64(50), 10}},
	} {
		plan := explain(t, c, q.sql, q.args...)
		if strings.Contains(plan, "Seq Scan on journal") {
			t.Errorf("%s scans the journal:\n%s", name, plan)
		}
	}
	// The generic plans: prepared, and explained with the batch's values
	// sent as literals (EXECUTE's arguments cannot be bound parameters).
	ctx := context.Background()
	placeholders := make([]string, len(a.values()))
	for i := range placeholders {
		placeholders[i] = fmt.Sprintf("$%d", i+1)
	}
	for name, sql := range map[string]string{"batch": batchSQL, "fast": fastSQL} {
		if _, err := wc.Exec(ctx, "PREPARE "+name+" AS "+sql); err != nil {
			t.Fatalf("prepare %s: %v", name, err)
		}
		rows, err := wc.Query(ctx, "EXPLAIN EXECUTE "+name+"("+strings.Join(placeholders, ", ")+")",
			append([]any{pgx.QueryExecModeSimpleProtocol}, a.values()...)...)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("explain %s: %v", name, err)
		}
		plan := strings.Join(lines, "\n")
		if !strings.Contains(plan, "Index") || strings.Contains(plan, "Seq Scan") ||
			strings.Contains(plan, "Full") || !strings.Contains(plan, "$1") {
			t.Errorf("%s statement's generic plan reads whole tables, or is not generic:\n%s", name, plan)
		}
	}
}

func explain(t *testing.T, c *pgx.Conn, sql string, args ...any) string {
	t.Helper()
	ctx := context.Background()
	tx, err := c.Begin(ctx) // plain EXPLAIN writes nothing; the rollback is a guard
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, "EXPLAIN "+sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// TestQueueFullWaitsForContext: with the writer stuck on a locked wallet
// and the queue full, Append waits for room only until its context ends;
// once the lock goes, everything queued commits.
func TestQueueFullWaitsForContext(t *testing.T) {
	s, dsn := openTest(t, Options{QueueSize: 1, MaxBatch: 1, CommitTimeout: 30 * time.Second})
	ctx := testCtx(t)
	accts := make([]*acct, 3)
	for i := range accts {
		accts[i] = newAcct(t, string(rune('a'+i)), "EUR")
		accts[i].deposit(t, "d1", "1.00")
		mustAppend(t, s, accts[i].write())
	}
	// Another session holds wallet a's row: the writer's batch for a waits.
	locker := sqlConn(t, dsn)
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT * FROM wallets WHERE player_id = 'a' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	results := make(chan error, 2)
	appendAsync := func(a *acct) {
		a.deposit(t, "d2", "1.00")
		w := a.write()
		go func() { results <- s.Append(ctx, w) }()
	}
	// a's batch is in flight, blocked on the lock; then b's write fills the
	// queue.
	appendAsync(accts[0])
	watch := sqlConn(t, dsn)
	waitFor(t, 10*time.Second, "a's batch to wait on the lock", func() bool {
		var n int
		err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'WITH w AS%'`).Scan(&n)
		return err == nil && n > 0
	})
	appendAsync(accts[1])
	waitFor(t, 10*time.Second, "the queue to fill", func() bool { return len(s.writers[0].queue) == 1 })

	c := accts[2]
	c.deposit(t, "d2", "1.00")
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = s.Append(short, c.write())
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "queue full") {
		t.Fatalf("append to a full queue: %v, want a queue-full deadline error", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("append to a full queue took %v", took)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-results; err != nil {
			t.Errorf("queued append: %v", err)
		}
	}
}

func mustParse(t testing.TB, s string) wallet.Amount {
	t.Helper()
	a, err := wallet.ParseStored(s, eur)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
