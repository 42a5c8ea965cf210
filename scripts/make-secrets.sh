#!/usr/bin/env bash
# make-secrets.sh - create the stack's database passwords once, outside every image.
#
# docker-compose.yml hands these files to the containers as Compose secrets (mounted read-only at
# /run/secrets/<name>). They are random, made on this machine, never committed (.gitignore), and
# never baked into an image. Delete .secrets/ (with `make clean`) to make new ones; the database
# keeps the old passwords until its volume is removed too, which `make clean` also does.
set -euo pipefail
dir=${1:-.secrets}
umask 077
mkdir -p "$dir"
for name in db_owner_password db_app_password; do
  if [ ! -s "$dir/$name" ]; then
    head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$dir/$name"
    # Readable inside the containers, whose servers run as other, unprivileged users (Compose
    # bind-mounts the file as it is); the directory itself stays private to its owner.
    chmod 0644 "$dir/$name"
    echo "secrets: made $dir/$name" >&2
  fi
done
