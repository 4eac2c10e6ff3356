"""Serving the provider: loopback-only binding, a quiet request log, a handle for tests."""

from __future__ import annotations

import ipaddress
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import EXTENSION, IdentityProvider, create_app

log = logging.getLogger("buendnis_idp.http")


class NotLoopback(ValueError):
    """The provider may only listen on a loopback address."""


def check_loopback(host: str) -> str:
    """Return the host if it is loopback (127.0.0.0/8, ::1, localhost), else raise NotLoopback."""
    candidate = host.strip()
    if candidate.lower() == "localhost":
        return "localhost"
    try:
        address = ipaddress.ip_address(candidate.strip("[]"))
    except ValueError:
        raise NotLoopback(f"{host!r} is not a loopback address") from None
    if not address.is_loopback:
        raise NotLoopback(f"{host!r} is not a loopback address")
    return str(address)


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class _QuietRequestHandler(WSGIRequestHandler):
    """Logs method, path and status only: no query strings, so nothing secret reaches the log."""

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        path = (self.path or "").split("?", 1)[0]
        log.info("%s %s %s", self.command, path, getattr(code, "value", code))


class _LateBoundApp:
    """The server must bind before the issuer (which needs the port) and so the app are known."""

    def __init__(self) -> None:
        self.app: Flask | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        assert self.app is not None, "the identity provider app is not ready yet"
        return self.app(environ, start_response)


@dataclass
class RunningServer:
    server: BaseWSGIServer
    app: Flask
    base_url: str
    thread: threading.Thread | None = None

    @property
    def idp(self) -> IdentityProvider:
        return self.app.extensions[EXTENSION]

    @property
    def port(self) -> int:
        return self.server.server_port

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


def build_server(
    realm_file: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    issuer_base: str | None = None,
    signing_key_pem: bytes | None = None,
) -> RunningServer:
    """Bind a threaded werkzeug server on a loopback address (port 0: any free port)."""
    host = check_loopback(host)
    holder = _LateBoundApp()
    server = make_server(host, port, holder, threaded=True, request_handler=_QuietRequestHandler)
    base_url = f"http://{url_host(host)}:{server.server_port}"
    try:
        holder.app = create_app(
            realm_file, issuer_base=issuer_base or base_url, signing_key_pem=signing_key_pem
        )
    except BaseException:
        server.server_close()
        raise
    return RunningServer(server=server, app=holder.app, base_url=base_url)


def start_in_thread(realm_file: str | Path, **kwargs: Any) -> RunningServer:
    """Start the provider in a daemon thread; call `.stop()` (or use `with`) to end it."""
    running = build_server(realm_file, **kwargs)
    running.thread = threading.Thread(
        target=running.serve_forever, name="buendnis-idp", daemon=True
    )
    running.thread.start()
    return running
