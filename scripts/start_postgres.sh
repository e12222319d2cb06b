#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on 127.0.0.1:5432 with user postgres/postgres.
set -euo pipefail

export PGHOST=127.0.0.1 PGPORT=${PGPORT:-5432} PGUSER=postgres PGPASSWORD=postgres

if pg_isready -q -h "$PGHOST" -p "$PGPORT" 2>/dev/null \
   && psql -d postgres -c "select 1" >/dev/null 2>&1; then
  exit 0
fi

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  echo "Installing PostgreSQL with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi

PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
DATA=${INNGEST_PGDATA:-/tmp/inngest_django_pgdata}
RUNAS=()
if [ "$(id -u)" = "0" ]; then
  RUNAS=(runuser -u postgres --)
fi

if [ ! -s "$DATA/PG_VERSION" ]; then
  rm -rf "$DATA"
  mkdir -p "$DATA"
  chown postgres:postgres "$DATA" 2>/dev/null || true
  pwfile=$(mktemp)
  echo postgres > "$pwfile"
  chmod 644 "$pwfile"
  "${RUNAS[@]}" "$PGBIN/initdb" -D "$DATA" -U postgres --pwfile="$pwfile" -A scram-sha-256 >/dev/null
  rm -f "$pwfile"
fi

# Test-speed settings: this server holds only throwaway test data.
"${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w start \
  -o "-c listen_addresses=127.0.0.1 -p $PGPORT -c max_connections=200 -c unix_socket_directories=/tmp" >/dev/null
pg_isready -h "$PGHOST" -p "$PGPORT" -t 30
echo "PostgreSQL is up on $PGHOST:$PGPORT"
