-- walletd schema, version 1. Money is NUMERIC (exact; the scale written is the
-- scale read back), never float. Shipped migrations are never edited: the
-- migrator records a checksum of each and refuses a changed one.

-- journal_delta is the signed effect of one journal entry on the balance:
-- deposits, wins and rollbacks credit, withdrawals and bets debit (the same
-- rule as wallet.Kind). The batch writer checks every write against it and
-- Verify sums it. Not STRICT, so the planner can inline it.
CREATE FUNCTION journal_delta(kind text, amount numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN kind IN ('deposit', 'win', 'rollback') THEN amount ELSE -amount END $$;

-- One row per wallet. version is the fencing token: every write names the
-- version it expects and moves it on in the same statement. The table is
-- updated on every commit of a wallet; the spare room per page lets those
-- updates stay HOT (no index is on the updated columns).
CREATE TABLE wallets (
    player_id  text        PRIMARY KEY,
    currency   text        NOT NULL,
    version    bigint      NOT NULL DEFAULT 0 CHECK (version >= 0),
    balance    numeric     NOT NULL CHECK (balance >= 0),
    epoch      bigint      NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 80);

-- The journal: one row per committed transaction, seq 1..version without a
-- gap. There is deliberately no foreign key to wallets: the writer only
-- inserts rows of a wallet whose version row it moved in the same statement,
-- and a per-row RI trigger would cost on the hottest path; Verify reports
-- orphans instead.
CREATE TABLE journal (
    player_id     text        NOT NULL,
    seq           bigint      NOT NULL CHECK (seq >= 1),
    tx_id         text        NOT NULL,
    kind          text        NOT NULL CHECK (kind IN ('deposit', 'withdraw', 'bet', 'win', 'rollback')),
    amount        numeric     NOT NULL CHECK (amount >= 0),
    balance_after numeric     NOT NULL CHECK (balance_after >= 0),
    round_id      text        NOT NULL DEFAULT '',
    game_id       text        NOT NULL DEFAULT '',
    ref_tx_id     text        NOT NULL DEFAULT '',
    -- bet_key: a bet's own tx_id, or the bet a tombstone refuses
    -- (wallet.Event.BetKey); NULL for everything else.
    bet_key       text,
    settles       text[],
    tombstone     boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (player_id, seq),
    UNIQUE (player_id, tx_id)
);

-- A bet key is claimed once per wallet: a bet arriving after its tombstone
-- left the wallet's memory is refused here.
CREATE UNIQUE INDEX journal_bet_key ON journal (player_id, bet_key) WHERE bet_key IS NOT NULL;
-- Lookup: the events that name a recalled id (wins naming a bet, rollbacks).
CREATE INDEX journal_ref ON journal (player_id, ref_tx_id) WHERE ref_tx_id <> '';
-- Lookup: the wins of a recalled bet's round after it.
CREATE INDEX journal_round_wins ON journal (player_id, round_id, seq) WHERE kind = 'win' AND round_id <> '';

-- The latest snapshot per wallet (wallet.Snapshot as JSON): activation reads it
-- plus the journal after it.
CREATE TABLE snapshots (
    player_id  text        PRIMARY KEY,
    version    bigint      NOT NULL CHECK (version >= 0),
    data       jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
