"""The SMS provider's request signature, as Twilio signs its webhooks.

``X-Twilio-Signature`` = base64(HMAC-SHA1(secret, URL + each form field's name and value, the
names sorted)). The URL is the one the provider called — the gateway's public address
(``SMS_WEBHOOK_URL``), not the address the request reaches this service at. HMAC and the
constant-time comparison come from the standard library; the scheme is Twilio's, documented at
https://www.twilio.com/docs/usage/security#validating-requests.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable


def _payload(url: str, fields: Iterable[tuple[str, str]]) -> bytes:
    text = url + "".join(f"{name}{value}" for name, value in sorted(fields))
    return text.encode("utf-8")


def sign(secret: str, url: str, fields: Iterable[tuple[str, str]]) -> str:
    digest = hmac.new(secret.encode("utf-8"), _payload(url, fields), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def valid(secret: str, url: str, fields: Iterable[tuple[str, str]],
          signature: str | None) -> bool:
    if not signature:
        return False
    return hmac.compare_digest(sign(secret, url, fields).encode("ascii"),
                               signature.strip().encode("ascii", "replace"))
