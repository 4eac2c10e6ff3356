#!/bin/bash
# The stand-in for the official redis image's entry point: redis-server as the redis user in
# /data, and, as the official image does, without protected mode (the container's network is the
# boundary; the broker has a password).
set -euo pipefail
if [ "${1:-}" = redis-server ] || [ $# = 0 ]; then
  [ $# -gt 0 ] && shift
  set -- redis-server --protected-mode no "$@"
  if [ "$(id -u)" = 0 ]; then
    chown -R redis:redis /data
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi
exec "$@"
