"""`python -m buendnis_idp`: run the development identity provider on a loopback address."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from joserfc.jwk import RSAKey

from . import default_realm_file
from .realm import RealmFileError
from .server import NotLoopback, build_server, check_loopback

EXIT_USAGE = 2

BANNER = """\
************************************************************************
*  Bündnis DEVELOPMENT identity provider - NOT FOR PRODUCTION.         *
*  Demo users, demo passwords, in-memory sessions, no login page.      *
*  Use Keycloak (docker compose) for anything beyond a local machine.  *
************************************************************************"""


def _parser() -> argparse.ArgumentParser:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m buendnis_idp",
        description="Keycloak-compatible development identity provider for the Bündnis realm"
        " (loopback only).",
    )
    parser.add_argument(
        "--host",
        default=env.get("IDP_HOST", "127.0.0.1"),
        help="loopback address to bind (env IDP_HOST, default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        default=env.get("IDP_PORT", "8080"),
        help="port (env IDP_PORT, default 8080; 0 picks a free port)",
    )
    parser.add_argument(
        "--realm-file",
        default=env.get("IDP_REALM_FILE"),
        help="realm file (env IDP_REALM_FILE, default infra/keycloak/buendnis-realm.json);"
        " the demo users come from IDP_DEMO_USERS_FILE (default"
        " infra/keycloak/buendnis-realm-demo-users.json, 'none' for none)",
    )
    parser.add_argument(
        "--issuer-base",
        default=env.get("IDP_ISSUER_BASE"),
        help="public base URL for the issuer (env IDP_ISSUER_BASE, default http://<host>:<port>)",
    )
    parser.add_argument(
        "--signing-key-file",
        default=env.get("IDP_SIGNING_KEY_FILE"),
        help="PEM RSA private key (env IDP_SIGNING_KEY_FILE); created if missing;"
        " without it a new key is made at every start",
    )
    return parser


def _usage_error(message: str) -> int:
    print(f"buendnis-idp: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _signing_key(path_text: str | None) -> bytes | None:
    if not path_text:
        return None
    path = Path(path_text)
    if path.exists():
        return path.read_bytes()
    pem = RSAKey.generate_key(2048).as_pem(private=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    print(f"buendnis-idp: created a new signing key in {path}", file=sys.stderr)
    return pem


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    environment = (os.environ.get("BUENDNIS_ENV") or "development").strip().lower()
    if environment != "development":
        print(
            f"buendnis-idp: error: refusing to run with BUENDNIS_ENV={environment}: this identity"
            " provider is for development only (demo users, demo passwords). Use Keycloak with"
            " infra/keycloak/buendnis-realm.json (docker compose), or set"
            " BUENDNIS_ENV=development for a local run.",
            file=sys.stderr,
        )
        return 1
    try:
        host = check_loopback(args.host)
    except NotLoopback as exc:
        return _usage_error(
            f"refusing to listen on {args.host!r}: {exc}. This development identity provider"
            " binds only to loopback (127.0.0.0/8, ::1, localhost)."
        )
    try:
        port = int(args.port)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        return _usage_error(f"invalid port {args.port!r}")
    realm_file = Path(args.realm_file) if args.realm_file else default_realm_file()
    if not realm_file.is_file():
        return _usage_error(
            f"realm file {realm_file} not found (use --realm-file or IDP_REALM_FILE)"
        )

    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    print(BANNER, file=sys.stderr)
    try:
        signing_key = _signing_key(args.signing_key_file)
        running = build_server(
            realm_file,
            host=host,
            port=port,
            issuer_base=args.issuer_base,
            signing_key_pem=signing_key,
        )
    except (OSError, ValueError, TypeError, RealmFileError) as exc:
        print(f"buendnis-idp: cannot start: {exc}", file=sys.stderr)
        return 1
    idp = running.idp
    print(
        f"buendnis-idp: listening on {running.base_url} (realm file {realm_file})", file=sys.stderr
    )
    print(f"buendnis-idp: issuer {idp.issuer}", file=sys.stderr)
    print(
        "buendnis-idp: DEVELOPMENT ONLY - do not expose, do not use in production.",
        file=sys.stderr,
        flush=True,
    )
    try:
        running.serve_forever()
    except KeyboardInterrupt:
        print("buendnis-idp: stopped", file=sys.stderr, flush=True)  # Ctrl-C: a normal end
    finally:
        running.server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
