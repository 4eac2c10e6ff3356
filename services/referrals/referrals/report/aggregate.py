"""The reports' pre-aggregated figures: per alliance (and per alliance and need category for open
referrals), kept up to date in the transaction that changes a referral, and rebuilt from the
referrals table on demand.

Why: the state-wide report counted every referral of every alliance per person (the Cell Key
Method needs distinct persons and their record keys per cell), over a second at a million
referrals. The overview reports (no period, no grouping) now read a few rows.

Distinct persons are kept exactly, without a recount, through a membership table: one row per
(cell, person) with that person's counters in the cell (referrals, answered, accepted, …). A change
to a referral adds its deltas to the row with ``INSERT … ON CONFLICT DO UPDATE … RETURNING``; the
row's counters before and after tell whether the person *entered* a part of the cell (0 → more,
their record key joins the part's key sum and the part's person count goes up by one) or *left* it
(back to 0). The upsert locks the row, so two transactions changing one person's referrals at once
see each other's counters (PostgreSQL, read committed): a person is never counted twice nor lost.
The cell's totals (referrals, persons, key sums per part) are a second table, changed by the same
deltas; rows are locked in key order, so two transactions cannot deadlock on them. A person's row
goes when their last referral of the cell does.

Medians cannot be kept as a running figure; the exact response times are: a histogram per
alliance of the times to the first answer in microseconds (``report_answer_times``: no persons,
only durations and how many), and the same per whole hour (``report_answer_hours``). A median is
found by walking the hours to the one holding the middle rank, then that hour's exact times.

Every change of a referral goes through the ORM (creation, the state machine, marking overdue,
erasure, the consent ends): an ``after_flush`` hook reads each changed referral's values before
and after from the attribute history, in the flush's own transaction. Rows written by other means
(SQL of a bulk load, a restore) are taken in by ``rebuild``, which also runs for a database that
already held referrals when the tables came (its figures are not kept until then: the reports
count as before, correct but slow). ``python -m referrals.report rebuild``.
"""
from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    Uuid,
    and_,
    case,
    delete,
    event,
    extract,
    func,
    literal_column,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.orm import Mapped, Session, attributes, mapped_column

from buendnis_common.db import UtcDateTime, utcnow
from referrals.db import Base
from referrals.referral.models import (
    ACCEPTED,
    CANCELLED,
    CLOSED,
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    ON_HOLD,
    REQUESTED,
    Referral,
)

OPEN_REFERRAL = (REQUESTED, ACCEPTED, IN_PROGRESS, ON_HOLD)
# Statuses a referral reaches only through ``accepted``.
AFTER_ACCEPTANCE = (ACCEPTED, IN_PROGRESS, ON_HOLD, COMPLETED, FAILED)

# The parts of the referral report: referrals counted, and of them those answered, accepted,
# accepted and ended, completed, unanswered and overdue. Each has its count of referrals, its
# persons and their key sum. ``closed`` is kept per person only (stuck participants).
PARTS = ("referrals", "answered", "accepted", "ended", "completed", "overdue")
COUNTERS = (*PARTS, "closed")
PERSON_PARTS = (*PARTS, "stuck")
NAME = "referrals"
MICROS_PER_HOUR = 3_600_000_000
# The referral's columns the figures depend on.
WATCHED = ("alliance", "participant_id", "person_key", "need_category", "status", "created_at",
           "answered_at", "closed_at", "overdue_at")


# -- tables -----------------------------------------------------------------------------------

class AggregateState(Base):
    """Whether the aggregate holds every referral (``built_at``), and since when."""

    __tablename__ = "report_aggregate_state"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    built_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AlliancePerson(Base):
    """One person's referrals in one alliance, by part (never shown, never leaves here)."""

    __tablename__ = "report_alliance_persons"

    alliance: Mapped[str] = mapped_column(String(120), primary_key=True)
    participant_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    record_key: Mapped[int] = mapped_column(BigInteger, nullable=False)
    referrals: Mapped[int] = mapped_column(Integer, nullable=False)
    answered: Mapped[int] = mapped_column(Integer, nullable=False)
    accepted: Mapped[int] = mapped_column(Integer, nullable=False)
    ended: Mapped[int] = mapped_column(Integer, nullable=False)
    completed: Mapped[int] = mapped_column(Integer, nullable=False)
    overdue: Mapped[int] = mapped_column(Integer, nullable=False)
    closed: Mapped[int] = mapped_column(Integer, nullable=False)


