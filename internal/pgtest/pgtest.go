// Package pgtest gives tests a fresh Postgres database of their own.
//
// The server is named by the environment variable WALLET_TEST_PG_DSN (a
// postgres:// URL; default: the local server with user postgres). When it
// cannot be reached, tests that need it are skipped with a loud message, or
// fail when CI=true, so a CI run can never pass by skipping them.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// warnOnce: the unreachable-server banner is printed once per test binary.
var warnOnce sync.Once

// DefaultDSN is the server used when WALLET_TEST_PG_DSN is not set.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// ServerDSN returns the DSN of the test server (the database it names is only
// used to create and drop test databases).
func ServerDSN() string {
	if dsn := os.Getenv("WALLET_TEST_PG_DSN"); dsn != "" {
		return dsn
	}
	return DefaultDSN
}

// DSN creates a database walletd_test_<random> on the test server, drops it
// when the test ends, and returns a DSN naming it. Close every connection to
// it before the test ends (t.Cleanup runs last-registered first, so a store
// closed in a cleanup registered after DSN is fine); the drop forces any
// leftover ones off.
func DSN(t testing.TB) string {
	t.Helper()
	server := ServerDSN()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		msg := fmt.Sprintf("\n%s\n!!! POSTGRES UNREACHABLE at %s: %v\n!!! Postgres tests are NOT running. Start Postgres or set WALLET_TEST_PG_DSN.\n%s",
			strings.Repeat("!", 78), redact(server), err, strings.Repeat("!", 78))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		// A skip's message only shows with -v: say it on stderr too, once
		// per test binary, so a plain `go test` run cannot miss it.
		warnOnce.Do(func() { fmt.Fprintln(os.Stderr, msg) })
		t.Skip(msg)
	}
	defer conn.Close(context.Background())

	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("pgtest: random name: %v", err)
	}
	name := "walletd_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Errorf("pgtest: drop database %s: connect: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	dsn, err := withDatabase(server, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dsn
}

// withDatabase returns dsn naming database name instead of its own.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse WALLET_TEST_PG_DSN: %w", err)
		}
		u.Path = "/" + name
		return u.String(), nil
	}
	// keyword/value form: a later setting overrides an earlier one.
	return dsn + " dbname=" + name, nil
}

// redact hides a password in a URL DSN for messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
