package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultPGDSN is the Postgres server make bench uses: local, user postgres,
// trust authentication.
const DefaultPGDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// TempDatabase is a database created for one benchmark invocation.
type TempDatabase struct {
	DSN    string // names the new database
	server string
	name   string
}

// CreateDatabase creates walletbench_<label>_<random> on the server named by
// serverDSN (whose own database is only used to create and drop).
func CreateDatabase(ctx context.Context, serverDSN, label string) (*TempDatabase, error) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "walletbench_" + label + "_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, serverDSN)
	if err != nil {
		return nil, fmt.Errorf("connect to Postgres at %s: %w", redactDSN(serverDSN), err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return nil, fmt.Errorf("create database %s: %w", name, err)
	}
	dsn, err := withDatabase(serverDSN, name)
	if err != nil {
		return nil, err
	}
	return &TempDatabase{DSN: dsn, server: serverDSN, name: name}, nil
}

// Drop drops the database, forcing off any connection left.
func (d *TempDatabase) Drop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.server)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+d.name+" WITH (FORCE)")
	return err
}

// PostgresVersion asks the server its version ("PostgreSQL 15.20 …").
func PostgresVersion(ctx context.Context, serverDSN string) (string, error) {
	conn, err := pgx.Connect(ctx, serverDSN)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var v string
	err = conn.QueryRow(ctx, "SELECT version()").Scan(&v)
	return v, err
}

// withDatabase returns dsn naming database name instead of its own.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse the Postgres DSN: %w", err)
		}
		u.Path = "/" + name
		return u.String(), nil
	}
	return dsn + " dbname=" + name, nil // keyword/value: the last setting wins
}

// redactDSN hides a password in a URL DSN.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Checkpoint asks the server for a checkpoint, so that each system starts
// with the same clean write-ahead log rather than paying for the previous
// system's dirty pages. Best effort: it needs a superuser.
func Checkpoint(ctx context.Context, serverDSN string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, serverDSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "CHECKPOINT")
	return err
}
