#!/usr/bin/env bash
# ensure-base-image.sh - make sure the one base image every tier builds FROM exists locally.
#
# Every Dockerfile in this project starts `FROM ${BASE_IMAGE}` (default debian:trixie-slim).
# Three ways to get it, tried in order, and the script says which one it took:
#   1. it is already in the local image store        -> use it;
#   2. `docker pull` works (a laptop with internet)   -> pull it;
#   3. no registry is reachable (our CI machines)     -> build it from Debian's package mirror
#      with debootstrap and `docker import` it under the same name.
# Path 3 needs root and debootstrap (installed with apt if missing). It only ever runs when the
# image is missing, so later `make up` runs cost nothing.
set -euo pipefail

image=${BASE_IMAGE:-debian:trixie-slim}
suite=${BASE_SUITE:-trixie}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

say() { printf 'base image: %s\n' "$*" >&2; }

if docker image inspect "$image" >/dev/null 2>&1; then
  say "$image is present locally, using it"
  exit 0
fi

say "$image not present, trying docker pull"
if docker pull --quiet "$image" >/dev/null 2>&1; then
  say "pulled $image from the registry"
  exit 0
fi

say "no registry reachable: building $image from $mirror ($suite) with debootstrap"
if [ "$(id -u)" -ne 0 ]; then
  say "debootstrap needs root; run 'sudo make up' once, or make $image available (docker load/pull)"
  exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  say "installing debootstrap with apt-get"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

rootfs=$(mktemp -d /tmp/fourtier-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT

# minbase = essential packages + apt: the same starting point as the official -slim images.
debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
  say "debootstrap failed, last lines of $rootfs.log:"; tail -n 20 "$rootfs.log" >&2; exit 1; }
rm -f "$rootfs.log"

# Slim it the way the official image does: no docs, man pages or translations from later installs,
# and apt keeps no package cache inside image layers.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
APT::Install-Recommends "false";
CFG
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/doc/*/changelog* \
       "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*

tar -C "$rootfs" -c . | docker import --change 'CMD ["bash"]' - "$image" >/dev/null
say "built $image with debootstrap ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%d MB", $1/1e6}'))"
