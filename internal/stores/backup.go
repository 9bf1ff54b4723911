package stores

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/walletd/walletd/internal/config"
	"github.com/walletd/walletd/persistence/backup"
	"github.com/walletd/walletd/persistence/postgres"
	"github.com/walletd/walletd/persistence/sqlite"
)

// Kind names the store the configuration selects, as Store.Kind does.
func Kind(cfg config.Config) string {
	if cfg.PGDSN != "" {
		return backup.SourcePostgres
	}
	return backup.SourceEmbedded
}

// Backup writes a backup of the configured store to out (see
// persistence/backup for the format). It runs beside a serving walletd and
// never opens the store for writing: the embedded store is read through a
// read-only connection without its folder lock, Postgres in one read-only
// transaction. walletdVersion goes into the header.
func Backup(ctx context.Context, cfg config.Config, out io.Writer, walletdVersion string) (backup.Trailer, error) {
	if cfg.PGDSN != "" {
		return postgres.Backup(ctx, cfg.PGDSN, out, walletdVersion)
	}
	return sqlite.Backup(ctx, cfg.DataDir, out, walletdVersion)
}

// ErrVerify: the restore committed, but Verify found problems in the
// restored store (listed in Restored.Problems).
var ErrVerify = errors.New("the restored store does not verify")

// Restored is what RestoreFile did.
type Restored struct {
	Kind     string // the target store
	Header   backup.Header
	Counts   backup.Counts
	Problems []string // Verify's findings after the restore; empty when clean
}

// RestoreFile restores the backup in path into the configured store, which
// must be empty:
//
//  1. the whole file is read and checked first (backup.Check: header,
//     records, trailer counts and checksum), so a damaged backup is refused
//     before the store is even opened;
//  2. the store is opened (the embedded one takes its folder lock, so
//     walletd must be stopped) and the backup loaded in one transaction,
//     which the store refuses unless it is empty, and commits only after
//     reading the file to its trailer once more;
//  3. Verify runs on the restored store; any finding fails the restore with
//     ErrVerify (the data stays, for the operator to inspect).
func RestoreFile(ctx context.Context, cfg config.Config, path string) (Restored, error) {
	res := Restored{Kind: Kind(cfg)}
	f, err := os.Open(path)
	if err != nil {
		return res, err
	}
	defer f.Close()
	h, tr, err := backup.Check(f)
	if err != nil {
		return res, fmt.Errorf("%s: %w (nothing was written)", path, err)
	}
	res.Header = h
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return res, err
	}
	r, err := backup.NewReader(f)
	if err != nil {
		return res, fmt.Errorf("%s: %w (nothing was written)", path, err)
	}

	st, err := Open(ctx, cfg, Hooks{})
	if err != nil {
		return res, err
	}
	defer st.Close()
	if res.Counts, err = st.Restore(ctx, r); err != nil {
		return res, err
	}
	if res.Counts != tr.Counts {
		// Both passes checked the same trailer; this would be a bug.
		return res, fmt.Errorf("restored %v, the backup's trailer says %v", res.Counts, tr.Counts)
	}
	if res.Problems, err = st.Verify(ctx); err != nil {
		return res, fmt.Errorf("verify after the restore: %w", err)
	}
	if len(res.Problems) > 0 {
		return res, fmt.Errorf("%w: %d problem(s)", ErrVerify, len(res.Problems))
	}
	return res, st.Close()
}
