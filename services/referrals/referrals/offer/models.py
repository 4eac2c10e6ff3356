from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, Uuid
from sqlalchemy import false as sa_false
from sqlalchemy.ext.associationproxy import AssociationProxy, association_proxy
from sqlalchemy.orm import Mapped, mapped_column, relationship

from buendnis_common.db import UtcDateTime, new_id, utcnow
from referrals.db import Base


class OfferLanguage(Base):
    """A language an offer is held in; a row each, so that the catalogue filters in SQL."""

    __tablename__ = "offer_languages"

    offer_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("offers.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(2), primary_key=True, index=True)


class Offer(Base):
    """An offer of one organisation (provider) in the alliance's catalogue ("Angebot")."""

    __tablename__ = "offers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    provider_org: Mapped[str] = mapped_column(String(120), index=True)
    alliance: Mapped[str] = mapped_column(String(120), index=True)
    title: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(40), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    municipality: Mapped[str | None] = mapped_column(String(120))
    mode: Mapped[str | None] = mapped_column(String(20))
    eligible_residence_statuses: Mapped[list] = mapped_column(JSON, default=list)
    min_age: Mapped[int | None] = mapped_column(Integer)
    max_age: Mapped[int | None] = mapped_column(Integer)
    capacity: Mapped[int | None] = mapped_column(Integer)
    schedule: Mapped[str | None] = mapped_column(String(500))
    contact: Mapped[str | None] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Marked by its provider for the open offer directory (HSDS, without a token); off by
    # default, so that nothing is published unless the provider chose to.
    public: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false(),
                                         nullable=False, index=True)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Bumped on every change: the ETag, and the guard against two concurrent changes.
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    language_rows: Mapped[list[OfferLanguage]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by=OfferLanguage.code
    )
    languages: AssociationProxy[list[str]] = association_proxy(
        "language_rows", "code", creator=lambda code: OfferLanguage(code=code)
    )

    __mapper_args__ = {"version_id_col": version}
