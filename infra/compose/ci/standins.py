"""CI stand-ins for Keycloak and Mailpit in the compose stack (docker-compose.ci.yml only).

No image of Keycloak or Mailpit can be pulled on the CI machines, so `make test-compose` runs the
platform's own development tools in their place, from the image's ``devtools`` stage:

- ``idp``: the local identity provider (same realm file, plus the demo users), serving Keycloak's
  URLs at ``keycloak:8080`` with the issuer ``http://localhost:8080/realms/buendnis`` that the
  compose file gives every service. It binds only to loopback by design, so it listens on
  127.0.0.1:8081 and a plain TCP relay passes the compose network's connections on port 8080 to
  it. Like the provider itself, this refuses to run unless ``BUENDNIS_ENV=development``.
- ``smtp``: the SMTP sink on port 1025 of the compose network, keeping every message in the
  Maildir ``$BUENDNIS_VAR/mail`` (read by the test with ``podman exec``).
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

INNER_PORT = 8081


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        # A peer that goes away mid-stream simply ends the relay.
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
    finally:
        writer.close()


async def _relay(listen_port: int, target_port: int, child: subprocess.Popen) -> int:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

    server = await asyncio.start_server(handle, "0.0.0.0", listen_port)
    async with server:
        while child.poll() is None:
            await asyncio.sleep(1)
    return child.returncode or 1


def idp() -> int:
    if (os.environ.get("BUENDNIS_ENV") or "").strip().lower() != "development":
        print("standins: the local identity provider runs with BUENDNIS_ENV=development only",
              file=sys.stderr)
        return 1
    # As PID 1 of its container the process ignores SIGTERM unless it handles it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    child = subprocess.Popen([  # noqa: S603 - fixed arguments
        sys.executable, "-m", "buendnis_idp", "--host", "127.0.0.1", "--port", str(INNER_PORT),
        "--issuer-base", os.environ.get("IDP_ISSUER_BASE", "http://localhost:8080"),
    ])
    try:
        return asyncio.run(_relay(8080, INNER_PORT, child))
    finally:
        child.terminate()


def smtp() -> int:
    from buendnis_dev import smtp as sink
    from buendnis_dev import wait_for_stop

    # As `python -m buendnis_dev.smtp` does: the sink's threads must not take the stop signal.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    maildir = Path(os.environ.get("BUENDNIS_VAR", "var")) / "mail"
    controller = sink.start(int(os.environ.get("SMTP_PORT", "1025")), maildir, host="0.0.0.0")
    print(f"standins: SMTP sink on :1025, messages in {maildir}/new", flush=True)
    try:
        wait_for_stop()
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit({"idp": idp, "smtp": smtp}[sys.argv[1]]())
