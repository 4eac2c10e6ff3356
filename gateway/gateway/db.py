"""The gateway database, which holds the audit trail; and the tables every runtime has."""
from sqlalchemy.orm import DeclarativeBase

from buendnis_common.audit import AuditEntryMixin
from buendnis_common.events import OutboxMixin, ProcessedEventMixin
from buendnis_common.service import Models


class Base(DeclarativeBase):
    pass


class OutboxEvent(OutboxMixin, Base):
    pass


class ProcessedEvent(ProcessedEventMixin, Base):
    pass


class AuditEntry(AuditEntryMixin, Base):
    pass


MODELS = Models(outbox=OutboxEvent, processed_event=ProcessedEvent, audit_entry=AuditEntry)
