#!/usr/bin/env bash
# backup.sh — take a walletd backup, for cron, and prune old ones.
#
#   BACKUP_DIR=/var/backups/walletd scripts/backup.sh
#
# Environment:
#   BACKUP_DIR          folder for the backups (required; created if missing)
#   BACKUP_KEEP_DAYS    delete backups older than this many days (default 14; 0: no age limit)
#   BACKUP_KEEP_FILES   keep at most this many newest backups (default 0: no count limit)
#   WALLETCTL           the walletctl binary (default: walletctl on PATH, else bin/walletctl
#                       of this checkout)
#   WALLET_PG_DSN, WALLET_DATA_DIR
#                       the store, exactly as walletd is configured
#   BACKUP_TEXTFILE     optional: a node_exporter textfile (…/walletd_backup.prom) to
#                       which each successful run writes
#                       walletd_backup_last_success_timestamp_seconds and
#                       walletd_backup_last_size_bytes, for an alert on stale backups
#
# Each run writes BACKUP_DIR/walletd-<UTC time>.jsonl.gz with `walletctl backup`
# (an online, consistent backup: walletd keeps serving; the file is written as
# .tmp, fsynced and renamed), reads it back with `walletctl check-backup`, and
# only then prunes: a failing backup never deletes the good ones before it, and
# the newest backup is never pruned. Any failure exits non-zero with a message
# on stderr, which cron mails. Runs never overlap (flock on BACKUP_DIR/.lock).
set -euo pipefail

prog=backup.sh
fail() {
  echo "$prog: FAILED: $*" >&2
  exit 1
}

[[ -n "${BACKUP_DIR:-}" ]] || { echo "$prog: set BACKUP_DIR to the folder for the backups" >&2; exit 2; }
keep_days=${BACKUP_KEEP_DAYS:-14}
keep_files=${BACKUP_KEEP_FILES:-0}
[[ "$keep_days" =~ ^[0-9]+$ ]] || { echo "$prog: BACKUP_KEEP_DAYS=$keep_days: want a whole number of days" >&2; exit 2; }
[[ "$keep_files" =~ ^[0-9]+$ ]] || { echo "$prog: BACKUP_KEEP_FILES=$keep_files: want a whole number" >&2; exit 2; }

walletctl=${WALLETCTL:-}
if [[ -z "$walletctl" ]]; then
  if command -v walletctl >/dev/null 2>&1; then
    walletctl=$(command -v walletctl)
  else
    walletctl="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/bin/walletctl"
  fi
fi
[[ -x "$walletctl" ]] || fail "no walletctl: not on PATH and not at $walletctl (run make build, or set WALLETCTL)"

mkdir -p "$BACKUP_DIR" || fail "cannot create $BACKUP_DIR"
# Backups hold every player's balance: keep the folder private.
chmod 700 "$BACKUP_DIR" 2>/dev/null || true

if command -v flock >/dev/null 2>&1; then
  exec 9>"$BACKUP_DIR/.lock"
  flock -n 9 || fail "another backup.sh is running on $BACKUP_DIR"
fi

name="walletd-$(date -u +%Y%m%dT%H%M%SZ).jsonl.gz"
file="$BACKUP_DIR/$name"
if ! report=$("$walletctl" backup --out "$file" 2>&1); then
  fail "walletctl backup --out $file: $report"
fi
echo "$prog: $report"
if ! check=$("$walletctl" check-backup --in "$file" 2>&1); then
  fail "the backup just written does not read back: $check"
fi

# Retention. Names sort by time, so the newest files sort last.
shopt -s nullglob
backups=("$BACKUP_DIR"/walletd-*.jsonl.gz)
pruned=0
if (( keep_files > 0 && ${#backups[@]} > keep_files )); then
  for old in "${backups[@]:0:${#backups[@]}-keep_files}"; do
    [[ "$old" == "$file" ]] && continue
    rm -f -- "$old" && pruned=$((pruned + 1))
  done
fi
if (( keep_days > 0 )); then
  while IFS= read -r -d '' old; do
    [[ "$old" == "$file" ]] && continue
    rm -f -- "$old" && pruned=$((pruned + 1))
  done < <(find "$BACKUP_DIR" -maxdepth 1 -type f -name 'walletd-*.jsonl.gz' -mmin +$((keep_days * 1440)) -print0)
fi
# Leftovers of a walletctl killed mid-backup.
find "$BACKUP_DIR" -maxdepth 1 -type f -name 'walletd-*.jsonl.gz.tmp' -mmin +1440 -delete 2>/dev/null || true
if [[ -n "${BACKUP_TEXTFILE:-}" ]]; then
  size=$(wc -c <"$file" | tr -d ' ')
  # Written aside and renamed, so the collector never reads half a file.
  if ! {
    echo "# HELP walletd_backup_last_success_timestamp_seconds When backup.sh last wrote a backup that read back clean."
    echo "# TYPE walletd_backup_last_success_timestamp_seconds gauge"
    echo "walletd_backup_last_success_timestamp_seconds $(date -u +%s)"
    echo "# HELP walletd_backup_last_size_bytes Size of the newest backup file."
    echo "# TYPE walletd_backup_last_size_bytes gauge"
    echo "walletd_backup_last_size_bytes $size"
  } >"$BACKUP_TEXTFILE.tmp" || ! mv -f "$BACKUP_TEXTFILE.tmp" "$BACKUP_TEXTFILE"; then
    fail "the backup is good ($file) but $BACKUP_TEXTFILE could not be written"
  fi
fi
echo "$prog: kept $file; pruned $pruned old backup(s)"
