// Package naive is the baseline walletd is measured against: the design most
// Postgres wallets use, one transaction per bet that locks the wallet row
// (SELECT … FOR UPDATE), checks the balance, inserts a journal row and
// updates the balance. It is correct — exactly once per tx_id, balances never
// negative — and contended: every bet on a wallet waits for the previous
// one's commit. It exists only for benchmarks.
package naive

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/apd/v3"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

const schema = `
CREATE TABLE IF NOT EXISTS naive_wallets (
	player_id text PRIMARY KEY,
	currency  text NOT NULL,
	balance   numeric NOT NULL CHECK (balance >= 0),
	version   bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS naive_journal (
	player_id     text NOT NULL,
	seq           bigint NOT NULL,
	tx_id         text NOT NULL,
	kind          text NOT NULL,
	amount        numeric NOT NULL,
	balance_after numeric NOT NULL,
	created_at    timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (player_id, seq),
	UNIQUE (player_id, tx_id)
);
-- ref_tx_id: the bet a win settles or a rollback refunds. One rollback per bet.
ALTER TABLE naive_journal ADD COLUMN IF NOT EXISTS ref_tx_id text;
CREATE UNIQUE INDEX IF NOT EXISTS naive_journal_one_rollback ON naive_journal (player_id, ref_tx_id) WHERE kind = 'rollback';`

// Errors of the baseline, as the HTTP contract names them.
var (
	ErrInsufficientFunds = errors.New("INSUFFICIENT_FUNDS")
	ErrNotFound          = errors.New("WALLET_NOT_FOUND")
	ErrBetNotFound       = errors.New("BET_NOT_FOUND")
	ErrRolledBack        = errors.New("BET_ROLLED_BACK")
)

// Wallet is the naive wallet service.
type Wallet struct {
	pool *pgxpool.Pool
}

// Open connects with a pool of maxConns connections and creates the tables.
func Open(ctx context.Context, dsn string, maxConns int) (*Wallet, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = int32(maxConns)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := pool.Exec(ctx, schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("naive schema: %w", err)
	}
	return &Wallet{pool: pool}, nil
}

// Close releases the pool.
func (w *Wallet) Close() { w.pool.Close() }

// Reset empties the tables (between benchmark runs).
func (w *Wallet) Reset(ctx context.Context) error {
	_, err := w.pool.Exec(ctx, `TRUNCATE naive_wallets, naive_journal`)
	return err
}

// Open creates a wallet with a starting balance (a decimal string).
func (w *Wallet) Create(ctx context.Context, playerID, currency, balance string) error {
	_, err := w.pool.Exec(ctx, `INSERT INTO naive_wallets (player_id, currency, balance, version) VALUES ($1, $2, $3::numeric, 0)
		ON CONFLICT (player_id) DO NOTHING`, playerID, currency, balance)
	return err
}

// Result of one transaction.
type Result struct {
	Amount    string // the transaction's amount (a rollback: the refund)
	Balance   string
	Version   int64
	Duplicate bool
}

// Debit applies a bet (or withdrawal) of amount: one transaction, the wallet
// row locked for its whole duration.
func (w *Wallet) Debit(ctx context.Context, playerID, txID, kind, amount string) (Result, error) {
	return w.apply(ctx, playerID, txID, kind, "-"+amount, "", nil)
}

// Credit applies a win or deposit.
func (w *Wallet) Credit(ctx context.Context, playerID, txID, kind, amount string) (Result, error) {
	return w.apply(ctx, playerID, txID, kind, amount, "", nil)
}

// CreditRef is Credit for a win that names the bet it settles (recorded, not
// checked: the baseline keeps only the rules the benchmark exercises).
func (w *Wallet) CreditRef(ctx context.Context, playerID, txID, kind, amount, ref string) (Result, error) {
	return w.apply(ctx, playerID, txID, kind, amount, ref, nil)
}

// Rollback refunds the bet refTxID: the same transaction shape as a bet (row
// lock, duplicate check, journal insert, balance update) plus a read of the
// bet. A second rollback of one bet is refused by a unique index.
func (w *Wallet) Rollback(ctx context.Context, playerID, txID, refTxID string) (Result, error) {
	return w.apply(ctx, playerID, txID, "rollback", "", refTxID, func(ctx context.Context, tx pgx.Tx) (string, error) {
		var amount string
		err := tx.QueryRow(ctx, `SELECT amount::text FROM naive_journal WHERE player_id = $1 AND tx_id = $2 AND kind = 'bet'`, playerID, refTxID).Scan(&amount)
		if errors.Is(err, pgx.ErrNoRows) {
			return "", ErrBetNotFound
		}
		return amount, err
	})
}

