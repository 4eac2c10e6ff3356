"""Reports for the core group and the ministry: figures over referrals, gaps, stuck participants.

No person can be singled out, however many reports a reader lays side by side:

- **Every figure rests on at least ``min_cell`` different persons, or is not shown.** Reports
  count referrals (and needs), but six referrals of one person are one person: a count is shown
  only when its referrals are of ``min_cell`` persons or more, a median or rate only when its
  base is. A row whose count is hidden shows nothing but its labels.
- **Every count shown carries the noise of the Cell Key Method** (``referrals.report.ckm``):
  each person has a random record key, a cell's key is the sum of its persons' keys (and a mix
  of its value), and the noise is looked up in a fixed table by that key — at most
  ``max_deviation`` either way, variance ``variance``, never negative, zero stays zero, and no
  count shown below ``min_cell``. The same cell gets the same noise in every report, grouping,
  period and format, so asking again averages nothing away; cells of other persons get other
  noise, so the difference of two reports (January–March minus January–February, the alliance's
  total minus the visible cells of a grouped report) is off by the noise of both: about one such
  difference in five lands on the truth, and the reader cannot tell which. (Averaging many
  different differences narrows a hidden cell down; longer periods, ``period_months``, leave
  fewer of them.) Rates are worked out from perturbed counts; medians are not perturbed.
- Periods are widened to whole months (or quarters, or years: ``period_months``); no report
  shows a total over alliances.

Complementary suppression (hiding a second cell so that a hidden one cannot be recovered from a
table's totals) is gone: it protected one table only, did nothing across reports, and hid many
figures; with every total and every cell perturbed on its own key, a total minus the visible
cells is off by the noise of all of them.

Data access never commits; reports only read.
"""
from __future__ import annotations

import statistics
import uuid
from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Integer, and_, case, cast, func, select
from sqlalchemy.orm import Session

from buendnis_common.auth import Principal
from buendnis_common.errors import Forbidden
from referrals.codes import NEED_CATEGORIES
from referrals.offer.models import Offer
from referrals.referral.models import CLOSED, COMPLETED, Referral
from referrals.report import aggregate, ckm
from referrals.report.aggregate import AFTER_ACCEPTANCE, OPEN_REFERRAL  # noqa: F401
from referrals.report.models import NeedCount, ensure_person_key

DIMENSIONS = ("status", "from_org", "to_org", "need_category", "month")
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
    perturbation: dict[str, Any] | None = None

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
            raise Forbidden("report.no_alliance")
        if requested is not None and requested != principal.alliance:
            raise Forbidden("report.own_alliance_only", alliance=principal.alliance)
        return principal.alliance
    raise Forbidden("report.readers_only")


