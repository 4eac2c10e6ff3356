"""The reporting store: open needs per alliance and category, and the indexes reports read.

Reports carry no personal data, so neither does this table: intake's ``need.changed`` events are
folded into counts, never kept per person.
"""
from __future__ import annotations

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from referrals.db import Base
from referrals.referral.models import Referral


class NeedCount(Base):
    """How many needs of one category are open (``open`` or ``in_progress``) in one alliance."""

    __tablename__ = "report_need_counts"

    alliance: Mapped[str] = mapped_column(String(120), primary_key=True)
    category: Mapped[str] = mapped_column(String(40), primary_key=True)
    open_needs: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


# Reports read one alliance's referrals in a period, and group one alliance's referrals by
# participant (stuck), through these indexes instead of scanning the table. On PostgreSQL the
# first one carries every column the referral report reads, so that the report is an
# index-only scan, not a visit to each (wide) referral row.
Index("ix_referrals_alliance_created", Referral.alliance, Referral.created_at,
      postgresql_include=["status", "from_org", "to_org", "need_category", "answered_at",
                          "closed_at", "overdue_at"])
Index("ix_referrals_alliance_participant", Referral.alliance, Referral.participant_id,
      Referral.status)
