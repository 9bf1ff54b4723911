package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/walletd/walletd/wallet"
)

// Problem is one inconsistency found by Verify.
type Problem struct {
	PlayerID string
	Detail   string
}

func (p Problem) String() string { return p.PlayerID + ": " + p.Detail }

// verifyPage is how many wallet ids Verify reads at a time.
const verifyPage = 512

// Verify replays every wallet's journal with the wallet domain and reports
// where the store disagrees with it: a sequence that does not run 1, 2, 3…,
// an event whose balance does not follow, a negative balance, a wallet row
// whose version or balance is not its journal's, a snapshot that is not the
// state at its version, journal rows or snapshots of no wallet.
//
// It reads one wallet at a time, each in its own read transaction (a long
// one would hold back WAL checkpoints), so it runs beside live traffic; a
// wallet is checked as of one moment. The error is for failures to read,
// not for what was found.
func (s *Store) Verify(ctx context.Context) ([]Problem, error) {
	if s.isClosed.Load() {
		return nil, ErrClosed
	}
	var problems []Problem
	after := ""
	for {
		ids, err := s.walletPage(ctx, after)
		if err != nil {
			return problems, err
		}
		for _, id := range ids {
			ps, err := s.verifyWallet(ctx, id)
			if err != nil {
				return problems, err
			}
			problems = append(problems, ps...)
		}
		if len(ids) < verifyPage {
			break
		}
		after = ids[len(ids)-1]
	}
	orphans, err := s.orphans(ctx)
	return append(problems, orphans...), err
}

func (s *Store) walletPage(ctx context.Context, after string) ([]string, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT player_id FROM wallets WHERE player_id > ? ORDER BY player_id LIMIT ?`, after, verifyPage)
	if err != nil {
		return nil, fmt.Errorf("sqlite: verify: list wallets: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("sqlite: verify: list wallets: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: verify: list wallets: %w", err)
	}
	return ids, nil
}

// verifyWallet checks one wallet, streaming its journal through the wallet
// domain's Replay (what wallet.Rebuild does, without holding the events).
func (s *Store) verifyWallet(ctx context.Context, id string) (_ []Problem, err error) {
	var problems []Problem
	report := func(format string, args ...any) {
		problems = append(problems, Problem{PlayerID: id, Detail: fmt.Sprintf(format, args...)})
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sqlite: verify %s: %w", id, err)
	}
	defer func() { _ = tx.Rollback() }()

	var code, balance string
	var version int64
	if err := tx.QueryRowContext(ctx, `SELECT currency, version, balance FROM wallets WHERE player_id = ?`, id).Scan(&code, &version, &balance); err != nil {
		return nil, fmt.Errorf("sqlite: verify %s: %w", id, err)
	}
	c, ok := wallet.LookupCurrency(code)
	if !ok {
		report("unknown currency %q", code)
		return problems, nil
	}
	stored, err := wallet.ParseStored(balance, c)
	if err != nil {
		report("wallet balance: %v", err)
		return problems, nil
	}
	if stored.Sign() < 0 {
		report("negative wallet balance %s", stored)
	}

	var sn *wallet.Snapshot
	var snVersion int64
	var snData string
	switch err := tx.QueryRowContext(ctx, `SELECT version, data FROM snapshots WHERE player_id = ?`, id).Scan(&snVersion, &snData); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("sqlite: verify %s: read snapshot: %w", id, err)
	default:
		sn = new(wallet.Snapshot)
		if err := json.Unmarshal([]byte(snData), sn); err != nil {
			report("undecodable snapshot: %v", err)
			sn = nil
		} else if sn.Version != uint64(snVersion) {
			report("snapshot says version %d, its row %d", sn.Version, snVersion)
			sn = nil
		}
	}

	rows, err := tx.StmtContext(ctx, s.rs.tail).QueryContext(ctx, id, int64(0))
	if err != nil {
		return nil, fmt.Errorf("sqlite: verify %s: %w", id, err)
	}
	defer rows.Close()
	st := wallet.New(c, wallet.DefaultLimits)
	if sn != nil && sn.Version == 0 {
		checkSnapshot(st, sn, report)
	}
	broken := false
	for rows.Next() {
		ev, err := scanEvent(rows, c)
		if err != nil {
			report("unreadable event after seq %d: %v", st.Version(), err)
			broken = true
			break
		}
		if ev.Seq != st.Version()+1 {
			report("sequence gap: seq %d follows %d", ev.Seq, st.Version())
			broken = true
			break
		}
		if err := st.Replay(ev); err != nil {
			report("replay: %v", err)
			broken = true
			break
		}
		if sn != nil && ev.Seq == sn.Version {
			checkSnapshot(st, sn, report)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: verify %s: %w", id, err)
	}
	if broken {
		return problems, nil
	}
	if sn != nil && sn.Version > st.Version() {
		report("snapshot at version %d is past the journal's end %d", sn.Version, st.Version())
	}
	if st.Version() != uint64(version) {
		report("wallet version %d, journal ends at %d", version, st.Version())
	}
	if st.Balance().Cmp(stored) != 0 {
		report("wallet balance %s, journal sums to %s", stored, st.Balance())
	}
	return problems, nil
}

// checkSnapshot compares a stored snapshot with the replayed state at its
// version. A wallet forgets open bets older than its retention, so its
// snapshots may hold fewer open bets than a full replay: only those it does
// hold must match.
func checkSnapshot(st *wallet.State, sn *wallet.Snapshot, report func(string, ...any)) {
	want := st.Snapshot()
	if sn.Currency != want.Currency || sn.Balance != want.Balance {
		report("snapshot at %d holds %s %s, the journal %s %s", sn.Version, sn.Balance, sn.Currency, want.Balance, want.Currency)
	}
	open := make(map[string]wallet.SnapshotBet, len(want.OpenBets))
	for _, b := range want.OpenBets {
		open[b.TxID] = b
	}
	for _, b := range sn.OpenBets {
		o, ok := open[b.TxID]
		if !ok || o.Seq != b.Seq || o.Amount != b.Amount || o.Round != b.Round {
			report("snapshot at %d has open bet %s (seq %d, %s, round %s) that the journal does not", sn.Version, b.TxID, b.Seq, b.Amount, b.Round)
		}
	}
}

// orphans finds journal rows and snapshots whose wallet row is missing.
func (s *Store) orphans(ctx context.Context) ([]Problem, error) {
	rows, err := s.rdb.QueryContext(ctx, `
		SELECT DISTINCT j.player_id, 'journal rows without a wallet' FROM journal j
			WHERE NOT EXISTS (SELECT 1 FROM wallets w WHERE w.player_id = j.player_id)
		UNION ALL
		SELECT s.player_id, 'snapshot without a wallet' FROM snapshots s
			WHERE NOT EXISTS (SELECT 1 FROM wallets w WHERE w.player_id = s.player_id)`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: verify: orphans: %w", err)
	}
	defer rows.Close()
	var problems []Problem
	for rows.Next() {
		var p Problem
		if err := rows.Scan(&p.PlayerID, &p.Detail); err != nil {
			return nil, fmt.Errorf("sqlite: verify: orphans: %w", err)
		}
		problems = append(problems, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: verify: orphans: %w", err)
	}
	return problems, nil
}