def whole_months(start: date | None, end: date | None,
                 months: int = 1) -> tuple[date | None, date | None]:
    """Widen a period to whole blocks of ``months`` (1: months, 3: quarters, 12: calendar years;
    a divisor of 12), ``[first day, first day after)``: two periods a day apart would otherwise
    tell, by subtraction, the referrals of that one day. Longer blocks leave a reader fewer
    overlapping periods to subtract (see ``REPORT_PERIOD_MONTHS``)."""
    def block_start(day: date) -> date:
        return date(day.year, (day.month - 1) // months * months + 1, 1)

    first = block_start(start) if start else None
    after = None
    if end:
        last_block = block_start(end)
        index = last_block.year * 12 + last_block.month - 1 + months
        after = date(index // 12, index % 12 + 1, 1)
    return first, after


# -- disclosure control -----------------------------------------------------------------------

Key = tuple[Hashable, ...]


@dataclass(frozen=True)
class Disclosure:
    """The threshold and the perturbation of every figure of a report."""

    min_cell: int = 5
    max_deviation: int = 3
    variance: float = 2.0
    period_months: int = 1

    @property
    def shown(self) -> ckm.PerturbationTable:
        """Counts shown: never below ``min_cell`` (nor negative)."""
        return ckm.table(self.max_deviation, self.variance, self.min_cell)

    @property
    def parts(self) -> ckm.PerturbationTable:
        """The parts of a rate, never shown themselves: never negative."""
        return ckm.table(self.max_deviation, self.variance, 0)

    def count(self, value: int, persons: int, key_sum: int | None) -> int | None:
        """A count as shown: 0 stays 0, fewer than ``min_cell`` persons is hidden (``None``),
        anything else perturbed on its cell key."""
        if value <= 0:
            return 0
        if persons < self.min_cell:
            return None
        return self.shown.perturb(value, ckm.cell_key(key_sum, value))

    def rate(self, part: tuple[int, int | None], whole: tuple[int, int | None],
             persons: int) -> float | None:
        """``part / whole`` of perturbed counts (each ``(value, key_sum)``), or ``None`` when the
        whole is about fewer than ``min_cell`` persons."""
        if persons < self.min_cell or whole[0] <= 0:
            return None
        numerator = self.parts.perturb(part[0], ckm.cell_key(part[1], part[0]))
        denominator = self.parts.perturb(whole[0], ckm.cell_key(whole[1], whole[0]))
        if denominator <= 0:
            return None
        return round(min(numerator / denominator, 1.0), 3)

    def describe(self) -> dict[str, Any]:
        return {"method": "cell key", "max_deviation": self.max_deviation,
                "variance": self.variance}


def _finish(report: Report, keyed: dict[Key, dict[str, Any]], *,
            whole_row: str | None = None) -> Report:
    """Rows in key order; a figure that is ``None`` is hidden and named in ``suppressed``, and
    when ``whole_row``'s figure is hidden, so are all the row's figures."""
    for key in sorted(keyed, key=lambda k: tuple("" if v is None else str(v) for v in k)):
        row = dict(zip(report.labels, key, strict=True))
        figures = keyed[key]
        hide_all = whole_row is not None and figures.get(whole_row) is None
        suppressed = []
        for measure in report.measures:
            value = None if hide_all else figures.get(measure)
            if value is None:
                suppressed.append(measure)
            row[measure] = value
        row["suppressed"] = suppressed
        report.rows.append(row)
    return report


def _per_person(group: list, where: list, flags: dict[str, Any]):
    """The rows of ``where`` grouped by ``group`` and person: each person's number of
    referrals (``n``) and of those meeting each of ``flags``."""
    return select(
        *group, Referral.participant_id.label("participant_id"),
        func.coalesce(func.max(Referral.person_key), 0).label("record_key"),
        func.count().label("n"),
        *(func.sum(case((condition, 1), else_=0)).label(name)
          for name, condition in flags.items()),
    ).where(*where).group_by(*group, Referral.participant_id).subquery()


def _per_cell(per_person, labels: list[str], parts: Iterable[str]):
    """Per cell: its persons, referrals and key sum, and the same for each part (the persons
    with at least one referral of that part)."""
    key = per_person.c.record_key
    columns = [per_person.c[name] for name in labels]
    figures = [func.count().label("persons"), func.sum(per_person.c.n).label("n"),
               func.sum(key).label("key_sum")]
    for part in parts:
        counted = per_person.c[part] > 0
        figures += [
            func.sum(per_person.c[part]).label(part),
            func.sum(case((counted, 1), else_=0)).label(f"{part}_persons"),
            func.sum(case((counted, key), else_=0)).label(f"{part}_key_sum"),
        ]
    return select(*columns, *figures).group_by(*columns)


def _part(row, name: str) -> tuple[int, int | None]:
    return int(getattr(row, name) or 0), getattr(row, f"{name}_key_sum")


# -- referrals --------------------------------------------------------------------------------

def _month(session: Session):
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", Referral.created_at), "YYYY-MM")
    return func.strftime("%Y-%m", Referral.created_at)


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
                     min_cell: int = 5, disclosure: Disclosure | None = None,
                     recount: bool = False) -> Report:
    """Counts, median hours to the first answer, acceptance rate (accepted of answered),
    completion rate (completed of accepted and ended) and unanswered overdue referrals, per
    alliance and the chosen groupings, over referrals made in the period (whole months).

    Without a period or a grouping (the alliances' overview, the ministry's state-wide report)
    the figures come from the pre-aggregated totals (``referrals.report.aggregate``) once they
    are built; otherwise, or with ``recount``, from the referrals themselves. Both give the
    same figures."""
    disclosure = disclosure or Disclosure(min_cell=min_cell)
    dims = tuple(dict.fromkeys(group_by))
    start, after = whole_months(start, end, disclosure.period_months)
    if not dims and start is None and after is None and not recount \
            and aggregate.is_built(session):
        return _referrals_from_aggregate(session, alliance, disclosure)
    month = _month(session)
    columns = {"status": Referral.status, "from_org": Referral.from_org,
               "to_org": Referral.to_org, "need_category": Referral.need_category,
               "month": month}
    labels = ["alliance", *dims]
    group = [Referral.alliance.label("alliance"), *(columns[d].label(d) for d in dims)]
    flags = {name: condition for name, condition in aggregate.sql_flags().items()
             if name in aggregate.PARTS}
    answered = flags["answered"]
    where = _period_filter(alliance, start, after)
    per_person = _per_person(group, where, flags)
    cells = session.execute(_per_cell(per_person, labels, flags)).all()

    # Medians over the answered referrals of the cells whose answered persons are enough.
    enough = {tuple(row[:len(labels)]) for row in cells
              if row.answered_persons >= disclosure.min_cell}
    medians: dict[Key, float] = {}
    if enough:
        if session.get_bind().dialect.name == "postgresql":
            hours = func.extract("epoch", Referral.answered_at - Referral.created_at) / 3600.0
            query = select(*group, func.percentile_cont(0.5).within_group(hours)) \
                .where(*where, answered).group_by(*group)
            medians = {tuple(row[:-1]): row[-1] for row in session.execute(query)}
        else:
            durations: dict[Key, list[float]] = defaultdict(list)
            query = select(*group, Referral.created_at, Referral.answered_at) \
                .where(*where, answered)
            for row in session.execute(query):
                durations[tuple(row[:len(group)])].append(
                    (row.answered_at - row.created_at).total_seconds() / 3600)
            medians = {key: statistics.median(values) for key, values in durations.items()}

    keyed = {tuple(row[:len(labels)]): _referral_figures(
        row, medians.get(tuple(row[:len(labels)])), disclosure) for row in cells}
    return _referrals(keyed, alliance, labels, disclosure, start, after)


def _referral_figures(row, median: float | None, disclosure: Disclosure) -> dict[str, Any]:
    """A cell's figures from its counts (``n``, ``persons``, ``key_sum`` and per part the
    count, ``…_persons``, ``…_key_sum``); ``median`` only when enough persons answered."""
    if row.answered_persons < disclosure.min_cell:
        median = None
    overdue, overdue_keys = _part(row, "overdue")
    return {
        "count": disclosure.count(int(row.n), row.persons, row.key_sum),
        "median_hours_to_first_answer": None if median is None else round(median, 1),
        "acceptance_rate": disclosure.rate(_part(row, "accepted"), _part(row, "answered"),
                                           row.answered_persons),
        "completion_rate": disclosure.rate(_part(row, "completed"), _part(row, "ended"),
                                           row.ended_persons),
        "overdue_open": disclosure.count(overdue, row.overdue_persons, overdue_keys),
    }


def _referrals(keyed: dict[Key, dict[str, Any]], alliance: str | None, labels: list[str],
               disclosure: Disclosure, start: date | None, after: date | None) -> Report:
    report = Report(
        kind="referrals", alliance=alliance, labels=tuple(labels),
        measures=REFERRAL_MEASURES, min_cell=disclosure.min_cell,
        perturbation=disclosure.describe(),
        period={"from": start.isoformat() if start else None,
                "to": _last_day(after).isoformat() if after else None},
    )
    return _finish(report, keyed, whole_row="count")


@dataclass
class _Cell:
    """An alliance's totals in the recount's names."""

    n: int
    persons: int
    key_sum: int
    answered: int = 0
    answered_persons: int = 0
    answered_key_sum: int = 0
    accepted: int = 0
    accepted_key_sum: int = 0
    ended: int = 0
    ended_persons: int = 0
    ended_key_sum: int = 0
    completed: int = 0
    completed_key_sum: int = 0
    overdue: int = 0
    overdue_persons: int = 0
    overdue_key_sum: int = 0


def _referrals_from_aggregate(session: Session, alliance: str | None,
                              disclosure: Disclosure) -> Report:
    totals = aggregate.alliance_totals(session, alliance)
    medians = aggregate.median_hours(session, {
        row.alliance: row.answered for row in totals
        if row.answered_persons >= disclosure.min_cell})
    keyed = {}
    for row in totals:
        cell = _Cell(
            n=row.referrals, persons=row.referrals_persons, key_sum=row.referrals_key_sum,
            **{f"{part}{suffix}": getattr(row, f"{part}{suffix}")
               for part in ("answered", "accepted", "ended", "completed", "overdue")
               for suffix in ("", "_key_sum")},
            answered_persons=row.answered_persons, ended_persons=row.ended_persons,
            overdue_persons=row.overdue_persons)
        keyed[(row.alliance,)] = _referral_figures(cell, medians.get(row.alliance), disclosure)
    return _referrals(keyed, alliance, ["alliance"], disclosure, None, None)


def _last_day(after: date) -> date:
    return date.fromordinal(after.toordinal() - 1)


# -- gaps -------------------------------------------------------------------------------------

def gaps_report(*, session: Session, alliance: str | None, min_cell: int = 5,
                disclosure: Disclosure | None = None, recount: bool = False) -> Report:
    """Per alliance and need category: open needs (from intake's events), active offers, their
    stated capacity, and open referrals. Offers are organisations' figures and never hidden.

    Open needs are kept as counts with the sum of their persons' keys (one key per open need),
    not per person: their threshold counts needs, so a person with several open needs of one
    category counts several times there."""
    disclosure = disclosure or Disclosure(min_cell=min_cell)

    def scoped(column, query):
        return query.where(column == alliance) if alliance is not None else query

    keyed: dict[Key, dict[str, Any]] = defaultdict(
        lambda: {"open_needs": 0, "active_offers": 0, "capacity": 0, "open_referrals": 0}
    )
    alliances: set[str] = set()
    for row in session.execute(scoped(NeedCount.alliance, select(NeedCount))).scalars():
        needs = max(row.open_needs, 0)
        keyed[(row.alliance, row.category)]["open_needs"] = disclosure.count(
            needs, needs, row.key_sum)
        alliances.add(row.alliance)
    offers = scoped(Offer.alliance, select(
        Offer.alliance, Offer.category, func.count(),
        func.coalesce(func.sum(cast(Offer.capacity, Integer)), 0),
    ).where(Offer.active.is_(True)).group_by(Offer.alliance, Offer.category))
    for row_alliance, category, count, capacity in session.execute(offers):
        keyed[(row_alliance, category)].update(active_offers=count, capacity=int(capacity))
        alliances.add(row_alliance)
    if not recount and aggregate.is_built(session):
        open_referrals = [(row.alliance, row.need_category, row.open_referrals, row.persons,
                           row.key_sum)
                          for row in aggregate.open_referral_totals(session, alliance)]
    else:
        where = [Referral.status.in_(OPEN_REFERRAL)]
        if alliance is not None:
            where.append(Referral.alliance == alliance)
        per_person = _per_person([Referral.alliance.label("alliance"),
                                  Referral.need_category.label("need_category")], where, {})
        open_referrals = [
            (row.alliance, row.need_category, row.n, row.persons, row.key_sum)
            for row in session.execute(_per_cell(per_person, ["alliance", "need_category"], ()))]
    for row_alliance, category, count, persons, key_sum in open_referrals:
        keyed[(row_alliance, category)]["open_referrals"] = disclosure.count(
            int(count), persons, key_sum)
        alliances.add(row_alliance)
    # Every category of every alliance shown: a missing row would be a zero in disguise.
    for each in alliances:
        for category in NEED_CATEGORIES:
            keyed[(each, category)]  # noqa: B018 - creates the zero row
    report = Report(kind="gaps", alliance=alliance, labels=("alliance", "need_category"),
                    measures=GAP_MEASURES, min_cell=disclosure.min_cell,
                    perturbation=disclosure.describe())
    return _finish(report, dict(keyed))


# -- stuck ------------------------------------------------------------------------------------

def stuck_report(*, session: Session, alliance: str | None, min_cell: int = 5,
                 disclosure: Disclosure | None = None, recount: bool = False) -> Report:
    """Per alliance: how many participants have at least two closed referrals and not one
    completed ("Maßnahmen-Karrieren"). A count only; the people stay unnamed."""
    disclosure = disclosure or Disclosure(min_cell=min_cell)
    report = Report(kind="stuck", alliance=alliance, labels=("alliance",),
                    measures=STUCK_MEASURES, min_cell=disclosure.min_cell,
                    perturbation=disclosure.describe())
    if not recount and aggregate.is_built(session):
        keyed = {(row.alliance,): {"stuck_participants": disclosure.count(
            row.stuck_persons, row.stuck_persons, row.stuck_key_sum)}
            for row in aggregate.alliance_totals(session, alliance)}
        if alliance is not None:
            keyed.setdefault((alliance,), {"stuck_participants": 0})
        return _finish(report, keyed)
    closed = func.sum(case((Referral.status.in_(sorted(CLOSED)), 1), else_=0))
    completed = func.sum(case((Referral.status == COMPLETED, 1), else_=0))
    per_person = select(Referral.alliance.label("alliance"),
                        func.coalesce(func.max(Referral.person_key), 0).label("record_key"),
                        ).group_by(
        Referral.alliance, Referral.participant_id
    ).having(and_(closed >= 2, completed == 0))
    if alliance is not None:
        per_person = per_person.where(Referral.alliance == alliance)
    per_person = per_person.subquery()
    counted = select(per_person.c.alliance, func.count(), func.sum(per_person.c.record_key)) \
        .group_by(per_person.c.alliance)
    keyed: dict[Key, dict[str, Any]] = {
        (row_alliance,): {"stuck_participants": disclosure.count(count, count, key_sum)}
        for row_alliance, count, key_sum in session.execute(counted)
    }
    every = select(Referral.alliance).distinct()
    if alliance is not None:
        every = every.where(Referral.alliance == alliance)
    for (row_alliance,) in session.execute(every):
        keyed.setdefault((row_alliance,), {"stuck_participants": 0})
    if alliance is not None:
        keyed.setdefault((alliance,), {"stuck_participants": 0})
    return _finish(report, keyed)


# -- reporting store --------------------------------------------------------------------------

def count_need_change(*, session: Session, alliance: str, category: str, status: str | None,
                      previous_status: str | None,
                      participant_id: uuid.UUID | None = None) -> int:
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
    # The person's record key goes into the count's key sum with the need (out with it).
    record_key = 0
    if participant_id is not None:
        record_key = ensure_person_key(session.connection(), participant_id)
    statement = insert(NeedCount).values(alliance=alliance, category=category, open_needs=delta,
                                         key_sum=delta * record_key)
    statement = statement.on_conflict_do_update(
        index_elements=[NeedCount.alliance, NeedCount.category],
        set_={"open_needs": NeedCount.open_needs + delta,
              "key_sum": NeedCount.key_sum + delta * record_key},
    )
    session.execute(statement)
    return delta


@dataclass(frozen=True)
class ReportSettings:
    # Figures about fewer people than this are not shown (REPORT_MIN_CELL).
    min_cell: int = 5
    # The Cell Key Method's maximum deviation D and variance V (REPORT_NOISE_MAX_DEVIATION,
    # REPORT_NOISE_VARIANCE). Changing them changes every figure: set them once.
    max_deviation: int = 3
    variance: float = 2.0
    # Report periods are widened to whole blocks of this many months (REPORT_PERIOD_MONTHS).
    period_months: int = 1

    @property
    def disclosure(self) -> Disclosure:
        return Disclosure(min_cell=self.min_cell, max_deviation=self.max_deviation,
                          variance=self.variance, period_months=self.period_months)

    @classmethod
    def from_env(cls) -> ReportSettings:
        from buendnis_common.settings import SettingsError, env_float, env_int

        value = env_int("REPORT_MIN_CELL", 5)
        if value < 2:
            raise SettingsError(f"REPORT_MIN_CELL must be at least 2, got {value}")
        deviation = env_int("REPORT_NOISE_MAX_DEVIATION", 3)
        if deviation < 1:
            raise SettingsError(
                f"REPORT_NOISE_MAX_DEVIATION must be at least 1, got {deviation}")
        variance = env_float("REPORT_NOISE_VARIANCE", 2.0)
        if not 0 < variance < deviation ** 2:
            raise SettingsError(
                f"REPORT_NOISE_VARIANCE must be above 0 and below "
                f"REPORT_NOISE_MAX_DEVIATION² ({deviation ** 2}), got {variance}")
        period = env_int("REPORT_PERIOD_MONTHS", 1)
        if period not in (1, 2, 3, 4, 6, 12):
            raise SettingsError(
                f"REPORT_PERIOD_MONTHS must divide a year (1, 2, 3, 4, 6 or 12), got {period}")
        return cls(min_cell=value, max_deviation=deviation, variance=variance,
                   period_months=period)
