#!/usr/bin/env bash
# restore.sh — restore a walletd backup into the configured, empty store and
# verify it.
#
#   WALLET_DATA_DIR=/srv/walletd/data scripts/restore.sh /var/backups/walletd/walletd-20250301T120000Z.jsonl.gz
#   WALLET_PG_DSN=postgres://…/walletd_new scripts/restore.sh FILE
#
# The store is chosen as walletd chooses it (WALLET_PG_DSN, else
# WALLET_DATA_DIR) and must be empty: a new data folder, or a new database.
# Stop walletd first (the embedded store's folder lock enforces it). A backup
# of either store restores into either store.
#
# `walletctl restore` checks the whole file (checksum, counts) before it
# writes anything, loads it in one transaction, and verifies the result;
# `walletctl verify` then runs once more, as the operator would before
# starting walletd on the restored store. Exit status: 0 restored and
# verified, 1 failed, 2 usage.
set -euo pipefail

prog=restore.sh
if [[ $# -ne 1 || "$1" == -h || "$1" == --help ]]; then
  echo "usage: $prog BACKUP_FILE   (restores into the store of WALLET_PG_DSN or WALLET_DATA_DIR, which must be empty)" >&2
  exit 2
fi
file=$1
fail() {
  echo "$prog: FAILED: $*" >&2
  exit 1
}
[[ -f "$file" ]] || fail "no backup file $file"

walletctl=${WALLETCTL:-}
if [[ -z "$walletctl" ]]; then
  if command -v walletctl >/dev/null 2>&1; then
    walletctl=$(command -v walletctl)
  else
    walletctl="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/bin/walletctl"
  fi
fi
[[ -x "$walletctl" ]] || fail "no walletctl: not on PATH and not at $walletctl (run make build, or set WALLETCTL)"

if [[ -n "${WALLET_PG_DSN:-}" ]]; then
  target="the Postgres database of WALLET_PG_DSN"
else
  target="the embedded store in ${WALLET_DATA_DIR:-./data}"
fi
echo "$prog: restoring $file into $target"
"$walletctl" restore --in "$file" || fail "walletctl restore (see above); nothing is served from $target yet"
"$walletctl" verify || fail "walletctl verify found problems in the restored store (see above)"
echo "$prog: done: $target holds the backup and verifies clean; start walletd on it"
