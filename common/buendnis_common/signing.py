"""Keyed signatures for what crosses Redis (event envelopes) and for the audit chain.

Whoever can write to Redis can put any Celery message into a service's queue. Redis is a broker,
not an authority: an event is believed only if it carries an HMAC-SHA256 over its canonical JSON
under a key of this deployment (``EVENT_SIGNING_KEY``), which Redis never sees. Every consumer
checks the signature before anything else and refuses (logs without the event's data, counts,
acknowledges and drops) whatever is unsigned, signed with an unknown key or wrongly signed, or
comes from a service that does not produce that event type.

Why our own envelope and not Celery's ``auth`` serializer: that serializer signs only the message
body (protocol 2 keeps the task name and id in unsigned headers, so a captured body can be sent
again under another task's name), it needs an X.509 key and certificate for every worker and a
certificate store, the task never learns who signed (so the gateway could not tie an audit entry
to its source), and a refused message ends in Celery's decode-error log, which prints the whole
body. The envelope is signed whole (id, type, source, time, data, key id) and the check is ours:
its log line and counter are what we decide.

Keys carry an id (a hash of the key, never the key), so a key can be rotated: sign with the new
``EVENT_SIGNING_KEY`` and keep the old one in ``EVENT_SIGNING_KEYS_OLD`` until every event
signed with it has been consumed.

One key for the whole deployment means: every process that holds it can sign an event as any
service. It keeps out whoever only reaches Redis; it does not keep one compromised service from
speaking for another (that needs a key pair per service, named in the catalogue).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .settings import env_list, env_secret

log = logging.getLogger("buendnis.security")

DEMO_EVENT_SIGNING_KEY = "demo-event-signing-key-change-me"
KEY_MIN_LENGTH = 32
ALGORITHM = "HMAC-SHA256"

# Which service produces which events, by the event type's namespace. ``audit.recorded`` comes
# from every service that records reads and writes of personal data.
PRODUCERS: dict[str, frozenset[str]] = {
    "participant": frozenset({"intake"}),
    "need": frozenset({"intake"}),
    "consent": frozenset({"intake"}),
    "referral": frozenset({"referrals"}),
    "appointment": frozenset({"referrals"}),
    "audit": frozenset({"intake", "referrals", "notifications"}),
    # a participant's SMS reply, matched to an appointment by notifications
    "answer": frozenset({"notifications"}),
}

REFUSED_COUNTER = "buendnis:refused_events"


def producers_of(event_type: str) -> frozenset[str]:
    return PRODUCERS.get(event_type.partition(".")[0], frozenset())


def canonical_json(value: Any) -> bytes:
    """The one byte string a signature is computed over: sorted keys, no spaces, ASCII."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode()


def key_id(secret: str) -> str:
    """A short name of a key that says nothing usable about it."""
    return "k" + hashlib.sha256(b"buendnis key id\x00" + secret.encode()).hexdigest()[:12]


class Keyring:
    """The current key (signs) and older ones (still verify), by key id."""

    def __init__(self, current: str, old: Iterable[str] = ()) -> None:
        self.current_id = key_id(current)
        self._keys = {key_id(secret): secret.encode() for secret in [*old, current]}

    def mac(self, payload: bytes, kid: str | None = None) -> str:
        return hmac.new(self._keys[kid or self.current_id], payload, hashlib.sha256).hexdigest()

    def knows(self, kid: str) -> bool:
        return kid in self._keys

    def verify(self, kid: str, payload: bytes, mac: str) -> bool:
        if not self.knows(kid) or not isinstance(mac, str):
            return False
        return hmac.compare_digest(self.mac(payload, kid), mac)

    def key_ids(self) -> list[str]:
        return list(self._keys)


class RefusedEvent(Exception):
    """A message in an event queue that is not a genuine event of this deployment."""

    def __init__(self, reason: str, envelope: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.envelope = envelope if isinstance(envelope, dict) else {}


_LOGGABLE = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


def _loggable(value: Any) -> str:
    """Only ids and codes reach the log: anything else a forger wrote is left out."""
    return value if isinstance(value, str) and _LOGGABLE.match(value) else "-"


@dataclass
class EventSigner:
    """Signs this service's outgoing envelopes and checks incoming ones."""

    keys: Keyring

    @classmethod
    def from_env(cls) -> EventSigner:
        """``EVENT_SIGNING_KEY`` signs; ``EVENT_SIGNING_KEYS_OLD`` (comma-separated) still
        verify. Outside development a demo or unset key stops the process."""
        return cls(Keyring(
            env_secret("EVENT_SIGNING_KEY", DEMO_EVENT_SIGNING_KEY, min_length=KEY_MIN_LENGTH),
            env_list("EVENT_SIGNING_KEYS_OLD"),
        ))

    def sign(self, envelope: dict[str, Any]) -> dict[str, Any]:
        signed = {key: value for key, value in envelope.items() if key != "mac"}
        signed["kid"] = self.keys.current_id
        signed["mac"] = self.keys.mac(canonical_json(signed))
        return signed

    def check(self, message: Any) -> dict[str, Any]:
        """The envelope without its signature fields, or :class:`RefusedEvent`."""
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise RefusedEvent("malformed", message)
        if "mac" not in message or "kid" not in message:
            raise RefusedEvent("unsigned", message)
        kid, mac = message["kid"], message["mac"]
        if not isinstance(kid, str) or not self.keys.knows(kid):
            raise RefusedEvent("unknown_key", message)
        unsigned = {key: value for key, value in message.items() if key != "mac"}
        try:
            payload = canonical_json(unsigned)
        except (TypeError, ValueError):
            raise RefusedEvent("malformed", message) from None
        if not self.keys.verify(kid, payload, mac):
            raise RefusedEvent("bad_signature", message)
        if message.get("source") not in producers_of(message["type"]):
            raise RefusedEvent("wrong_source", message)
        return {key: value for key, value in unsigned.items() if key != "kid"}


def record_refusal(service: str, refused: RefusedEvent, redis_client: Any = None) -> None:
    """A security log line (ids and codes only, never the data) and a counter in Redis,
    ``HGETALL buendnis:refused_events`` → ``{"<service>:<reason>": count}``."""
    envelope = refused.envelope
    log.warning(
        "event refused by %s: %s (id %s, type %s, source %s, key %s); dropped unhandled",
        service, refused.reason, _loggable(envelope.get("id")), _loggable(envelope.get("type")),
        _loggable(envelope.get("source")), _loggable(envelope.get("kid")),
    )
    if redis_client is None:
        return
    try:
        redis_client.hincrby(REFUSED_COUNTER, f"{service}:{refused.reason}", 1)
    except Exception:  # noqa: BLE001 - the log line stands even when Redis does not answer
        log.warning("refused-event counter not updated (Redis did not answer)")
