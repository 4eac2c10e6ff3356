"""Every table of the gateway database, for Alembic."""
from gateway.audit.models import AuditChainHead, AuditTrailEntry
from gateway.db import Base

__all__ = ["AuditChainHead", "AuditTrailEntry", "Base"]
