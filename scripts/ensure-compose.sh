#!/usr/bin/env bash
# ensure-compose.sh - make sure `docker compose` (Compose v2) works, installing it if it doesn't.
#
# Compose v2 is a plugin of the docker CLI. Many machines have it already (Docker Desktop, Docker's
# own packages). Debian bookworm ships only the old Python docker-compose 1.x, so there we take the
# v2 plugin from Debian trixie's docker-compose package: download the .deb with a throw-away apt
# configuration (the machine's own apt sources stay untouched), unpack it, and copy the one binary
# to /usr/local/lib/docker/cli-plugins/, where the docker CLI looks for plugins.
set -euo pipefail

say() { printf 'compose: %s\n' "$*" >&2; }

if docker compose version >/dev/null 2>&1; then
  exit 0
fi

plugin_dir=/usr/local/lib/docker/cli-plugins
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  say "'docker compose' (Compose v2) is missing. Install it: https://docs.docker.com/compose/install/"
  say "(on Debian/Ubuntu as root, this script installs it from Debian trixie's docker-compose package)"
  exit 1
fi

say "'docker compose' missing: installing the v2 plugin from Debian trixie's docker-compose package"
scratch=$(mktemp -d /tmp/fourtier-compose.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/lists/partial" "$scratch/cache/archives/partial"
echo "deb ${DEBIAN_MIRROR:-http://deb.debian.org/debian} trixie main" >"$scratch/sources.list"
apt_opts=(-o Dir::Etc::SourceList="$scratch/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o Dir::State::Lists="$scratch/lists" -o Dir::Cache="$scratch/cache"
          -o APT::Sandbox::User=root -qq)
apt-get "${apt_opts[@]}" update
(cd "$scratch" && apt-get "${apt_opts[@]}" download docker-compose)
dpkg-deb -x "$scratch"/docker-compose_*.deb "$scratch/root"
install -D -m 0755 "$scratch/root/usr/libexec/docker/cli-plugins/docker-compose" "$plugin_dir/docker-compose"
say "installed $(docker compose version)"
