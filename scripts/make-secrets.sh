#!/usr/bin/env bash
# make-secrets.sh - create the stack's database passwords once, outside every image.
#
# docker-compose.yml hands these files to the containers as Compose secrets (mounted read-only at
# /run/secrets/<name>). They are random, made on this machine, never committed (.gitignore), and
# never baked into an image. Delete .secrets/ (with `make clean`) to make new ones; the database
# keeps the old passwords until its volumes are removed too, which `make clean` also does.
#
#   db_owner_password        guestbook_owner: the cluster's superuser, owner of the database
#   db_app_password          guestbook_app: the app's role (SELECT, INSERT on messages)
#   db_replication_password  replicator: standbys stream the primary's WAL as this role
#   db_rewind_password       rewinder: pg_rewind, when a former primary rejoins as a standby
#   db_restapi_password      patroni: Patroni's REST API, for requests that change something
#                            (switchover, restart); patronictl sends it
#   db_monitor_password      monitor: the PostgreSQL exporters' role (pg_monitor: statistics
#                            only, no table data)
set -euo pipefail
dir=${1:-.secrets}
umask 077
mkdir -p "$dir"
for name in db_owner_password db_app_password db_replication_password db_rewind_password \
            db_restapi_password db_monitor_password; do
  if [ ! -s "$dir/$name" ]; then
    head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$dir/$name"
    # Readable inside the containers, whose servers run as other, unprivileged users (Compose
    # bind-mounts the file as it is); the directory itself stays private to its owner.
    chmod 0644 "$dir/$name"
    echo "secrets: made $dir/$name" >&2
  fi
done
