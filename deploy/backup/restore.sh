#!/usr/bin/env bash
# Restore a backup made by backup.sh (docs/operations.md, "Backup and restore", the drill).
#
#   VARDKOLL_RESTORE_DATABASE_URL=postgresql://vardkoll_owner:...@127.0.0.1:5432/vardkoll deploy/backup/restore.sh /var/backups/vardkoll/2026-12-04
#
# Before: stop the servers (systemctl stop vardkoll.target) and make the empty database with its roles
# (deploy/postgres/setup.sh; tables made by the owner role are granted to the servers' role by default).
# It checks the checksums, restores the database in one transaction (as the owner role, which then owns
# every table), and, with VARDKOLL_DYNSEC_FILE set, puts the broker's accounts back (stop Mosquitto
# first; start it after). The files under files/ are left for you to copy back: compare them with
# what the host has now before overwriting anything.
# After: `vardkoll migrate --check` (a backup from an older version needs `vardkoll migrate`), then
# start the servers. Collectors re-send whatever they sent since the backup was made, as long as it is
# still in their outboxes: the restored database counts each event once.
set -euo pipefail
if [ $# -ne 1 ]; then sed -n '2,16p' "$0" >&2; exit 2; fi
from=$1
url=${VARDKOLL_RESTORE_DATABASE_URL:?set VARDKOLL_RESTORE_DATABASE_URL (the owner role, on the empty database)}
url=${url/#postgresql+psycopg:/postgresql:}

(cd "$from" && sha256sum --quiet --check SHA256SUMS) || { echo "restore.sh: checksums do not match; the backup is damaged" >&2; exit 1; }
tables=$(psql -X -At --dbname "$url" -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
if [ "$tables" != 0 ]; then echo "restore.sh: the database has $tables tables already; restore into an empty one (deploy/postgres/setup.sh)" >&2; exit 1; fi
pg_restore --exit-on-error --single-transaction --no-owner --no-privileges --dbname "$url" "$from/vardkoll.dump"
echo "restored the database from $from/vardkoll.dump" >&2
if [ -n "${VARDKOLL_DYNSEC_FILE:-}" ] && [ -f "$from/dynamic-security.json" ]; then
    install -m 600 "$from/dynamic-security.json" "$VARDKOLL_DYNSEC_FILE"
    if id mosquitto >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then chown mosquitto:mosquitto "$VARDKOLL_DYNSEC_FILE"; fi
    echo "restored the broker's accounts to $VARDKOLL_DYNSEC_FILE (start Mosquitto now)" >&2
fi
