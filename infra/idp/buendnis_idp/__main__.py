"""`python -m buendnis_idp`: run the development identity provider on a loopback address."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from joserfc.jwk import RSAKey

from . import default_realm_file
from .app import build_server, check_loopback

BANNER = """\
************************************************************************
*  Bündnis DEVELOPMENT identity provider - NOT FOR PRODUCTION.         *
*  Demo users, demo passwords, in-memory sessions.                     *
*  Use Keycloak (docker compose) for anything beyond a local machine.  *
************************************************************************"""
OPTIONS = (  # option, environment variable, default, help
    ("--host", "IDP_HOST", "127.0.0.1", "loopback address to bind"),
    ("--port", "IDP_PORT", "8080", "port (0 picks a free port)"),
    ("--realm-file", "IDP_REALM_FILE", str(default_realm_file()), "realm file; the demo users"
     " come from IDP_DEMO_USERS_FILE ('none': none)"),
    ("--issuer-base", "IDP_ISSUER_BASE", None, "public base URL (default http://<host>:<port>)"),
    ("--signing-key-file", "IDP_SIGNING_KEY_FILE", None,
     "PEM RSA private key, created if missing (default: a new key at every start)"),
)


def _say(message: str) -> None:
    print(f"buendnis-idp: {message}", file=sys.stderr, flush=True)


def _signing_key(path_text: str | None) -> bytes | None:
    path = Path(path_text) if path_text else None
    if path is None or path.exists():
        return path.read_bytes() if path else None
    pem = RSAKey.generate_key(2048).as_pem(private=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
        handle.write(pem)
    _say(f"created a new signing key in {path}")
    return pem


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m buendnis_idp", description="Keycloak-"
                                     "compatible development identity provider (loopback only).")
    for option, variable, default, text in OPTIONS:
        parser.add_argument(option, default=os.environ.get(variable, default),
                            help=f"{text} (env {variable})")
    args = parser.parse_args(argv)
    environment = (os.environ.get("BUENDNIS_ENV") or "development").strip().lower()
    if environment != "development":
        _say(f"error: refusing to run with BUENDNIS_ENV={environment}: development only (demo"
             " users, demo passwords). Use Keycloak (docker compose) beyond a local run.")
        return 1
    try:
        host = check_loopback(args.host)
    except ValueError as exc:
        _say(f"error: refusing to listen on {args.host!r} ({exc}): loopback only (127.0.0.0/8,"
             " ::1, localhost)")
        return 2
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(BANNER, file=sys.stderr)
    try:
        running = build_server(args.realm_file, host=host, port=int(args.port),
                               issuer_base=args.issuer_base,
                               signing_key_pem=_signing_key(args.signing_key_file))
    except (OSError, ValueError, OverflowError, TypeError) as exc:  # RealmFileError too
        _say(f"cannot start: {exc}")
        return 1
    _say(f"listening on {running.base_url} (realm file {args.realm_file})")
    _say(f"issuer {running.idp.issuer}")
    try:
        running.serve_forever()
    except KeyboardInterrupt:
        _say("stopped")  # Ctrl-C: a normal end
    finally:
        running.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
