"""Reports for the core group and the ministry: figures over referrals, gaps, stuck participants.

No person can be singled out. Reports group by organisations, categories, statuses and months,
never by person; a count below ``min_cell`` is suppressed (primary suppression), and whenever a
line of a table (the cells that differ in one grouping only, whose sum another report shows) has
exactly one hidden cell, its smallest visible cell is hidden too (complementary suppression), until
no hidden cell can be recovered by subtraction. A row whose count is hidden shows nothing but its
labels; a median or rate over fewer than ``min_cell`` referrals is hidden.

Periods are widened to whole months, so that two periods a day apart cannot be subtracted. No
report shows a total over alliances, so alliances are not a line. Each table is protected on its
own: a reader who lays two differently grouped reports side by side may still narrow a hidden
cell down (the linked-tables problem); the groupings offered are coarse to keep that small.

Data access never commits; reports only read.
"""
from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Integer, and_, case, cast, func, or_, select
from sqlalchemy.orm import Session

from buendnis_common.auth import Principal
from buendnis_common.errors import Forbidden
from referrals.codes import NEED_CATEGORIES
from referrals.offer.models import Offer
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
from referrals.report.models import NeedCount

DIMENSIONS = ("status", "from_org", "to_org", "need_category", "month")
OPEN_REFERRAL = (REQUESTED, ACCEPTED, IN_PROGRESS, ON_HOLD)
# Statuses a referral reaches only through ``accepted``.
AFTER_ACCEPTANCE = (ACCEPTED, IN_PROGRESS, ON_HOLD, COMPLETED, FAILED)
OPEN_NEED = frozenset({"open", "in_progress"})

REPORT_READERS = ("core_group", "coordinator")
MINISTRY = "ministry"

REFERRAL_MEASURES = ("count", "median_hours_to_first_answer", "acceptance_rate",
                     "completion_rate", "overdue_open")
GAP_MEASURES = ("open_needs", "active_offers", "capacity", "open_referrals")
STUCK_MEASURES = ("stuck_participants",)


@dataclass
class Report:
    """Rows of labels and figures; ``suppressed`` names each row's hidden figures."""

    kind: str
    alliance: str | None
    labels: tuple[str, ...]
    measures: tuple[str, ...]
    min_cell: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    period: dict[str, str] | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.labels, *self.measures)


# -- who reads what ---------------------------------------------------------------------------

def alliance_in_scope(*, principal: Principal, requested: str | None) -> str | None:
    """The alliance the caller may read (``None``: all alliances, the ministry only)."""
    requested = (requested or "").strip() or None
    if principal.has_role(MINISTRY):
        return requested
    if principal.has_role(*REPORT_READERS):
        if not principal.alliance:
            raise Forbidden("Your organisation belongs to no alliance, so it has no reports.")
        if requested is not None and requested != principal.alliance:
            raise Forbidden(
                f"You can read the reports of your own alliance ({principal.alliance}) only."
            )
        return principal.alliance
    raise Forbidden("Reports are for the core group, coordinators and the ministry.")


def whole_months(start: date | None, end: date | None) -> tuple[date | None, date | None]:
    """Widen a period to whole months, ``[first day, first day of the month after)``: two
    periods a day apart would otherwise tell, by subtraction, the referrals of that one day."""
    first = start.replace(day=1) if start else None
    after = None
    if end:
        after = date(end.year + (end.month == 12), end.month % 12 + 1, 1)
    return first, after


# -- suppression ------------------------------------------------------------------------------

Key = tuple[Hashable, ...]


