"""The duplicate hint: a keyed hash of the normalised name and birth date.

Organisations never see each other's names: each record stores only the HMAC of its normalised
name and birth date, keyed with a secret (``DUPLICATE_MATCH_KEY``), and a new registration is
compared by that value alone.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from datetime import date

from buendnis_common.settings import env_secret

_NOT_LETTERS = re.compile(r"[^a-z]+")


def normalise(name: str) -> list[str]:
    """``"Al-Hassan,  Müller "`` → ``["al", "hassan", "muller"]``: case, accents, hyphens and
    spacing differ between lists; the letters do not."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    ascii_only = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return [part for part in _NOT_LETTERS.split(ascii_only) if part]


def match_key(given_name: str, family_name: str, birth_date: date) -> str:
    # Sorted, so that swapped given and family names (common in transliteration) still match.
    tokens = sorted(normalise(given_name) + normalise(family_name))
    message = f"{' '.join(tokens)}|{birth_date.isoformat()}".encode()
    return hmac.new(duplicate_match_key(), message, hashlib.sha256).hexdigest()


def duplicate_match_key() -> bytes:
    """The demo key is documented as such; outside development ``DUPLICATE_MATCH_KEY`` must be
    set (``create_app`` reads it once, so a process without it does not start)."""
    return env_secret("DUPLICATE_MATCH_KEY", "demo-duplicate-match-key").encode()