class AllianceTotal(Base):
    """One alliance's figures: per part the referrals, the persons and their key sum; the
    stuck persons (two closed referrals or more, none completed) and their key sum."""

    __tablename__ = "report_alliance_totals"

    alliance: Mapped[str] = mapped_column(String(120), primary_key=True)
    referrals: Mapped[int] = mapped_column(Integer, nullable=False)
    referrals_persons: Mapped[int] = mapped_column(Integer, nullable=False)
    referrals_key_sum: Mapped[int] = mapped_column(BigInteger, nullable=False)
    answered: Mapped[int] = mapped_column(Integer, nullable=False)
    answered_persons: Mapped[int] = mapped_column(Integer, nullable=False)
    answered_key_sum: Mapped[int] = mapped_column(BigInteger, nullable=False)
    accepted: Mapped[int] = mapped_column(Integer, nullable=False)
    accepted_persons: Mapped[int] = mapped_column(Integer, nullable=False)
    accepted_key_sum: Mapped[int] = mapped_column(BigInteger, nullable=False)
    ended: Mapped[int] = mapped_column(Integer, nullable=False)
    ended_persons: Mapped[int] = mapped_column(Integer, nullable=False)
    ended_key_sum: Mapped[int] = mapped_column(BigInteger, nullable=False)
    completed: Mapped[int] = mapped_column(Integer, nullable=False)
    completed_persons: Mapped[int] = mapped_column(Integer, nullable=False)
    completed_key_sum: Mapped[int] = mapped_column(BigInteger, nullable=False)
    overdue: Mapped[int] = mapped_column(Integer, nullable=False)
    overdue_persons: Mapped[int] = mapped_column(Integer, nullable=False)
    overdue_key_sum: Mapped[int] = mapped_column(BigInteger, nullable=False)
    stuck_persons: Mapped[int] = mapped_column(Integer, nullable=False)
    stuck_key_sum: Mapped[int] = mapped_column(BigInteger, nullable=False)


class OpenReferralPerson(Base):
    """One person's open referrals of one need category in one alliance."""

    __tablename__ = "report_open_referral_persons"

    alliance: Mapped[str] = mapped_column(String(120), primary_key=True)
    need_category: Mapped[str] = mapped_column(String(40), primary_key=True)
    participant_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    record_key: Mapped[int] = mapped_column(BigInteger, nullable=False)
    open_referrals: Mapped[int] = mapped_column(Integer, nullable=False)


class OpenReferralTotal(Base):
    """Open referrals of one need category in one alliance, their persons and key sum."""

    __tablename__ = "report_open_referral_totals"

    alliance: Mapped[str] = mapped_column(String(120), primary_key=True)
    need_category: Mapped[str] = mapped_column(String(40), primary_key=True)
    open_referrals: Mapped[int] = mapped_column(Integer, nullable=False)
    persons: Mapped[int] = mapped_column(Integer, nullable=False)
    key_sum: Mapped[int] = mapped_column(BigInteger, nullable=False)


class AnswerTime(Base):
    """How many referrals of an alliance were first answered after exactly ``micros`` (within
    whole hour ``hour``: a median reads one hour's times)."""

    __tablename__ = "report_answer_times"

    alliance: Mapped[str] = mapped_column(String(120), primary_key=True)
    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    micros: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    answers: Mapped[int] = mapped_column(Integer, nullable=False)


class AnswerHour(Base):
    """How many referrals of an alliance were first answered within whole hour ``hour``."""

    __tablename__ = "report_answer_hours"

    alliance: Mapped[str] = mapped_column(String(120), primary_key=True)
    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    answers: Mapped[int] = mapped_column(Integer, nullable=False)


# -- what a referral counts for ---------------------------------------------------------------