def suppress(values: dict[Key, int], *, line_positions: Iterable[int], min_cell: int,
             hidden: Iterable[Key] = ()) -> set[Key]:
    """The keys to hide: cells ``0 < value < min_cell``, the given ones, and complements.

    A line is the cells whose keys agree everywhere except at one position of
    ``line_positions``; its total is public (a coarser report), so a line with exactly one hidden
    cell gets its smallest visible non-zero cell hidden as well (a zero only if nothing else is
    left), repeated until every line has none or at least two hidden cells."""
    result = set(hidden) | {key for key, value in values.items() if 0 < value < min_cell}
    positions = list(line_positions)
    changed = True
    while changed:
        changed = False
        for position in positions:
            lines: dict[Key, list[Key]] = defaultdict(list)
            for key in values:
                lines[key[:position] + key[position + 1:]].append(key)
            for cells in lines.values():
                if sum(1 for key in cells if key in result) != 1:
                    continue
                visible = [key for key in cells if key not in result]
                if not visible:
                    continue
                complement = min(visible, key=lambda k: (values[k] == 0, values[k], str(k)))
                result.add(complement)
                changed = True
    return result


def _finish(report: Report, keyed: dict[Key, dict[str, Any]], hidden: dict[str, set[Key]],
            rate_bases: dict[str, dict[Key, int]]) -> Report:
    """Rows in key order with hidden figures set to ``None`` and named in ``suppressed``."""
    for key in sorted(keyed, key=lambda k: tuple("" if v is None else str(v) for v in k)):
        row = dict(zip(report.labels, key, strict=True))
        figures = keyed[key]
        suppressed = []
        for measure in report.measures:
            value = figures.get(measure)
            base = rate_bases.get(measure, {}).get(key)
            if key in hidden.get(measure, set()) or (
                base is not None and base < report.min_cell
            ):
                value = None
                suppressed.append(measure)
            row[measure] = value
        row["suppressed"] = suppressed
        report.rows.append(row)
    return report


# -- referrals --------------------------------------------------------------------------------

def _month(session: Session):
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", Referral.created_at), "YYYY-MM")
    return func.strftime("%Y-%m", Referral.created_at)


def _flag(condition) -> Any:
    return func.sum(case((condition, 1), else_=0))


def _period_filter(alliance: str | None, start: date | None, after: date | None) -> list:
    where = []
    if alliance is not None:
        where.append(Referral.alliance == alliance)
    if start is not None:
        where.append(Referral.created_at >= datetime(start.year, start.month, 1, tzinfo=UTC))
    if after is not None:
        where.append(Referral.created_at < datetime(after.year, after.month, 1, tzinfo=UTC))
    return where


