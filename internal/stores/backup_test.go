package stores

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/walletd/walletd/internal/config"
	"github.com/walletd/walletd/internal/pgtest"
	"github.com/walletd/walletd/persistence/backup"
	"github.com/walletd/walletd/persistence/backup/backuptest"
	"github.com/walletd/walletd/wallet"
)

func embedded(t *testing.T) config.Config {
	return config.Config{DataDir: filepath.Join(t.TempDir(), "data")}
}

func pg(t *testing.T) config.Config {
	return config.Config{PGDSN: pgtest.DSN(t)}
}

func open(t *testing.T, cfg config.Config) Store {
	t.Helper()
	st, err := Open(t.Context(), cfg, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// backupFile backs the store of cfg up into a file and returns its path.
func backupFile(t *testing.T, cfg config.Config) string {
	t.Helper()
	var buf bytes.Buffer
	if _, err := Backup(t.Context(), cfg, &buf, "test"); err != nil {
		t.Fatalf("backup of the %s store: %v", Kind(cfg), err)
	}
	path := filepath.Join(t.TempDir(), "backup.jsonl.gz")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func read(t *testing.T, path string) backuptest.Contents {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return backuptest.ReadBytes(t, b)
}

// TestAcrossStores moves a store from the embedded store to Postgres and
// back — the path from a laptop to production — and finds the very same
// records at each step (to Postgres's microsecond), each restored store
// verifying clean and loading every wallet as the source did.
func TestAcrossStores(t *testing.T) {
	laptop := embedded(t)
	src := open(t, laptop)
	want := backuptest.Fill(t, t.Context(), src, 16)
	first := backupFile(t, laptop)
	orig := read(t, first)
	backuptest.CheckWants(t, orig, want)

	prod := pg(t)
	res, err := RestoreFile(t.Context(), prod, first)
	if err != nil {
		t.Fatalf("embedded → postgres: %v (%v)", err, res.Problems)
	}
	if res.Kind != "postgres" || res.Counts != orig.Trailer.Counts || res.Header.Source != "embedded" {
		t.Fatalf("embedded → postgres: %+v", res)
	}
	second := backupFile(t, prod)
	inPG := read(t, second)
	if inPG.Header.Source != "postgres" {
		t.Fatalf("header %+v", inPG.Header)
	}
	backuptest.Compare(t, inPG, orig, time.Microsecond)

	back := embedded(t)
	res, err = RestoreFile(t.Context(), back, second)
	if err != nil {
		t.Fatalf("postgres → embedded: %v (%v)", err, res.Problems)
	}
	backuptest.Compare(t, read(t, backupFile(t, back)), inPG, time.Nanosecond)

	pgStore, backStore := open(t, prod), open(t, back)
	for id := range want {
		a, err := pgStore.Load(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		b, err := backStore.Load(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		a.Wallet.CreatedAt, b.Wallet.CreatedAt = a.Wallet.CreatedAt.UTC(), b.Wallet.CreatedAt.UTC()
		if !reflect.DeepEqual(normalize(a.Tail), normalize(b.Tail)) || !reflect.DeepEqual(a.Snapshot, b.Snapshot) || a.Wallet != b.Wallet {
			t.Fatalf("%s: postgres loads %+v, the embedded store %+v", id, a, b)
		}
	}
}

// TestRestoreFileRefusals: a damaged file is refused before the store is
// even opened (no data folder appears), a non-empty store is refused, and
// a backup whose journals do not add up restores but fails with ErrVerify.
func TestRestoreFileRefusals(t *testing.T) {
	for _, kind := range []string{"embedded", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			target := func() config.Config {
				if kind == "postgres" {
					return pg(t)
				}
				return embedded(t)
			}
			srcCfg := target()
			src := open(t, srcCfg)
			backuptest.Fill(t, t.Context(), src, 4)
			if err := src.Close(); err != nil { // as walletd would be, for a restore
				t.Fatal(err)
			}
			good := backupFile(t, srcCfg)
			goodBytes, _ := os.ReadFile(good)

			for name, bad := range backuptest.Corruptions(t, goodBytes) {
				path := filepath.Join(t.TempDir(), "bad.jsonl.gz")
				if err := os.WriteFile(path, bad, 0o600); err != nil {
					t.Fatal(err)
				}
				cfg := target()
				if _, err := RestoreFile(t.Context(), cfg, path); !errors.Is(err, backup.ErrCorrupt) {
					t.Fatalf("%s: %v, want ErrCorrupt", name, err)
				}
				if kind == "embedded" {
					if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
						t.Fatalf("%s: the refused restore created %s", name, cfg.DataDir)
					}
				}
			}

			// Into the source itself: not empty.
			if _, err := RestoreFile(t.Context(), srcCfg, good); !errors.Is(err, backup.ErrNotEmpty) {
				t.Fatalf("restore into a non-empty store: %v, want ErrNotEmpty", err)
			}

			// Well-formed, but the balance is not what the journal says.
			var buf bytes.Buffer
			w, err := backup.NewWriter(&buf, backup.Header{Source: "embedded"})
			if err != nil {
				t.Fatal(err)
			}
			_ = w.Wallet(backup.Wallet{PlayerID: "p", Currency: "EUR", Version: 1, Balance: "9.00", CreatedAt: time.Now()})
			_ = w.Event(backup.Event{PlayerID: "p", Seq: 1, TxID: "t", Kind: "deposit", Amount: "1.00", BalanceAfter: "1.00", CreatedAt: time.Now()})
			if _, err := w.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "odd.jsonl.gz")
			if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			res, err := RestoreFile(t.Context(), target(), path)
			if !errors.Is(err, ErrVerify) || len(res.Problems) == 0 {
				t.Fatalf("restore of inconsistent data: %v %v, want ErrVerify with problems", err, res.Problems)
			}
			t.Logf("verify found: %v", res.Problems)
		})
	}
}

// normalize puts event times in UTC: drivers differ in the location they
// return, not in the instant.
func normalize(evs []wallet.Event) []wallet.Event {
	out := make([]wallet.Event, len(evs))
	for i, ev := range evs {
		ev.At = ev.At.UTC()
		out[i] = ev
	}
	return out
}
