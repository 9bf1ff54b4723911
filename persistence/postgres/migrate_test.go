package postgres

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/walletd/walletd/actors"
	"github.com/walletd/walletd/internal/pgtest"
	"github.com/walletd/walletd/wallet"
)

func TestMigrateConcurrentAndIdempotent(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := testCtx(t)
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}

	// Two servers starting at once: both succeed, each migration once.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	start := make(chan struct{})
	for i := range errs {
		wg.Go(func() {
			<-start
			errs[i] = Migrate(ctx, dsn)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("migrator %d: %v", i, err)
		}
	}
	// And again, sequentially: nothing to do.
	if err := Migrate(ctx, dsn); err != nil {
		t.Fatalf("third migrate: %v", err)
	}
	c := sqlConn(t, dsn)
	var n, distinct int
	if err := c.QueryRow(ctx, "SELECT count(*), count(DISTINCT version) FROM schema_migrations").Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != len(ms) || distinct != len(ms) {
		t.Fatalf("schema_migrations holds %d rows (%d versions), want %d", n, distinct, len(ms))
	}
	s := openOn(t, dsn, Options{})
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("ready after migrations: %v", err)
	}

	// A shipped migration that was edited is refused, not half-applied.
	exec(t, c, "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
	if err := Migrate(ctx, dsn); err == nil || !strings.Contains(err.Error(), "changed after it was applied") {
		t.Fatalf("migrate over an edited migration: %v", err)
	}
}

func TestMigrateUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*1e9)
	defer cancel()
	if err := Migrate(ctx, "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"); err == nil {
		t.Fatal("migrate of an unreachable server succeeded")
	}
}

// TestUpgradeToByteOrderKeys: a database written under the first schema is
// migrated to byte-order ("C") keys with its data intact: the wallet loads
// with its balance, a reused tx_id is still refused by the rebuilt unique
// index, and Verify finds nothing wrong.
func TestUpgradeToByteOrderKeys(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := testCtx(t)
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 2 || ms[1].version != 2 {
		t.Fatalf("migrations %v: want 0002 after 0001", ms)
	}
	c := sqlConn(t, dsn)
	if err := applyMigrations(ctx, c, ms[:1]); err != nil {
		t.Fatal(err)
	}
	// Mixed case, where a linguistic and a byte order differ.
	const id = "Spieler-a"
	exec(t, c, `INSERT INTO wallets (player_id, currency, version, balance, created_at) VALUES ($1, 'EUR', 2, 7.50, now())`, id)
	exec(t, c, `INSERT INTO journal (player_id, seq, tx_id, kind, amount, balance_after, round_id, bet_key, created_at) VALUES
		($1, 1, 'Dep-1', 'deposit', 10.00, 10.00, '', NULL, now()),
		($1, 2, 'wette-B', 'bet', 2.50, 7.50, 'Runde-1', 'wette-B', now())`, id)

	if err := Migrate(ctx, dsn); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	var notC []string
	rows, err := c.Query(ctx, `SELECT a.attrelid::regclass || '.' || a.attname FROM pg_attribute a
		JOIN pg_collation k ON k.oid = a.attcollation
		WHERE (a.attrelid, a.attname) IN (('wallets'::regclass, 'player_id'), ('snapshots'::regclass, 'player_id'),
			('journal'::regclass, 'player_id'), ('journal'::regclass, 'tx_id'), ('journal'::regclass, 'round_id'),
			('journal'::regclass, 'ref_tx_id'), ('journal'::regclass, 'bet_key'))
		AND k.collname <> 'C'`)
	if err != nil {
		t.Fatal(err)
	}
	notC, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(notC) != 0 {
		t.Fatalf("key columns not in byte order after the upgrade: %v %v", notC, err)
	}

	s := openOn(t, dsn, Options{})
	a := newAcct(t, id, "EUR")
	if err := a.reload(ctx, s); err != nil {
		t.Fatalf("load after the upgrade: %v", err)
	}
	if got := a.st.Balance().String(); got != "7.50" || a.stored != 2 {
		t.Fatalf("after the upgrade: balance %s version %d, want 7.50 at 2", got, a.stored)
	}
	// The bet's tx_id is in the journal: a write reusing it (which the
	// wallet would only make after forgetting it) is refused.
	a.apply(t, wallet.Command{Kind: wallet.KindDeposit, TxID: "dep-2", Amount: "1.00"})
	w := a.write()
	w.Events[0].TxID = "wette-B"
	var kerr *actors.KeyExistsError
	if err := s.Append(ctx, w); !errors.As(err, &kerr) {
		t.Fatalf("append reusing a tx_id after the upgrade: %v", err)
	}
	if problems, err := s.Verify(ctx); err != nil || len(problems) != 0 {
		t.Fatalf("verify after the upgrade: %v %v", problems, err)
	}
}
