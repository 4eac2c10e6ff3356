#!/usr/bin/env bash
# The browser for the web front end's browser tests (tests/web): Debian's Chromium, driven by
# Playwright. Called by `make test` and by .ci/run; a no-op when Chromium is already there.
#
# Playwright's own browser download is never used (this machine reaches the package registries
# only): the tests launch the system Chromium ($CHROMIUM, else `chromium` on the PATH, else
# /usr/bin/chromium — see tests/web/conftest.py).
set -euo pipefail

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
PACKAGES=(chromium fonts-dejavu-core)

if [ -n "${CHROMIUM:-}" ]; then
  if [ -x "$CHROMIUM" ]; then
    exit 0
  fi
  echo "install-browser: CHROMIUM=$CHROMIUM is not an executable file." >&2
  echo "  Point CHROMIUM at a Chromium binary, or unset it to use Debian's chromium package." >&2
  exit 1
fi

if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  exit 0
fi

if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  cat >&2 <<EOF
install-browser: Chromium is missing, and installing it needs root.
  The browser tests (tests/web) drive Debian's Chromium. Install it once with
    sudo apt-get update
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${PACKAGES[*]}
  or set CHROMIUM to a Chromium binary you already have, then run \`make test\` again.
EOF
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browser: Chromium is missing and there is no apt-get here." >&2
  echo "  Install Chromium with your system's package manager, or set CHROMIUM to its binary." >&2
  exit 1
fi

echo "install-browser: installing Debian's Chromium for the browser tests (${PACKAGES[*]})"
${as_root[@]+"${as_root[@]}"} apt-get update
${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${PACKAGES[@]}"

if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  echo "install-browser: apt-get finished, but there is still no chromium binary." >&2
  exit 1
fi
