#!/usr/bin/env bash
# entrypoint.sh - start one of the database tier's three programs (the image's one entrypoint).
#
#   entrypoint.sh patroni          db1..db3: write Patroni's passwords from the Compose secrets
#                                  into /run/patroni, then exec Patroni (PostgreSQL is its child)
#   entrypoint.sh etcd             etcd1..etcd3: name this member after the host, exec etcd
#   entrypoint.sh post-bootstrap   run by Patroni once, on the node that creates the cluster:
#                                  the guestbook database, its schema, the app's role
#   entrypoint.sh postgres         (the default) a standalone server with the official postgres
#                                  image's interface: on first start (empty $PGDATA) initdb with a
#                                  password for $POSTGRES_USER, then the same set-up as
#                                  post-bootstrap, on a temporary server listening on the Unix
#                                  socket only (so no client, and no healthcheck, sees it early)
#
# Each mode ends in `exec`, so the server is PID 1 and receives the stop signal itself.
set -euo pipefail

# POSTGRES_PASSWORD_FILE lets Compose pass the password as a secret file instead of an env var.
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
  POSTGRES_PASSWORD=$(<"$POSTGRES_PASSWORD_FILE")
fi
export POSTGRES_USER=${POSTGRES_USER:-postgres}
export POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}

# Create $POSTGRES_DB and run /docker-entrypoint-initdb.d/*.sh and *.sql in it, as $POSTGRES_USER,
# on the server behind the Unix socket. Used once per cluster, by both modes.
set_up_database() {
  # Every login needs a password, the Unix socket's too: the set-up scripts use it.
  export PGPASSWORD=$POSTGRES_PASSWORD
  psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --host /var/run/postgresql
        --username "$POSTGRES_USER" --dbname postgres)
  if [ "$POSTGRES_DB" != postgres ]; then
    "${psql[@]}" --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh)  echo "entrypoint: running $f"; . "$f" ;;
      *.sql) echo "entrypoint: running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
    esac
  done
  unset PGPASSWORD
}

# The directories PostgreSQL and Patroni write at run time. In the hardened containers of
# docker-compose.yml /run is an empty tmpfs (the root filesystem is read-only), so they are made
# here, by the postgres user itself; the image has them too, for a plain `docker run`.
#   /run/postgresql  the Unix socket and its lock file (2775, as Debian makes it)
#   /run/patroni     Patroni's configuration, passwords included (0700: postgres alone)
make_run_dirs() {
  mkdir -p -m 2775 /run/postgresql
  mkdir -p -m 0700 /run/patroni
}

# A secret file's content, for YAML: single-quoted, any single quote doubled.
yaml_secret() { local s; s=$(<"/run/secrets/$1"); printf "'%s'" "${s//\'/\'\'}"; }

case "${1:-}" in
  patroni)
    make_run_dirs
    # This node's name and addresses, from the hostname Compose gives it (db1, db2, db3).
    export PATRONI_NAME=${PATRONI_NAME:-$(hostname)}
    export PATRONI_RESTAPI_CONNECT_ADDRESS=${PATRONI_RESTAPI_CONNECT_ADDRESS:-$PATRONI_NAME:8008}
    export PATRONI_POSTGRESQL_CONNECT_ADDRESS=${PATRONI_POSTGRESQL_CONNECT_ADDRESS:-$PATRONI_NAME:5432}
    # Patroni reads every *.yml of /run/patroni in name order: the image's patroni.yml (and any
    # file a Compose overlay mounts beside it in /etc/patroni/), then the passwords, written here
    # from the secret files, readable by this user only, gone with the container.
    ln -sf /etc/patroni/*.yml /run/patroni/
    for secret in db_restapi_password db_owner_password db_replication_password \
                  db_rewind_password; do
      [ -r "/run/secrets/$secret" ] || { echo "entrypoint: no secret $secret" >&2; exit 1; }
    done
    umask 077
    cat >/run/patroni/90-secrets.yml <<EOF
restapi:
  authentication: {username: patroni, password: $(yaml_secret db_restapi_password)}
postgresql:
  authentication:
    superuser: {password: $(yaml_secret db_owner_password)}
    replication: {password: $(yaml_secret db_replication_password)}
    rewind: {password: $(yaml_secret db_rewind_password)}
EOF
    umask 022
    exec patroni /run/patroni
    ;;

  post-bootstrap)
    # Patroni passes the superuser's connection URL; the set-up connects over the Unix socket
    # with the owner's password from its secret file instead, like the standalone mode.
    POSTGRES_PASSWORD=$(</run/secrets/db_owner_password)
    set_up_database
    echo "entrypoint: post-bootstrap complete"
    exit 0
    ;;

  etcd)
    # This member's name and the URLs the others and the clients reach it at, from the hostname
    # (etcd1, etcd2, etcd3); everything shared is in etcd.env (ETCD_* variables).
    export ETCD_NAME=${ETCD_NAME:-$(hostname)}
    export ETCD_INITIAL_ADVERTISE_PEER_URLS=${ETCD_INITIAL_ADVERTISE_PEER_URLS:-http://$ETCD_NAME:2380}
    export ETCD_ADVERTISE_CLIENT_URLS=${ETCD_ADVERTISE_CLIENT_URLS:-http://$ETCD_NAME:2379}
    exec etcd
    ;;

  postgres)
    : "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE}"
    make_run_dirs
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
      echo "entrypoint: initialising a new cluster in $PGDATA"
      initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
             --encoding=UTF8 --locale=C.UTF-8 --auth=scram-sha-256 >/dev/null
      # Clients come from other containers: accept password logins from any address.
      # Which containers can reach port 5432 at all is decided by the Docker network.
      echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
      # Our tunables live in one commented file, kept in the image rather than the volume.
      echo "include '/etc/postgresql/fourtier.conf'" >>"$PGDATA/postgresql.conf"
      pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
      set_up_database
      pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
      echo "entrypoint: initialisation complete"
    fi
    ;;
esac

exec "$@"
