"""The web front end's server-side sessions, read and changed in its Redis as time would."""
from __future__ import annotations

import secrets
import time

import msgspec
import redis
import requests

SESSION_PREFIX = "web:session:"


def web_redis(platform) -> redis.Redis:
    return redis.Redis.from_url(platform.web_redis_url)


def session_keys(platform) -> set[bytes]:
    return set(web_redis(platform).scan_iter(f"{SESSION_PREFIX}*", count=1000))


def read_session(platform, sid: str) -> dict | None:
    raw = web_redis(platform).get(f"{SESSION_PREFIX}{sid}")
    return msgspec.msgpack.decode(raw) if raw else None


def write_session(platform, sid: str, data: dict, *, ttl: int | None = None) -> None:
    key = f"{SESSION_PREFIX}{sid}"
    encoded = msgspec.msgpack.encode(data)
    if ttl is None:
        web_redis(platform).set(key, encoded, keepttl=True)
    else:
        web_redis(platform).set(key, encoded, ex=ttl)


def browser_sid(context) -> str:
    return {c["name"]: c["value"] for c in context.cookies()}["buendnis_session"]


def edit_web_session(platform, context, change) -> None:
    """Changes the server-side session of a browser context."""
    sid = browser_sid(context)
    data = read_session(platform, sid)
    change(data)
    write_session(platform, sid, data)


def end_sign_in(platform, context) -> None:
    """What an ended sign-in looks like: the identity provider's session is gone (its cookies)
    and the web session's tokens are refused; the web session itself is still there."""

    def refuse(data):
        data["token"]["expires_at"] = 1_000_000_000  # long past
        data["token"]["refresh_token"] = "no-longer-valid"

    edit_web_session(platform, context, refuse)
    kept = [c for c in context.cookies() if c["name"] == "buendnis_session"]
    context.clear_cookies()
    context.add_cookies(kept)


def signed_in_session(platform, username: str) -> str:
    """A signed-in web session made directly in Redis (no browser): its id, for a cookie."""
    token = platform.token(username)
    user = requests.get(f"{platform.gateway_url}/api/v1/me", timeout=10,
                        headers={"Authorization": f"Bearer {token}"}).json()
    sid = secrets.token_urlsafe(32)
    write_session(platform, sid, {
        "_permanent": True,
        "token": {"access_token": token, "token_type": "Bearer",
                  "expires_at": int(time.time()) + 240},
        "user": user,
    }, ttl=600)
    return sid