def referrals_report(*, session: Session, alliance: str | None, start: date | None = None,
                     end: date | None = None, group_by: Iterable[str] = (),
                     min_cell: int = 5) -> Report:
    """Counts, median hours to the first answer, acceptance rate (accepted of answered),
    completion rate (completed of accepted and ended) and unanswered overdue referrals, per
    alliance and the chosen groupings, over referrals made in the period (whole months)."""
    dims = tuple(dict.fromkeys(group_by))
    start, after = whole_months(start, end)
    month = _month(session)
    columns = {"status": Referral.status, "from_org": Referral.from_org,
               "to_org": Referral.to_org, "need_category": Referral.need_category,
               "month": month}
    group = [Referral.alliance, *(columns[d] for d in dims)]
    answered = Referral.answered_at.is_not(None)
    accepted = or_(
        Referral.status.in_(AFTER_ACCEPTANCE),
        and_(Referral.status == CANCELLED, answered,
             Referral.answered_at < Referral.closed_at),
    )
    ended_after_acceptance = and_(accepted, Referral.status.in_(sorted(CLOSED)))
    where = _period_filter(alliance, start, after)
    measures = [
        func.count().label("count"),
        _flag(answered).label("answered"),
        _flag(accepted).label("accepted"),
        _flag(ended_after_acceptance).label("ended"),
        _flag(Referral.status == COMPLETED).label("completed"),
        _flag(and_(Referral.overdue_at.is_not(None), Referral.status == REQUESTED))
        .label("overdue_open"),
    ]
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        hours = func.extract("epoch", Referral.answered_at - Referral.created_at) / 3600.0
        measures.append(func.percentile_cont(0.5).within_group(hours).label("median"))
    rows = session.execute(select(*group, *measures).where(*where).group_by(*group)).all()
    medians: dict[Key, float | None] = {}
    if postgres:
        medians = {tuple(row[:len(group)]): row.median for row in rows}
    else:
        durations: dict[Key, list[float]] = defaultdict(list)
        query = select(*group, Referral.created_at, Referral.answered_at).where(*where, answered)
        for row in session.execute(query):
            key = tuple(row[:len(group)])
            durations[key].append((row.answered_at - row.created_at).total_seconds() / 3600)
        medians = {key: statistics.median(values) for key, values in durations.items()}

    keyed: dict[Key, dict[str, Any]] = {}
    bases: dict[str, dict[Key, int]] = defaultdict(dict)
    for row in rows:
        key = tuple(row[:len(group)])
        median = medians.get(key)
        keyed[key] = {
            "count": row.count,
            "median_hours_to_first_answer": None if median is None else round(median, 1),
            "acceptance_rate": _rate(row.accepted, row.answered),
            "completion_rate": _rate(row.completed, row.ended),
            "overdue_open": int(row.overdue_open),
        }
        bases["median_hours_to_first_answer"][key] = int(row.answered)
        bases["acceptance_rate"][key] = int(row.answered)
        bases["completion_rate"][key] = int(row.ended)
    # Position 0 is the alliance: no report shows a total over alliances, so no line runs
    # across them.
    positions = range(1, len(group))
    counts = {key: figures["count"] for key, figures in keyed.items()}
    hidden_rows = suppress(counts, line_positions=positions, min_cell=min_cell)
    overdue = {key: figures["overdue_open"] for key, figures in keyed.items()}
    hidden_overdue = suppress(overdue, line_positions=positions, min_cell=min_cell,
                              hidden=hidden_rows)
    hidden = {measure: hidden_rows for measure in REFERRAL_MEASURES}
    hidden["overdue_open"] = hidden_overdue
    report = Report(
        kind="referrals", alliance=alliance, labels=("alliance", *dims),
        measures=REFERRAL_MEASURES, min_cell=min_cell,
        period={"from": start.isoformat() if start else None,
                "to": _last_day(after).isoformat() if after else None},
    )
    return _finish(report, keyed, hidden, bases)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _last_day(after: date) -> date:
    return date.fromordinal(after.toordinal() - 1)


# -- gaps -------------------------------------------------------------------------------------

def gaps_report(*, session: Session, alliance: str | None, min_cell: int = 5) -> Report:
    """Per alliance and need category: open needs (from intake's events), active offers, their
    stated capacity, and open referrals. Offers are organisations' figures and never hidden."""
    def scoped(column, query):
        return query.where(column == alliance) if alliance is not None else query

    keyed: dict[Key, dict[str, Any]] = defaultdict(
        lambda: {"open_needs": 0, "active_offers": 0, "capacity": 0, "open_referrals": 0}
    )
    alliances: set[str] = set()
    for row in session.execute(scoped(NeedCount.alliance, select(NeedCount))).scalars():
        keyed[(row.alliance, row.category)]["open_needs"] = max(row.open_needs, 0)
        alliances.add(row.alliance)
    offers = scoped(Offer.alliance, select(
        Offer.alliance, Offer.category, func.count(),
        func.coalesce(func.sum(cast(Offer.capacity, Integer)), 0),
    ).where(Offer.active.is_(True)).group_by(Offer.alliance, Offer.category))
    for row_alliance, category, count, capacity in session.execute(offers):
        keyed[(row_alliance, category)].update(active_offers=count, capacity=int(capacity))
        alliances.add(row_alliance)
    open_referrals = scoped(Referral.alliance, select(
        Referral.alliance, Referral.need_category, func.count(),
    ).where(Referral.status.in_(OPEN_REFERRAL))
     .group_by(Referral.alliance, Referral.need_category))
    for row_alliance, category, count in session.execute(open_referrals):
        keyed[(row_alliance, category)]["open_referrals"] = count
        alliances.add(row_alliance)
    # Every category of every alliance shown: a missing row would be a zero in disguise.
    for each in alliances:
        for category in NEED_CATEGORIES:
            keyed[(each, category)]  # noqa: B018 - creates the zero row
    hidden = {
        measure: suppress({key: figures[measure] for key, figures in keyed.items()},
                          line_positions=[1], min_cell=min_cell)
        for measure in ("open_needs", "open_referrals")
    }
    report = Report(kind="gaps", alliance=alliance, labels=("alliance", "need_category"),
                    measures=GAP_MEASURES, min_cell=min_cell)
    return _finish(report, dict(keyed), hidden, {})


