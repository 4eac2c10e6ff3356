"""The code lists of API.md that more than one service validates against: written once."""
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
