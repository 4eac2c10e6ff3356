"""Every table of the referrals database, for Alembic."""
from referrals.db import Base
from referrals.erasure.models import ParticipantErasure

__all__ = ["Base", "ParticipantErasure"]
