#!/usr/bin/env bash
# The container engine for `make test-compose` (infra/compose/test_compose_stack.py): Debian's
# podman with runc (crun fails on these machines on setrlimit and hybrid cgroups), debootstrap for
# the local stand-ins of the public base images, and podman-compose from PyPI into the venv.
# A no-op when everything is there. Called by `make compose-up` and `make test-compose`.
set -euo pipefail

PACKAGES=(podman runc debootstrap netavark aardvark-dns iptables uidmap slirp4netns fuse-overlayfs)
VENV_BIN=${VENV_BIN:-.venv/bin}
PODMAN_COMPOSE_VERSION=1.6.0

missing=()
for tool in podman runc debootstrap iptables; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    cat >&2 <<MSG
install-podman: ${missing[*]} missing, and installing needs root. Install once with
  sudo apt-get update
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${PACKAGES[*]}
then run the make target again.
MSG
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-podman: ${missing[*]} missing and there is no apt-get here." >&2
    exit 1
  fi
  echo "install-podman: installing ${PACKAGES[*]}"
  ${as_root[@]+"${as_root[@]}"} apt-get update -qq
  ${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"
fi

if [ ! -x "$VENV_BIN/podman-compose" ]; then
  "$VENV_BIN/python" -m pip install --quiet "podman-compose==$PODMAN_COMPOSE_VERSION"
fi
