"""Fixtures: the identity provider as a real HTTP server on 127.0.0.1, for python-keycloak."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from keycloak import KeycloakOpenID

from buendnis_idp import (
    IdentityProvider,
    RunningServer,
    default_realm_file,
    realm_representation,
    start_in_thread,
)

REALM = "buendnis"


@pytest.fixture(scope="session")
def realm_file() -> Path:
    path = default_realm_file()
    assert path.is_file(), f"realm file missing: {path}"
    return path


@pytest.fixture(scope="session")
def realm_rep(realm_file: Path) -> dict[str, Any]:
    """The realm as the local provider reads it: the realm file with the demo users."""
    return realm_representation(realm_file, env=False)


@pytest.fixture(scope="session")
def production_realm_rep(realm_file: Path) -> dict[str, Any]:
    """The realm file alone, as Keycloak in compose imports it."""
    return json.loads(realm_file.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def idp_server(realm_file: Path) -> Iterator[RunningServer]:
    server = start_in_thread(realm_file, host="127.0.0.1", port=0)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def idp(idp_server: RunningServer) -> Iterator[IdentityProvider]:
    provider = idp_server.idp
    clock = provider.clock
    yield provider
    provider.clock = clock  # tests that travel in time leave the clock as they found it


@pytest.fixture()
def keycloak(idp_server: RunningServer) -> Callable[..., KeycloakOpenID]:
    """`keycloak("buendnis-cli")` or `keycloak("intake-service", "demo-intake-secret")`."""

    def make(client_id: str = "buendnis-cli", secret: str | None = None) -> KeycloakOpenID:
        return KeycloakOpenID(
            server_url=idp_server.base_url,
            realm_name=REALM,
            client_id=client_id,
            client_secret_key=secret,
            timeout=10,
        )

    return make
