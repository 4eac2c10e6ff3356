"""Serving the provider: loopback-only binding, a request log without query strings (so no
secret reaches it), and a handle for tests that runs it in a thread."""

from __future__ import annotations

import ipaddress
import logging
import threading
from pathlib import Path
from typing import Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from .app import EXTENSION, create_app

log = logging.getLogger("buendnis_idp.http")


class NotLoopback(ValueError):
    """The provider may only listen on a loopback address."""


def check_loopback(host: str) -> str:
    """Return the host if it is loopback (127.0.0.0/8, ::1, localhost), else raise NotLoopback."""
    if host.strip().lower() == "localhost":
        return "localhost"
    try:
        address = ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise NotLoopback(f"{host!r} is not a loopback address")
    return str(address)


class _QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        path = (self.path or "").split("?", 1)[0]
        log.info("%s %s %s", self.command, path, getattr(code, "value", code))


class RunningServer(ThreadedWSGIServer):
    """The werkzeug server of one provider, bound first: the issuer needs the port it got."""

    thread: threading.Thread | None = None
    idp = property(lambda self: self.app.extensions[EXTENSION])

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self.thread is not None:
            self.thread.join(timeout=5)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def build_server(realm_file: str | Path, *, host: str = "127.0.0.1", port: int = 0,
                 issuer_base: str | None = None,
                 signing_key_pem: bytes | None = None) -> RunningServer:
    """Bind a threaded werkzeug server on a loopback address (port 0: any free port)."""
    host = check_loopback(host)
    server = RunningServer(host, port, None, _QuietRequestHandler)
    server.base_url = f"http://{f'[{host}]' if ':' in host else host}:{server.server_port}"
    try:
        server.app = create_app(realm_file, issuer_base=issuer_base or server.base_url,
                                signing_key_pem=signing_key_pem)
    except BaseException:
        server.server_close()
        raise
    return server


def start_in_thread(realm_file: str | Path, **kwargs: Any) -> RunningServer:
    """Start the provider in a daemon thread; call `.stop()` (or use `with`) to end it."""
    running = build_server(realm_file, **kwargs)
    running.thread = threading.Thread(target=running.serve_forever, name="buendnis-idp",
                                      daemon=True)
    running.thread.start()
    return running
