"""The notifications database: its declarative base and the tables every service has."""
from sqlalchemy.orm import DeclarativeBase

from buendnis_common.audit import AuditEntryMixin
from buendnis_common.events import OutboxMixin, ProcessedEventMixin
from buendnis_common.service import Models


class Base(DeclarativeBase):
    """This service's tables; no other service reads them."""


class OutboxEvent(OutboxMixin, Base):
    """Events written with the change that caused them, waiting to be relayed."""


class ProcessedEvent(ProcessedEventMixin, Base):
    """Ids of the events this service has handled."""


class AuditEntry(AuditEntryMixin, Base):
    """Who read or changed which participant's data, here; shipped to the audit trail."""


MODELS = Models(outbox=OutboxEvent, processed_event=ProcessedEvent, audit_entry=AuditEntry)
