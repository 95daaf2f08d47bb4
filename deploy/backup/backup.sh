#!/usr/bin/env bash
# Back up what a vardkoll server side cannot make again: the database, the broker's accounts, the
# certificates and keys, and the settings (docs/operations.md, "Backup and restore").
#
#   VARDKOLL_BACKUP_DATABASE_URL=postgresql://vardkoll_owner:...@127.0.0.1:5432/vardkoll deploy/backup/backup.sh /var/backups/vardkoll/$(date +%F)
#
# Writes into the (new) folder:
#   vardkoll.dump              pg_dump custom format (compressed; pg_restore can pick tables from it)
#   dynamic-security.json      the broker's accounts and roles (salted password hashes), from VARDKOLL_DYNSEC_FILE
#   files/...                  VARDKOLL_BACKUP_FILES (settings with secrets, certificates, keys), paths kept
#   SHA256SUMS, MANIFEST       checksums, and what was backed up from which version
# Collectors hold their own secrets (pseudonym key, token): they back those up themselves
# (`vardkoll collector export-secret`), never here. The folder holds secrets: mode 0700, encrypt it
# before it leaves the host.
set -euo pipefail
if [ $# -ne 1 ]; then sed -n '2,15p' "$0" >&2; exit 2; fi
out=$1
url=${VARDKOLL_BACKUP_DATABASE_URL:?set VARDKOLL_BACKUP_DATABASE_URL (the owner role: it can read every table)}
dynsec=${VARDKOLL_DYNSEC_FILE-/var/lib/mosquitto/dynamic-security.json}
files=${VARDKOLL_BACKUP_FILES-/etc/vardkoll /etc/mosquitto/conf.d/vardkoll.conf /etc/mosquitto/certs}

umask 077
if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then echo "backup.sh: $out is not empty" >&2; exit 1; fi
mkdir -p "$out"
url=${url/#postgresql+psycopg:/postgresql:}

# One consistent snapshot of the database while the servers keep writing (pg_dump runs in one
# repeatable-read transaction).
pg_dump --format=custom --compress=6 --no-owner --no-privileges --file "$out/vardkoll.dump" --dbname "$url"
if [ -n "$dynsec" ]; then
    # The broker rewrites this file on every account change; cp reads it whole (the plugin writes a new
    # file and renames it over the old one).
    cp "$dynsec" "$out/dynamic-security.json"
fi
for path in $files; do
    if [ -e "$path" ]; then
        mkdir -p "$out/files$(dirname "$path")"
        cp -a "$path" "$out/files$path"
    else
        echo "backup.sh: $path does not exist; skipped" >&2
    fi
done
{
    echo "made_at=$(date -u +%FT%TZ)"
    echo "host=$(hostname)"
    echo "vardkoll=$(vardkoll --version 2>/dev/null || echo unknown)"
    echo "pg_dump=$(pg_dump --version)"
    echo "schema=$(psql -X -At --dbname "$url" -c 'SELECT version_num FROM alembic_version' 2>/dev/null || echo unknown)"
} >"$out/MANIFEST"
(cd "$out" && find . -type f ! -name SHA256SUMS -print0 | sort -z | xargs -0 sha256sum >SHA256SUMS)
echo "backed up to $out: $(du -sh "$out" | cut -f1)" >&2
