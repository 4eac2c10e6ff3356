"""The code lists of API.md that referrals validates against (intake keeps the same lists)."""
from __future__ import annotations

NEED_CATEGORIES = (
    "language_course",
    "integration_course",
    "identity_clarification",
    "school_qualification",
    "vocational_training",
    "employment",
    "internship",
    "counselling",
    "housing",
    "health",
    "legal_advice",
    "other",
)

RESIDENCE_STATUSES = (
    "aufenthaltsgestattung",
    "duldung",
    "aufenthaltserlaubnis",
    "niederlassungserlaubnis",
    "other",
    "unknown",
)

# What a participant may consent to share with a receiving organisation.
DATA_CATEGORIES = ("identity", "contact", "languages", "residence", "needs", "education")

# How an offer or an appointment takes place (the seeds: counselling by phone and video worked).
MODES = ("in_person", "phone", "video")
OFFER_MODES = (*MODES, "mixed")

# ISO 639-1: two lower-case letters.
LANGUAGE_PATTERN = r"^[a-z]{2}$"

# The roles that work cases and curate the catalogue for their own organisation.
CASE_ROLES = ("case_worker", "coordinator")
