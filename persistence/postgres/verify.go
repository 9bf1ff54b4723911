package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Problem is an inconsistency Verify found in one wallet.
type Problem struct {
	PlayerID string
	Detail   string
}

// maxProblems bounds what Verify returns: past that many, the store needs a
// person, not a longer list.
const maxProblems = 10_000

// verifyWalletsSQL checks each wallet against its journal in one pass over
// the journal's primary key (already in (player_id, seq) order, so the window
// and the grouping need no sort): the balance is the sum of the signed
// amounts and the last balance_after, the sequence is 1..version without a
// gap (count = max = version, min = 1; the key forbids duplicates), and every
// entry's balance_after follows the one before it. A journal without a
// wallet row shows up through the full join.
const verifyWalletsSQL = `WITH ev AS (
	SELECT player_id, seq, amount, balance_after,
		journal_delta(kind, amount) AS delta,
		lag(balance_after, 1, 0::numeric) OVER (PARTITION BY player_id ORDER BY seq) AS prev_after
	FROM journal
),
j AS (
	SELECT player_id, count(*) AS n, min(seq) AS min_seq, max(seq) AS max_seq, sum(delta) AS total,
		count(*) FILTER (WHERE balance_after < 0 OR amount < 0) AS negative,
		min(seq) FILTER (WHERE balance_after <> prev_after + delta) AS first_break
	FROM ev GROUP BY player_id
),
v AS (
	SELECT coalesce(w.player_id, j.player_id) AS id, w.player_id IS NOT NULL AS wallet_exists,
		coalesce(w.version, 0) AS version, coalesce(w.balance, 0) AS balance,
		coalesce(j.n, 0) AS n, coalesce(j.min_seq, 0) AS min_seq, coalesce(j.max_seq, 0) AS max_seq,
		coalesce(j.total, 0) AS total, l.balance_after AS last_after,
		coalesce(j.negative, 0) AS negative, j.first_break
	FROM wallets w FULL JOIN j ON j.player_id = w.player_id
	LEFT JOIN journal l ON l.player_id = j.player_id AND l.seq = j.max_seq
)
SELECT id, wallet_exists, version, balance::text, n, min_seq, max_seq, total::text, last_after::text,
	balance < 0, balance <> total, coalesce(last_after <> balance, false), negative, first_break
FROM v
WHERE NOT wallet_exists OR balance < 0 OR balance <> total
	OR n <> version OR (n > 0 AND (min_seq <> 1 OR max_seq <> n OR last_after <> balance))
	OR negative > 0 OR first_break IS NOT NULL
ORDER BY id
LIMIT 10001` // maxProblems+1

// verifySnapshotsSQL checks each snapshot against the wallet and the journal
// entry at its version.
const verifySnapshotsSQL = `SELECT s.player_id, s.version, coalesce(w.version, -1), s.data->>'balance',
	coalesce(j.balance_after::text, CASE WHEN s.version = 0 THEN '0' END)
FROM snapshots s
LEFT JOIN wallets w ON w.player_id = s.player_id
LEFT JOIN journal j ON j.player_id = s.player_id AND j.seq = s.version
WHERE w.player_id IS NULL OR s.version > w.version
	OR (s.data->>'version')::bigint IS DISTINCT FROM s.version
	OR (s.data->>'balance')::numeric IS DISTINCT FROM coalesce(j.balance_after, CASE WHEN s.version = 0 THEN 0 END)
ORDER BY 1
LIMIT 10001` // maxProblems+1

// Verify checks the whole store in SQL, without loading the journal into Go:
// every wallet's balance equals the sum of its journal and its last
// balance_after, its sequence is contiguous from 1 to its version, no
// balance is negative, each entry follows the previous one, and snapshots
// agree with the journal. It reads one consistent snapshot of the database,
// so it can run on a live store. It returns at most 10,000 problems.
func (s *Store) Verify(ctx context.Context) ([]Problem, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	var problems []Problem
	err := func() error {
		tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return err
		}
		defer tx.Rollback(context.Background()) // read-only: nothing to undo

		rows, err := tx.Query(ctx, verifyWalletsSQL)
		if err != nil {
			return err
		}
		var (
			id                                  string
			exists, negBalance, sumOff, lastOff bool
			version, n, minSeq, maxSeq, negs    int64
			balance, total                      string
			lastAfter                           *string
			firstBreak                          *int64
		)
		scan := []any{&id, &exists, &version, &balance, &n, &minSeq, &maxSeq, &total, &lastAfter, &negBalance, &sumOff, &lastOff, &negs, &firstBreak}
		_, err = pgx.ForEachRow(rows, scan, func() error {
			add := func(format string, args ...any) {
				problems = append(problems, Problem{PlayerID: id, Detail: fmt.Sprintf(format, args...)})
			}
			if !exists {
				add("the journal holds %d entries of a wallet that does not exist", n)
				return nil
			}
			if negBalance {
				add("balance %s is negative", balance)
			}
			if sumOff {
				add("balance %s, but the journal sums to %s", balance, total)
			}
			if n != version || (n > 0 && (minSeq != 1 || maxSeq != n)) {
				add("version %d, but the journal holds %d entries, seq %d..%d", version, n, minSeq, maxSeq)
			}
			if lastOff {
				add("balance %s, but the last entry (seq %d) says %s", balance, maxSeq, str(lastAfter))
			}
			if negs > 0 {
				add("%d journal entries have a negative amount or balance", negs)
			}
			if firstBreak != nil {
				add("entry seq %d does not follow the balance before it", *firstBreak)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("wallets: %w", err)
		}

		rows, err = tx.Query(ctx, verifySnapshotsSQL)
		if err != nil {
			return err
		}
		var (
			snapVer, walletVer int64
			snapBal, want      *string
		)
		_, err = pgx.ForEachRow(rows, []any{&id, &snapVer, &walletVer, &snapBal, &want}, func() error {
			problems = append(problems, Problem{PlayerID: id, Detail: fmt.Sprintf(
				"snapshot at version %d (wallet at %d) says balance %s, journal says %s", snapVer, walletVer, str(snapBal), str(want))})
			return nil
		})
		if err != nil {
			return fmt.Errorf("snapshots: %w", err)
		}
		return tx.Commit(ctx)
	}()
	if err != nil {
		return nil, fmt.Errorf("postgres: verify: %w", err)
	}
	if len(problems) > maxProblems {
		problems = append(problems[:maxProblems], Problem{Detail: "more problems not listed"})
	}
	return problems, nil
}

func str(s *string) string {
	if s == nil {
		return "nothing"
	}
	return *s
}
