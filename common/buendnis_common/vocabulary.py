"""The platform's one vocabulary: the code lists of API.md that more than one part validates
against or shows (roles, need categories, statuses, modes), the right-to-left languages, and
the words for the codes.

Codes are written once, here. Their words (German and English) are in the shared catalogue
(``translations/<language>/LC_MESSAGES/errors.po``, ids ``label.<kind>.<code>``) beside the
API's messages, so that the services' texts (the notifications' inbox sentences), the API's
errors and the web front end's pages name a code with the same word: ``label(kind, code,
language)``.
"""
from __future__ import annotations

from .messages import label

__all__ = [
    "APPOINTMENT_STATUSES", "DATA_CATEGORIES", "LABEL_KINDS", "MODES", "NEED_CATEGORIES",
    "NEED_STATUSES", "OFFER_MODES", "REFERRAL_STATUSES", "RESIDENCE_STATUSES", "ROLES",
    "RTL_LANGUAGES", "is_rtl", "label",
]

# The realm roles (the identity provider's realm file): who someone is on the platform.
ROLES = ("case_worker", "coordinator", "core_group", "ministry", "auditor")

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

NEED_STATUSES = ("open", "in_progress", "met", "dropped")

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

# A referral's statuses (FHIR's closed-loop referral) and an appointment's.
REFERRAL_STATUSES = ("requested", "accepted", "rejected", "cancelled", "in-progress", "on-hold",
                     "completed", "failed")
APPOINTMENT_STATUSES = ("booked", "cancelled", "fulfilled", "noshow")

# How an appointment (or an offer) takes place.
MODES = ("in_person", "phone", "video")
OFFER_MODES = (*MODES, "mixed")

# The kinds of code whose words the shared catalogue has (``label.<kind>.<code>``).
LABEL_KINDS = ("need_category", "need_status", "residence_status", "data_category",
               "referral_status", "appointment_status", "mode")

# Languages written right to left (ISO 639-1 and the Kurdish ckb): the participants' Arabic,
# Farsi/Dari, Pashto, Kurdish and Urdu, and Hebrew and Dhivehi. Everything shown or sent in one
# of them is marked rtl (e-mails, SMS, the answer page, the web's language names).
RTL_LANGUAGES = frozenset({"ar", "fa", "ps", "ku", "ur", "he", "dv", "ckb"})


def is_rtl(language: str | None) -> bool:
    return (language or "").split("-")[0].lower() in RTL_LANGUAGES
