"""Every table of the intake database, for Alembic."""
from intake.db import Base
from intake.participant.models import Participant

__all__ = ["Base", "Participant"]
