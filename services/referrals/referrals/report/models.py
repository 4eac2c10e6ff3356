"""The reporting store: open needs per alliance and category, the persons' record keys, and the
indexes reports read.

Reports carry no personal data, so neither do the open-need counts: intake's ``need.changed``
events are folded into counts, never kept per person. The referral figures are pre-aggregated in
``referrals.report.aggregate``: per alliance, and per (alliance, person) the counters that make
distinct persons countable without a recount (ids and numbers only, as the referrals themselves).
The record keys of the Cell Key Method (``referrals.report.ckm``) are per person: a random number,
drawn once when the person first appears here (a referral, a need), never changed, never shown,
never leaving this database.
"""
from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, Index, Integer, String, Uuid, event, select
from sqlalchemy.orm import Mapped, mapped_column

from referrals.db import Base
from referrals.referral.models import Referral
from referrals.report.aggregate import (  # noqa: F401 - the tables, and the flush hook with them
    AggregateState,
    AlliancePerson,
    AllianceTotal,
    AnswerHour,
    AnswerTime,
    OpenReferralPerson,
    OpenReferralTotal,
)
from referrals.report.ckm import new_record_key


class PersonKey(Base):
    """A person's record key for the Cell Key Method. Whoever knew every key of a cell's
    persons could take its noise off: the keys are read by the report queries only."""

    __tablename__ = "report_person_keys"

    participant_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    record_key: Mapped[int] = mapped_column(BigInteger, nullable=False)


def ensure_person_key(connection, participant_id: uuid.UUID) -> int:
    """The person's record key, drawn now unless they have one (a key is never drawn again)."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    connection.execute(
        insert(PersonKey).values(participant_id=participant_id, record_key=new_record_key())
        .on_conflict_do_nothing(index_elements=[PersonKey.participant_id])
    )
    return connection.scalar(
        select(PersonKey.record_key).where(PersonKey.participant_id == participant_id))


@event.listens_for(Referral, "before_insert")
def _key_for_referred_person(_mapper, connection, target: Referral) -> None:
    # Every way a referral is made (the API, imports, tests) passes here, in its transaction.
    target.person_key = ensure_person_key(connection, target.participant_id)


class NeedCount(Base):
    """How many needs of one category are open (``open`` or ``in_progress``) in one alliance."""

    __tablename__ = "report_need_counts"

    alliance: Mapped[str] = mapped_column(String(120), primary_key=True)
    category: Mapped[str] = mapped_column(String(40), primary_key=True)
    open_needs: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # The sum of the record keys behind the open needs (a person once per open need): the
    # cell key of ``open_needs``, kept up to date with the count.
    key_sum: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


# Reports read one alliance's referrals in a period, and group one alliance's referrals by
# participant (stuck), through these indexes instead of scanning the table. On PostgreSQL the
# first one carries every column the referral report reads (the participant and their record
# key too: figures count persons, and their keys make the cell key), so that the report is an
# index-only scan, not a visit to each (wide) referral row nor a join with every person's key.
Index("ix_referrals_alliance_created", Referral.alliance, Referral.created_at,
      postgresql_include=["status", "from_org", "to_org", "need_category", "answered_at",
                          "closed_at", "overdue_at", "participant_id", "person_key"])
Index("ix_referrals_alliance_participant", Referral.alliance, Referral.participant_id,
      Referral.status)
