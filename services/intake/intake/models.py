"""Every table of the intake database, for Alembic."""
from intake.consent.models import Consent
from intake.db import Base
from intake.importer.models import ParticipantImport
from intake.participant.models import Need, Participant

__all__ = ["Base", "Consent", "Need", "Participant", "ParticipantImport"]
