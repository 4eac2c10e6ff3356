"""Every table of the gateway database, for Alembic; and what the running gateway may do with
them on PostgreSQL.

Migrations run as the database's owner (``GATEWAY_MIGRATE_DATABASE_URL``); the gateway, its
worker and beat run as another role (``GATEWAY_DATABASE_URL``), which ``buendnis_common.migrate``
grants exactly ``RUNTIME_GRANTS``: it can append to the audit trail and read it, never change,
delete or truncate it, and, not being the owner, never disable its triggers.
"""
from gateway.audit.models import AuditTrailEntry
from gateway.db import Base

RUNTIME_GRANTS = {
    "audit_trail": "SELECT, INSERT",
    "processed_events": "SELECT, INSERT",
    "audit_log": "SELECT, INSERT",
    # The relay marks published rows (the gateway emits no events of its own today).
    "outbox": "SELECT, INSERT, UPDATE",
}

__all__ = ["RUNTIME_GRANTS", "AuditTrailEntry", "Base"]
