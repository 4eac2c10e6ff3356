"""The JWKS cache: fetched once, refreshed on an unknown key, never once per request."""
from __future__ import annotations

import dataclasses
import time

import pytest

from buendnis_common.auth import TokenVerifier
from buendnis_common.errors import ServiceUnavailable, Unauthorized
from buendnis_common.settings import OidcSettings
from tests.support.tokens import TokenForge

pytestmark = pytest.mark.platform


def settings_for(platform, **changes) -> OidcSettings:
    realm = f"{platform.idp_url}/realms/buendnis"
    base = OidcSettings(
        server_url=platform.idp_url, realm="buendnis", issuer=realm,
        jwks_url=f"{realm}/protocol/openid-connect/certs",
        token_url=f"{realm}/protocol/openid-connect/token",
        audience="buendnis-api", jwks_min_refresh_seconds=60, leeway_seconds=0,
    )
    return dataclasses.replace(base, **changes)


def test_keys_are_fetched_once_for_many_tokens(platform):
    verifier = TokenVerifier(settings_for(platform))
    token = platform.token("cw.jmd-leverkusen")
    for _ in range(25):
        assert verifier.principal(token).org_alias == "jmd-leverkusen"
    assert verifier.jwks.fetch_count == 1


def test_an_unknown_kid_refreshes_at_most_once_per_interval(platform):
    forge = TokenForge(platform)
    verifier = TokenVerifier(settings_for(platform, jwks_min_refresh_seconds=0.5))
    verifier.principal(platform.token("cw.jmd-leverkusen"))
    forged = forge.sign(forge.like("cw.jmd-leverkusen"), key=forge.other_key(),
                        headers={"kid": "rotated-or-forged"})
    for _ in range(10):  # right after a fetch: no refetch, however many forged kids arrive
        with pytest.raises(Unauthorized):
            verifier.principal(forged)
    assert verifier.jwks.fetch_count == 1
    time.sleep(0.6)
    for _ in range(10):  # once the interval has passed: one refetch, then none again
        with pytest.raises(Unauthorized):
            verifier.principal(forged)
    assert verifier.jwks.fetch_count == 2


def test_a_rotated_key_is_picked_up_on_first_sight(platform):
    """A key we have never seen triggers a refresh, so a key rotation needs no restart."""
    verifier = TokenVerifier(settings_for(platform, jwks_min_refresh_seconds=0))
    verifier.jwks._keys = {}  # as if the keys had rotated since the last fetch
    verifier.jwks._fetched_at = 0.0
    assert verifier.principal(platform.token("cw.awo-leverkusen")).org_alias == "awo-leverkusen"


def test_identity_provider_down_without_cached_keys_is_503_not_401(platform):
    verifier = TokenVerifier(settings_for(platform, jwks_url="http://127.0.0.1:1/certs"))
    with pytest.raises(ServiceUnavailable):
        verifier.principal(platform.token("cw.jmd-leverkusen"))
