"""Serving the provider: loopback-only binding, a request log without query strings (so no
secret reaches it), and a handle for tests that runs it in a thread."""

from __future__ import annotations

import ipaddress
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

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


@dataclass
class RunningServer:
    server: BaseWSGIServer
    app: Flask
    base_url: str
    thread: threading.Thread | None = None

    idp = property(lambda self: self.app.extensions[EXTENSION])
    port = property(lambda self: self.server.server_port)

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
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
    apps: list[Flask] = []  # the server binds first: the issuer needs the port it got
    server = make_server(host, port, lambda environ, start: apps[0](environ, start),
                         threaded=True, request_handler=_QuietRequestHandler)
    base_url = f"http://{f'[{host}]' if ':' in host else host}:{server.server_port}"
    try:
        apps.append(create_app(realm_file, issuer_base=issuer_base or base_url,
                               signing_key_pem=signing_key_pem))
    except BaseException:
        server.server_close()
        raise
    return RunningServer(server=server, app=apps[0], base_url=base_url)


def start_in_thread(realm_file: str | Path, **kwargs: Any) -> RunningServer:
    """Start the provider in a daemon thread; call `.stop()` (or use `with`) to end it."""
    running = build_server(realm_file, **kwargs)
    running.thread = threading.Thread(target=running.serve_forever, name="buendnis-idp",
                                      daemon=True)
    running.thread.start()
    return running