def flags(state: Mapping[str, Any]) -> dict[str, int]:
    """The parts one referral counts in (1 or 0), as ``sql_flags`` says in SQL."""
    status, answered_at, closed_at = state["status"], state["answered_at"], state["closed_at"]
    answered = answered_at is not None
    accepted = status in AFTER_ACCEPTANCE or (
        status == CANCELLED and answered and closed_at is not None and answered_at < closed_at)
    return {
        "referrals": 1,
        "answered": int(answered),
        "accepted": int(accepted),
        "ended": int(accepted and status in CLOSED),
        "completed": int(status == COMPLETED),
        "overdue": int(state["overdue_at"] is not None and status == REQUESTED),
        "closed": int(status in CLOSED),
    }


def sql_flags(table=Referral) -> dict[str, Any]:
    """The same parts as SQL conditions (the recount and the rebuild use them)."""
    answered = table.answered_at.is_not(None)
    accepted = or_(
        table.status.in_(AFTER_ACCEPTANCE),
        and_(table.status == CANCELLED, answered, table.answered_at < table.closed_at),
    )
    return {
        "answered": answered,
        "accepted": accepted,
        "ended": and_(accepted, table.status.in_(sorted(CLOSED))),
        "completed": table.status == COMPLETED,
        "overdue": and_(table.overdue_at.is_not(None), table.status == REQUESTED),
        "closed": table.status.in_(sorted(CLOSED)),
    }


def person_parts(counts: Mapping[str, int]) -> dict[str, bool]:
    """Which parts of the cell a person with these counters is one of the persons of."""
    parts = {part: counts[part] > 0 for part in PARTS}
    parts["stuck"] = counts["closed"] >= 2 and counts["completed"] == 0
    return parts


def answer_micros(state: Mapping[str, Any]) -> int | None:
    if state["answered_at"] is None:
        return None
    return (state["answered_at"] - state["created_at"]) // timedelta(microseconds=1)


def hours(micros: int) -> float:
    """Hours as the recount works them out (``timedelta.total_seconds() / 3600``)."""
    return (micros / 1_000_000) / 3600


# -- keeping it up to date --------------------------------------------------------------------

def _insert(session: Session):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def is_built(session: Session) -> bool:
    return session.execute(
        select(AggregateState.built_at).where(AggregateState.name == NAME)
    ).scalar() is not None


