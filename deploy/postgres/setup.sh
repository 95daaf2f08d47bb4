#!/usr/bin/env bash
# The vardkoll database and its two roles, on a PostgreSQL 15+ server (run as the superuser).
#
#   sudo -u postgres env VARDKOLL_OWNER_PASSWORD=... VARDKOLL_APP_PASSWORD=... deploy/postgres/setup.sh [psql connection options]
#
# - vardkoll_owner owns the database and its schema: `vardkoll migrate` connects as it (DDL).
# - vardkoll_app is what the server processes connect as: rows only (SELECT, INSERT, UPDATE, DELETE), on
#   every table the owner makes now or later; it cannot create, alter or drop anything.
# Names: VARDKOLL_DB (vardkoll), VARDKOLL_OWNER_ROLE (vardkoll_owner), VARDKOLL_APP_ROLE (vardkoll_app).
# Safe to run again (after a restore, say): what exists is kept, the grants are made again. Passwords
# are set only when a role is created (ALTER ROLE ... PASSWORD to change one).
set -euo pipefail
db=${VARDKOLL_DB:-vardkoll}
owner=${VARDKOLL_OWNER_ROLE:-vardkoll_owner}
app=${VARDKOLL_APP_ROLE:-vardkoll_app}
: "${VARDKOLL_OWNER_PASSWORD:?set VARDKOLL_OWNER_PASSWORD (the migration role's password)}"
: "${VARDKOLL_APP_PASSWORD:?set VARDKOLL_APP_PASSWORD (the server processes' password)}"
here=$(cd "$(dirname "$0")" && pwd)

psql -X -q -v ON_ERROR_STOP=1 "$@" -d postgres \
    -v db="$db" -v owner="$owner" -v app="$app" \
    -v owner_password="$VARDKOLL_OWNER_PASSWORD" -v app_password="$VARDKOLL_APP_PASSWORD" \
    -f "$here/setup.sql"
echo "database $db: owner $owner (migrations), $app (server processes, rows only)" >&2
