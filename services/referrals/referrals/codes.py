"""The code lists referrals validates against; the shared ones come from buendnis_common."""
from __future__ import annotations

from buendnis_common.vocabulary import (
    DATA_CATEGORIES,
    MODES,
    NEED_CATEGORIES,
    OFFER_MODES,
    RESIDENCE_STATUSES,
)

__all__ = ["DATA_CATEGORIES", "NEED_CATEGORIES", "RESIDENCE_STATUSES", "MODES", "OFFER_MODES",
           "LANGUAGE_PATTERN"]

# ISO 639-1: two lower-case letters.
LANGUAGE_PATTERN = r"^[a-z]{2}$"