class Deltas:
    """What one flush changes: per (cell, person), per cell, per answer time."""

    def __init__(self) -> None:
        self.persons: dict[tuple[str, uuid.UUID], dict[str, int]] = defaultdict(
            lambda: dict.fromkeys(COUNTERS, 0))
        self.keys: dict[tuple[str, uuid.UUID], int] = {}
        self.open: dict[tuple[str, str, uuid.UUID], int] = defaultdict(int)
        self.times: dict[tuple[str, int], int] = defaultdict(int)

    def add(self, state: Mapping[str, Any], sign: int) -> None:
        person = (state["alliance"], state["participant_id"])
        self.keys.setdefault(person, state["person_key"] or 0)
        for name, value in flags(state).items():
            self.persons[person][name] += sign * value
        if state["status"] in OPEN_REFERRAL:
            self.open[(state["alliance"], state["need_category"], state["participant_id"])] += sign
        micros = answer_micros(state)
        if micros is not None:
            self.times[(state["alliance"], micros)] += sign

    def apply(self, session: Session) -> None:
        insert = _insert(session)
        totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        members = AlliancePerson.__table__
        for person in sorted(self.persons, key=lambda p: (p[0], str(p[1]))):
            delta = self.persons[person]
            if not any(delta.values()):
                continue
            statement = insert(members).values(
                alliance=person[0], participant_id=person[1], record_key=self.keys[person],
                **delta)
            statement = statement.on_conflict_do_update(
                index_elements=[members.c.alliance, members.c.participant_id],
                set_={name: members.c[name] + statement.excluded[name] for name in COUNTERS},
            ).returning(members.c.record_key, *(members.c[name] for name in COUNTERS))
            row = session.execute(statement).one()
            after = {name: row[i + 1] for i, name in enumerate(COUNTERS)}
            before = {name: after[name] - delta[name] for name in COUNTERS}
            total = totals[person[0]]
            for part in PARTS:
                total[part] += delta[part]
            was, now = person_parts(before), person_parts(after)
            for part in PERSON_PARTS:
                change = int(now[part]) - int(was[part])
                total[f"{part}_persons"] += change
                total[f"{part}_key_sum"] += change * row.record_key
            if after["referrals"] <= 0:
                session.execute(delete(members).where(
                    members.c.alliance == person[0], members.c.participant_id == person[1]))
        self._totals(session, AllianceTotal.__table__, ["alliance"],
                     {(alliance,): figures for alliance, figures in totals.items()})
        self._open(session)
        self._times(session)

    def _open(self, session: Session) -> None:
        insert = _insert(session)
        members = OpenReferralPerson.__table__
        totals: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for key in sorted(self.open, key=lambda k: (k[0], k[1], str(k[2]))):
            delta = self.open[key]
            if not delta:
                continue
            alliance, category, participant = key
            statement = insert(members).values(
                alliance=alliance, need_category=category, participant_id=participant,
                record_key=self.keys[(alliance, participant)], open_referrals=delta)
            statement = statement.on_conflict_do_update(
                index_elements=[members.c.alliance, members.c.need_category,
                                members.c.participant_id],
                set_={"open_referrals": members.c.open_referrals
                      + statement.excluded.open_referrals},
            ).returning(members.c.record_key, members.c.open_referrals)
            record_key, after = session.execute(statement).one()
            change = int(after > 0) - int(after - delta > 0)
            total = totals[(alliance, category)]
            total["open_referrals"] += delta
            total["persons"] += change
            total["key_sum"] += change * record_key
            if after <= 0:
                session.execute(delete(members).where(
                    members.c.alliance == alliance, members.c.need_category == category,
                    members.c.participant_id == participant))
        self._totals(session, OpenReferralTotal.__table__, ["alliance", "need_category"], totals)

    def _times(self, session: Session) -> None:
        by_hour: dict[tuple, int] = defaultdict(int)
        exact: dict[tuple, int] = {}
        for (alliance, micros), delta in self.times.items():
            if delta:
                exact[(alliance, micros // MICROS_PER_HOUR, micros)] = delta
                by_hour[(alliance, micros // MICROS_PER_HOUR)] += delta
        self._counts(session, AnswerTime.__table__, ("alliance", "hour", "micros"), exact)
        self._counts(session, AnswerHour.__table__, ("alliance", "hour"), by_hour)

    @staticmethod
    def _counts(session: Session, table, keys: tuple[str, ...],
                deltas: dict[tuple, int]) -> None:
        insert = _insert(session)
        for key, delta in sorted(deltas.items()):
            if not delta:
                continue
            where = dict(zip(keys, key, strict=True))
            statement = insert(table).values(answers=delta, **where)
            session.execute(statement.on_conflict_do_update(
                index_elements=[table.c[name] for name in keys],
                set_={"answers": table.c.answers + statement.excluded.answers}))
            if delta < 0:
                session.execute(delete(table).where(
                    *(table.c[name] == value for name, value in where.items()),
                    table.c.answers <= 0))

    @staticmethod
    def _totals(session: Session, table, keys: list[str],
                deltas: Mapping[tuple, Mapping[str, int]]) -> None:
        insert = _insert(session)
        figures = [c.name for c in table.columns if c.name not in keys]
        for key in sorted(deltas):
            delta = deltas[key]
            if not any(delta.values()):
                continue
            values = {name: delta.get(name, 0) for name in figures}
            statement = insert(table).values(**dict(zip(keys, key, strict=True)), **values)
            session.execute(statement.on_conflict_do_update(
                index_elements=[table.c[name] for name in keys],
                set_={name: table.c[name] + statement.excluded[name] for name in figures}))


def _before(target: Referral) -> dict[str, Any]:
    """The referral's watched values as the database held them before this flush."""
    values = {}
    for name in WATCHED:
        history = attributes.get_history(target, name)
        if history.deleted:
            values[name] = history.deleted[0]
        elif history.unchanged:
            values[name] = history.unchanged[0]
        else:  # set without its old value known: not the case for watched columns (see below)
            values[name] = getattr(target, name)
    return values


def _now(target: Referral) -> dict[str, Any]:
    return {name: getattr(target, name) for name in WATCHED}


@event.listens_for(Session, "after_flush")
def _fold_referral_changes(session: Session, _flush_context) -> None:
    deltas = Deltas()
    changed = False
    for target in session.new:
        if isinstance(target, Referral):
            deltas.add(_now(target), +1)
            changed = True
    for target in session.dirty:
        if isinstance(target, Referral) and session.is_modified(target):
            before, now = _before(target), _now(target)
            if before != now:
                deltas.add(before, -1)
                deltas.add(now, +1)
                changed = True
    for target in session.deleted:
        if isinstance(target, Referral):
            deltas.add(_before(target), -1)
            changed = True
    if changed and is_built(session):
        deltas.apply(session)


def _keep_old_value(*_args) -> None:
    """(Only there so that SQLAlchemy loads a watched column's old value when it is set.)"""


for _name in WATCHED:
    event.listen(getattr(Referral, _name), "set", _keep_old_value, active_history=True)


# -- rebuilding -------------------------------------------------------------------------------

def rebuild(session: Session) -> dict[str, int]:
    """Recount every aggregate from the referrals table, in the caller's transaction (which
    commits it). On PostgreSQL, changes to referrals wait until it commits (a share lock), so
    none is counted twice or missed; on SQLite the transaction is the only writer."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("LOCK TABLE referrals IN SHARE MODE"))
    for table in (AlliancePerson, AllianceTotal, OpenReferralPerson, OpenReferralTotal,
                  AnswerTime, AnswerHour):
        session.execute(delete(table))
    conditions = sql_flags()
    key = func.coalesce(func.max(Referral.person_key), 0)

    def counted(condition):
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    members = AlliancePerson.__table__
    session.execute(members.insert().from_select(
        ["alliance", "participant_id", "record_key", *COUNTERS],
        select(Referral.alliance, Referral.participant_id, key, func.count(),
               *(counted(conditions[name]) for name in COUNTERS[1:]))
        .group_by(Referral.alliance, Referral.participant_id)))
    m = members.c
    person_in = {part: m[part] > 0 for part in PARTS}
    person_in["stuck"] = and_(m.closed >= 2, m.completed == 0)
    columns, figures = ["alliance"], [m.alliance]
    for part in PERSON_PARTS:
        if part in PARTS:
            columns.append(part)
            figures.append(func.sum(m[part]))
        columns += [f"{part}_persons", f"{part}_key_sum"]
        figures += [func.coalesce(func.sum(case((person_in[part], 1), else_=0)), 0),
                    func.coalesce(func.sum(case((person_in[part], m.record_key), else_=0)), 0)]
    session.execute(AllianceTotal.__table__.insert().from_select(
        columns, select(*figures).group_by(m.alliance)))

    session.execute(OpenReferralPerson.__table__.insert().from_select(
        ["alliance", "need_category", "participant_id", "record_key", "open_referrals"],
        select(Referral.alliance, Referral.need_category, Referral.participant_id, key,
               func.count())
        .where(Referral.status.in_(OPEN_REFERRAL))
        .group_by(Referral.alliance, Referral.need_category, Referral.participant_id)))
    o = OpenReferralPerson.__table__.c
    session.execute(OpenReferralTotal.__table__.insert().from_select(
        ["alliance", "need_category", "open_referrals", "persons", "key_sum"],
        select(o.alliance, o.need_category, func.sum(o.open_referrals), func.count(),
               func.sum(o.record_key)).group_by(o.alliance, o.need_category)))

    times = AnswerTime.__table__
    if dialect == "postgresql":
        # extract() gives an exact numeric (PostgreSQL 14 and later): whole microseconds.
        # (Constants inline: the same expression in the select and the GROUP BY.)
        micros = func.round(extract("epoch", Referral.answered_at - Referral.created_at)
                            * literal_column("1000000"))
        hour = func.floor(micros / literal_column(str(MICROS_PER_HOUR))).cast(BigInteger)
        session.execute(times.insert().from_select(
            ["alliance", "hour", "micros", "answers"],
            select(Referral.alliance, hour, micros.cast(BigInteger), func.count())
            .where(Referral.answered_at.is_not(None))
            .group_by(Referral.alliance, hour, micros.cast(BigInteger))))
        t = times.c
        session.execute(AnswerHour.__table__.insert().from_select(
            ["alliance", "hour", "answers"],
            select(t.alliance, t.hour, func.sum(t.answers)).group_by(t.alliance, t.hour)))
    else:
        deltas = Deltas()
        rows = session.execute(
            select(Referral.alliance, Referral.created_at, Referral.answered_at)
            .where(Referral.answered_at.is_not(None)))
        for alliance, created_at, answered_at in rows:
            deltas.times[(alliance, answer_micros(
                {"created_at": created_at, "answered_at": answered_at}))] += 1
        deltas._times(session)

    state = _insert(session)(AggregateState.__table__).values(name=NAME, built_at=utcnow())
    session.execute(state.on_conflict_do_update(
        index_elements=[AggregateState.name], set_={"built_at": state.excluded.built_at}))
    return {
        "alliances": session.scalar(select(func.count()).select_from(AllianceTotal)) or 0,
        "persons": session.scalar(select(func.count()).select_from(AlliancePerson)) or 0,
        "answer_times": session.scalar(select(func.count()).select_from(AnswerTime)) or 0,
    }


# -- reading ----------------------------------------------------------------------------------

def alliance_totals(session: Session, alliance: str | None) -> list[AllianceTotal]:
    """The alliances' totals (or the one alliance's), of alliances with referrals."""
    query = select(AllianceTotal).where(AllianceTotal.referrals > 0)
    if alliance is not None:
        query = query.where(AllianceTotal.alliance == alliance)
    return list(session.scalars(query))


def open_referral_totals(session: Session, alliance: str | None) -> list[OpenReferralTotal]:
    query = select(OpenReferralTotal).where(OpenReferralTotal.open_referrals > 0)
    if alliance is not None:
        query = query.where(OpenReferralTotal.alliance == alliance)
    return list(session.scalars(query))


def _ranks(answered: int) -> tuple[int, ...]:
    """The 1-based ranks whose mean is the median of ``answered`` values."""
    if answered % 2:
        return ((answered + 1) // 2,)
    return (answered // 2, answered // 2 + 1)


def median_hours(session: Session, answered: Mapping[str, int]) -> dict[str, float]:
    """Per alliance, the median hours to the first answer over its ``answered`` referrals, as
    the recount computes it: two queries whatever the number of alliances."""
    wanted = {alliance: _ranks(n) for alliance, n in answered.items() if n > 0}
    if not wanted:
        return {}
    # 1. The hour (and the rank within it) holding each middle rank.
    located: dict[str, list[tuple[int, int]]] = defaultdict(list)
    seen: dict[str, int] = defaultdict(int)
    query = select(AnswerHour.alliance, AnswerHour.hour, AnswerHour.answers) \
        .where(AnswerHour.alliance.in_(sorted(wanted)), AnswerHour.answers > 0) \
        .order_by(AnswerHour.alliance, AnswerHour.hour)
    for alliance, hour, count in session.execute(query):
        before = seen[alliance]
        seen[alliance] = before + count
        for rank in wanted[alliance]:
            if before < rank <= before + count:
                located[alliance].append((hour, rank - before))
    # 2. The exact times within those hours.
    hours_wanted = {(alliance, hour) for alliance, found in located.items() for hour, _ in found}
    if not hours_wanted:
        return {}
    in_hour: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
    query = select(AnswerTime.alliance, AnswerTime.hour, AnswerTime.micros, AnswerTime.answers) \
        .where(tuple_(AnswerTime.alliance, AnswerTime.hour).in_(sorted(hours_wanted)),
               AnswerTime.answers > 0) \
        .order_by(AnswerTime.alliance, AnswerTime.hour, AnswerTime.micros)
    for alliance, hour, micros, count in session.execute(query):
        in_hour[(alliance, hour)].append((micros, count))
    medians: dict[str, float] = {}
    for alliance, found in located.items():
        values = []
        for hour, rank in found:
            seen_in_hour = 0
            for micros, count in in_hour[(alliance, hour)]:
                seen_in_hour += count
                if rank <= seen_in_hour:
                    values.append(hours(micros))
                    break
        if len(values) == len(wanted[alliance]):
            medians[alliance] = values[0] if len(values) == 1 else (values[0] + values[1]) / 2
    return medians
