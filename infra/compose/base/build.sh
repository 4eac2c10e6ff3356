#!/usr/bin/env bash
# Local stand-ins for the public base images docker-compose.yml and the Dockerfile name, built
# from Debian bookworm's packages with debootstrap (no image registry is reachable here):
#   python:3.11-slim  Debian's Python 3.11 (python3, venv, pip)
#   postgres:15       PostgreSQL 15, with the official image's POSTGRES_* variables and
#                     /docker-entrypoint-initdb.d (postgres-entrypoint.sh)
#   redis:7.4         Debian's redis-server (7.0: bookworm's; the commands used are the same)
# Each is tagged with the name the compose file uses (docker.io/library/NAME), so the compose file
# stays the one a user runs with Docker. An image that exists is not built again; the root file
# systems' packages are cached in $CACHE (var/compose-cache by default). FORCE=1 rebuilds.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${CACHE:-$(pwd)/var/compose-cache}
MIRROR=${DEBIAN_MIRROR:-$(grep -hoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list \
  /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 | tr -d ' ' || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
mkdir -p "$CACHE"

build() {  # NAME TAG PACKAGES CHANGES...
  local name=$1 tag=$2 packages=$3; shift 3
  local ref="docker.io/library/$name:$tag"
  if [ -z "${FORCE:-}" ] && podman image exists "$ref"; then
    echo "base-images: $ref exists"
    return
  fi
  local root="$CACHE/rootfs-$name"
  local started=$SECONDS
  rm -rf "$root"
  # A package cache of its own per image: the three debootstraps run at once, and debootstrap
  # does not share a --cache-dir safely (one moved another's half-checked .deb away, and it
  # stopped without a word).
  mkdir -p "$CACHE/debs-$name"
  echo "base-images: debootstrap $name ($packages) from $MIRROR"
  debootstrap --variant=minbase --cache-dir="$CACHE/debs-$name" --include="$packages" \
    bookworm "$root" "$MIRROR" >"$CACHE/debootstrap-$name.log" 2>&1 \
    || { echo "base-images: debootstrap $name failed; the end of $CACHE/debootstrap-$name.log:" >&2
         tail -n 30 "$CACHE/debootstrap-$name.log" >&2; exit 1; }
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
  local extra=()
  case $name in
    postgres)
      install -m 0755 "$HERE/postgres-entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"
      mkdir -p "$root/docker-entrypoint-initdb.d" "$root/var/lib/postgresql/data" ;;
    redis)
      install -m 0755 "$HERE/redis-entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"
      mkdir -p "$root/data" ;;
    python)
      ln -sf python3 "$root/usr/bin/python" ;;
  esac
  tar -C "$root" -c . | podman import "$@" - "$ref" >/dev/null
  rm -rf "$root"
  echo "base-images: $ref built in $((SECONDS - started)) s"
}

build python 3.11-slim python3,python3-venv,python3-pip,ca-certificates,tzdata \
  --change 'ENV=PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin' \
  --change 'ENV=LANG=C.UTF-8' --change 'CMD=["python3"]' &
build postgres 15 postgresql-15,util-linux \
  --change 'ENV=PATH=/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin' \
  --change 'ENV=PGDATA=/var/lib/postgresql/data' --change 'ENV=LANG=C.UTF-8' \
  --change 'ENTRYPOINT=["/usr/local/bin/docker-entrypoint.sh"]' --change 'CMD=["postgres"]' \
  --change 'EXPOSE=5432' &
build redis 7.4 redis-server,redis-tools,util-linux \
  --change 'ENTRYPOINT=["/usr/local/bin/docker-entrypoint.sh"]' --change 'CMD=["redis-server"]' \
  --change 'WORKDIR=/data' --change 'EXPOSE=6379' &
fail=0
for job in $(jobs -p); do wait "$job" || fail=1; done
exit $fail
