#!/usr/bin/env bash
# entrypoint.sh - initialise the cluster on first start, then exec the server.
#
# First start (empty $PGDATA): initdb with a password for $POSTGRES_USER, start a temporary server
# that listens on the Unix socket only (so no client, and no healthcheck over TCP, sees it early),
# create $POSTGRES_DB, run /docker-entrypoint-initdb.d/*.sh and *.sql, stop it.
# Every start: `exec postgres`, so PostgreSQL is PID 1 and receives the stop signal itself.
set -euo pipefail

# POSTGRES_PASSWORD_FILE lets Compose pass the password as a secret file instead of an env var.
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
  POSTGRES_PASSWORD=$(<"$POSTGRES_PASSWORD_FILE")
fi
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE}"
export POSTGRES_USER=${POSTGRES_USER:-postgres}
export POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "entrypoint: initialising a new cluster in $PGDATA"
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
         --encoding=UTF8 --locale=C.UTF-8 --auth=scram-sha-256 >/dev/null
  # Clients come from other containers: accept password logins from any address.
  # Which containers can reach port 5432 at all is decided by the Docker network (app_db only).
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  # Our tunables live in one commented file, kept in the image rather than the volume.
  echo "include '/etc/postgresql/fourtier.conf'" >>"$PGDATA/postgresql.conf"

  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  # Every login needs a password, the Unix socket's too (--auth above): the set-up scripts use it.
  export PGPASSWORD=$POSTGRES_PASSWORD
  psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres)
  if [ "$POSTGRES_DB" != postgres ]; then
    "${psql[@]}" --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh)  echo "entrypoint: running $f"; . "$f" ;;
      *.sql) echo "entrypoint: running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  unset PGPASSWORD
  echo "entrypoint: initialisation complete"
fi

exec "$@"