# -- stuck ------------------------------------------------------------------------------------

def stuck_report(*, session: Session, alliance: str | None, min_cell: int = 5) -> Report:
    """Per alliance: how many participants have at least two closed referrals and not one
    completed ("Maßnahmen-Karrieren"). A count only; the people stay unnamed."""
    closed = func.sum(case((Referral.status.in_(sorted(CLOSED)), 1), else_=0))
    completed = func.sum(case((Referral.status == COMPLETED, 1), else_=0))
    per_person = select(Referral.alliance.label("alliance")).group_by(
        Referral.alliance, Referral.participant_id
    ).having(and_(closed >= 2, completed == 0))
    if alliance is not None:
        per_person = per_person.where(Referral.alliance == alliance)
    per_person = per_person.subquery()
    counted = select(per_person.c.alliance, func.count()).group_by(per_person.c.alliance)
    keyed: dict[Key, dict[str, Any]] = {
        (row_alliance,): {"stuck_participants": count}
        for row_alliance, count in session.execute(counted)
    }
    every = select(Referral.alliance).distinct()
    if alliance is not None:
        every = every.where(Referral.alliance == alliance)
    for (row_alliance,) in session.execute(every):
        keyed.setdefault((row_alliance,), {"stuck_participants": 0})
    if alliance is not None:
        keyed.setdefault((alliance,), {"stuck_participants": 0})
    hidden = suppress({key: f["stuck_participants"] for key, f in keyed.items()},
                      line_positions=[], min_cell=min_cell)
    report = Report(kind="stuck", alliance=alliance, labels=("alliance",),
                    measures=STUCK_MEASURES, min_cell=min_cell)
    return _finish(report, keyed, {"stuck_participants": hidden}, {})


# -- reporting store --------------------------------------------------------------------------

def count_need_change(*, session: Session, alliance: str, category: str, status: str | None,
                      previous_status: str | None) -> int:
    """Fold one ``need.changed`` event into the open-need counts; returns the change applied.

    A change is +1 or −1 whatever the order events arrive in, so redelivered events (skipped
    by the consumer) and late ones keep the counts right."""
    delta = int(status in OPEN_NEED) - int(previous_status in OPEN_NEED)
    if delta == 0:
        return 0
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(NeedCount).values(alliance=alliance, category=category, open_needs=delta)
    statement = statement.on_conflict_do_update(
        index_elements=[NeedCount.alliance, NeedCount.category],
        set_={"open_needs": NeedCount.open_needs + delta},
    )
    session.execute(statement)
    return delta


@dataclass(frozen=True)
class ReportSettings:
    # Figures about fewer people than this are suppressed (REPORT_MIN_CELL).
    min_cell: int = 5

    @classmethod
    def from_env(cls) -> ReportSettings:
        from buendnis_common.settings import SettingsError, env_int

        value = env_int("REPORT_MIN_CELL", 5)
        if value < 2:
            raise SettingsError(f"REPORT_MIN_CELL must be at least 2, got {value}")
        return cls(min_cell=value)