// apply runs one money transaction. delta is the signed amount, or empty
// when refund (a rollback) reads it inside the transaction.
func (w *Wallet) apply(ctx context.Context, playerID, txID, kind, delta, ref string, refund func(context.Context, pgx.Tx) (string, error)) (Result, error) {
	var res Result
	err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		var balance string
		if err := tx.QueryRow(ctx, `SELECT balance::text, version FROM naive_wallets WHERE player_id = $1 FOR UPDATE`, playerID).Scan(&balance, &res.Version); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		// A retry: the journal already has the tx_id.
		var seq int64
		switch err := tx.QueryRow(ctx, `SELECT seq FROM naive_journal WHERE player_id = $1 AND tx_id = $2`, playerID, txID).Scan(&seq); {
		case err == nil:
			res.Balance, res.Version, res.Duplicate = balance, seq, true
			return tx.QueryRow(ctx, `SELECT amount::text FROM naive_journal WHERE player_id = $1 AND seq = $2`, playerID, seq).Scan(&res.Amount)
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		if refund != nil {
			amount, err := refund(ctx, tx)
			if err != nil {
				return err
			}
			delta = amount
		}
		after, sign, err := add(balance, delta)
		if err != nil {
			return err
		}
		if sign < 0 {
			return ErrInsufficientFunds
		}
		res.Version++
		amount := delta
		if amount[0] == '-' {
			amount = amount[1:]
		}
		var refArg any
		if ref != "" {
			refArg = ref
		}
		if _, err := tx.Exec(ctx, `INSERT INTO naive_journal (player_id, seq, tx_id, kind, amount, balance_after, ref_tx_id) VALUES ($1, $2, $3, $4, $5::numeric, $6::numeric, $7)`,
			playerID, res.Version, txID, kind, amount, after, refArg); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "23505" {
				if pe.ConstraintName == "naive_journal_one_rollback" {
					return ErrRolledBack
				}
				return fmt.Errorf("naive: concurrent duplicate %s: %w", txID, err)
			}
			return err
		}
		res.Amount = amount
		if _, err := tx.Exec(ctx, `UPDATE naive_wallets SET balance = $2::numeric, version = $3 WHERE player_id = $1`, playerID, after, res.Version); err != nil {
			return err
		}
		res.Balance = after
		return nil
	})
	return res, err
}

// Balance returns a wallet's balance and version.
func (w *Wallet) Balance(ctx context.Context, playerID string) (string, int64, error) {
	var b string
	var v int64
	err := w.pool.QueryRow(ctx, `SELECT balance::text, version FROM naive_wallets WHERE player_id = $1`, playerID).Scan(&b, &v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", 0, ErrNotFound
	}
	return b, v, err
}

// CreateWallet opens a wallet with a zero balance, as POST /v1/wallets does:
// created is false when it already existed, and currency is the wallet's
// (which may differ from the one asked for).
func (w *Wallet) CreateWallet(ctx context.Context, playerID, currency string) (created bool, have string, err error) {
	err = w.pool.QueryRow(ctx, `INSERT INTO naive_wallets (player_id, currency, balance, version) VALUES ($1, $2, 0, 0)
		ON CONFLICT (player_id) DO NOTHING RETURNING currency`, playerID, currency).Scan(&have)
	if err == nil {
		return true, have, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return false, "", err
	}
	err = w.pool.QueryRow(ctx, `SELECT currency FROM naive_wallets WHERE player_id = $1`, playerID).Scan(&have)
	return false, have, err
}

// WalletRow is a wallet's row.
type WalletRow struct {
	Currency string
	Balance  string
	Version  int64
}

// Get returns a wallet's row, or ErrNotFound.
func (w *Wallet) Get(ctx context.Context, playerID string) (WalletRow, error) {
	var r WalletRow
	err := w.pool.QueryRow(ctx, `SELECT currency, balance::text, version FROM naive_wallets WHERE player_id = $1`, playerID).Scan(&r.Currency, &r.Balance, &r.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return WalletRow{}, ErrNotFound
	}
	return r, err
}

// Entry is one journal row.
type Entry struct {
	Seq          int64
	TxID         string
	Kind         string
	Amount       string
	BalanceAfter string
	RefTxID      string
	CreatedAt    time.Time
}

// History lists a wallet's journal newest first: at most limit rows with
// seq < before (before 0: from the newest).
func (w *Wallet) History(ctx context.Context, playerID string, before int64, limit int) ([]Entry, error) {
	if before <= 0 {
		before = math.MaxInt64
	}
	rows, err := w.pool.Query(ctx, `SELECT seq, tx_id, kind, amount::text, balance_after::text, coalesce(ref_tx_id, ''), created_at
		FROM naive_journal WHERE player_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`, playerID, before, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		err := r.Scan(&e.Seq, &e.TxID, &e.Kind, &e.Amount, &e.BalanceAfter, &e.RefTxID, &e.CreatedAt)
		return e, err
	})
}

// decimal adds exactly: 34 digits, and an inexact or rounded sum is an error
// rather than a changed amount.
var decimal = func() *apd.Context {
	c := apd.BaseContext.WithPrecision(34)
	c.Traps |= apd.Inexact | apd.Rounded
	return c
}()

// add returns a + b for two decimal strings, in the larger of their scales
// (as Postgres's numeric adds), and its sign. The baseline computes the new
// balance in its own code, as a wallet service does, rather than in one more
// round trip to the database.
func add(a, b string) (string, int, error) {
	var x, y, sum apd.Decimal
	if _, _, err := x.SetString(a); err != nil {
		return "", 0, fmt.Errorf("naive: balance %q: %w", a, err)
	}
	if _, _, err := y.SetString(b); err != nil {
		return "", 0, fmt.Errorf("naive: amount %q: %w", b, err)
	}
	if _, err := decimal.Add(&sum, &x, &y); err != nil {
		return "", 0, fmt.Errorf("naive: %s + %s: %w", a, b, err)
	}
	return sum.Text('f'), sum.Sign(), nil
}
