-- Keys compare byte by byte. Ids (player_id, tx_id and the ids that name
-- other transactions) are opaque to walletd, so the database's linguistic
-- collation bought nothing and cost on every index insert and probe: with a
-- libc collation each comparison goes through strcoll, which was about a
-- tenth of the database's CPU under load (an eighth of a journal insert).
-- The "C" collation compares with memcmp. Changing only the collation of a
-- text column does not rewrite the table; its indexes are rebuilt.
ALTER TABLE wallets ALTER COLUMN player_id TYPE text COLLATE "C";
ALTER TABLE journal
    ALTER COLUMN player_id TYPE text COLLATE "C",
    ALTER COLUMN tx_id     TYPE text COLLATE "C",
    ALTER COLUMN round_id  TYPE text COLLATE "C",
    ALTER COLUMN ref_tx_id TYPE text COLLATE "C",
    ALTER COLUMN bet_key   TYPE text COLLATE "C";
ALTER TABLE snapshots ALTER COLUMN player_id TYPE text COLLATE "C";
