"""Every table of the referrals database, for Alembic."""
from referrals.appointment.models import AnswerLinkUse, Appointment
from referrals.db import Base
from referrals.erasure.models import ParticipantErasure
from referrals.offer.models import Offer, OfferLanguage
from referrals.referral.models import Message, Referral, StatusChange, WithdrawnConsent
from referrals.report.models import NeedCount, PersonKey

__all__ = [
    "AnswerLinkUse",
    "Appointment",
    "Base",
    "Message",
    "NeedCount",
    "Offer",
    "OfferLanguage",
    "ParticipantErasure",
    "PersonKey",
    "Referral",
    "StatusChange",
    "WithdrawnConsent",
]
