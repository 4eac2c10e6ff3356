#!/usr/bin/env bash
# Prometheus and promtool for the observability tests (tests/infra/test_observability_files.py
# checks and tests the alerting rules with promtool; tests/notifications/test_metrics_scrape.py
# runs Prometheus against the test platform): Debian's `prometheus` package. Called by
# `make test` and by .ci/run; a no-op when both are there.
set -euo pipefail

PACKAGES=(prometheus)

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  cat >&2 <<MSG
install-prometheus: prometheus/promtool are missing, and installing them needs root.
  Install Debian's package once with
    sudo apt-get update
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${PACKAGES[*]}
  then run \`make test\` again.
MSG
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-prometheus: prometheus is missing and there is no apt-get here." >&2
  exit 1
fi

echo "install-prometheus: installing Debian's prometheus for the observability tests"
${as_root[@]+"${as_root[@]}"} apt-get update
${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${PACKAGES[@]}"
# The package starts a Prometheus service where systemd runs; the tests start their own.

if ! command -v promtool >/dev/null 2>&1; then
  echo "install-prometheus: apt-get finished, but there is still no promtool." >&2
  exit 1
fi
