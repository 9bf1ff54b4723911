package postgres

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/walletd/walletd/internal/pgtest"
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
