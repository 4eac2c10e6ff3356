"""Every table of the notifications database, for Alembic."""
from notifications.db import Base

__all__ = ["Base"]
