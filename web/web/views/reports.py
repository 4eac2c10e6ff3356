"""Reports for the core group, coordinators and the ministry: tables, charts, downloads.

The API decides who reads which alliance (403 for everyone else, shown as the error page) and
which figures are suppressed; these pages show its rows as they are, mark the suppressed cells,
and never fill one in. Nothing here is about a person: the query string holds only dates,
groupings and the alliance.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from flask import Blueprint, Response, render_template, request
from flask_babel import format_date, format_decimal, format_percent
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from .. import api, charts
from ..auth import current_user, has_role
from ..i18n import label

blp = Blueprint("reports", __name__, url_prefix="/berichte")

# The API's groupings (services/referrals/referrals/report/service.py: DIMENSIONS), in words.
DIMENSIONS = {
    "status": _l("Status"),
    "from_org": _l("sendende Organisation"),
    "to_org": _l("empfangende Organisation"),
    "need_category": _l("Bedarf"),
    "month": _l("Monat"),
}
# The same after "nach" ("Vermittlungen nach empfangender Organisation").
BY_WORDS = {
    "status": _l("Status"),
    "from_org": _l("sendender Organisation"),
    "to_org": _l("empfangender Organisation"),
    "need_category": _l("Bedarf"),
    "month": _l("Monat"),
}
DEFAULT_GROUP_BY = ["status"]
COUNTS = frozenset({"count", "overdue_open", "open_needs", "active_offers", "capacity",
                    "open_referrals", "stuck_participants"})
RATES = frozenset({"acceptance_rate", "completion_rate"})
HOURS = frozenset({"median_hours_to_first_answer"})
# URL word → the API's report; the words also name the downloaded files.
KINDS = {"vermittlungen": "referrals", "luecken": "gaps", "stillstand": "stuck"}
FORMATS = ("csv", "xlsx")


def _choice() -> dict[str, Any]:
    """What the user asked for, from the query string (defaults on a first visit)."""
    args = request.args
    ministry = has_role("ministry")
    if not args:
        return {"from": "", "to": "", "group_by": list(DEFAULT_GROUP_BY), "alliance": ""}
    return {
        "from": args.get("from", "").strip(),
        "to": args.get("to", "").strip(),
        "group_by": [name for name in args.getlist("group_by") if name in DIMENSIONS],
        # Core group and coordinators read their own alliance, which the API knows.
        "alliance": args.get("alliance", "").strip() if ministry else "",
    }


def _params(kind: str, choice: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {"alliance": choice["alliance"]}
    if kind == "referrals":
        params.update({"from": choice["from"], "to": choice["to"],
                       "group_by": ",".join(choice["group_by"])})
    return params


def _alliances(organisations: list[dict[str, Any]]) -> list[tuple[str, str]]:
    found = sorted({org["alliance"] for org in organisations if org.get("alliance")})
    return [(alliance, alliance) for alliance in found]


def _month(value: str) -> str:
    try:
        year, month = (int(part) for part in value.split("-")[:2])
        return format_date(date(year, month, 1), "MMMM yyyy")
    except (ValueError, AttributeError):
        return value


def _labeller(names: dict[str, str]) -> Callable[[str, Any], str]:
    def text(column: str, value: Any) -> str:
        if value is None:
            return "–"
        if column == "status":
            return label("referral_status", value)
        if column == "need_category":
            return label("need_category", value)
        if column in ("from_org", "to_org"):
            return names.get(value, value)
        if column == "month":
            return _month(value)
        return str(value)
    return text


def _figure(column: str, value: Any) -> str:
    if column in RATES:
        return format_percent(value)
    if column in HOURS:
        return format_decimal(value, format="#,##0.0")
    return format_decimal(value)


def _table(report: dict[str, Any], text: Callable[[str, Any], str]) -> dict[str, Any]:
    """The report as cells to show: labels in words, figures formatted, suppressed marked."""
    columns = report.get("columns") or []
    figures = [c for c in columns if c in COUNTS | RATES | HOURS]
    labels = [c for c in columns if c not in figures]
    suppressed_text = _("unterdrückt")
    rows = []
    for row in report.get("rows") or []:
        hidden = set(row.get("suppressed") or [])
        cells = [{"text": text(c, row.get(c)), "number": False, "suppressed": False}
                 for c in labels]
        for column in figures:
            value = row.get(column)
            if column in hidden:
                cells.append({"text": suppressed_text, "number": True, "suppressed": True})
            elif value is None:
                cells.append({"text": "–", "number": True, "suppressed": False})
            else:
                cells.append({"text": _figure(column, value), "number": True,
                              "suppressed": False})
        rows.append(cells)
    return {
        "headers": [{"text": label("report_column", c), "number": c in figures}
                    for c in (*labels, *figures)],
        "rows": rows,
        "row_headers": len(labels),
        "suppressed": any(cell["suppressed"] for cells in rows for cell in cells),
    }


def _row_label(report: dict[str, Any], row: dict[str, Any],
               text: Callable[[str, Any], str]) -> str:
    """A bar's label: the row's groupings, and its alliance when the report shows several."""
    several = report.get("alliance") is None
    names = [c for c in report.get("columns") or []
             if c not in COUNTS | RATES | HOURS and (c != "alliance" or several)]
    parts = [text(c, row.get(c)) for c in names]
    return " · ".join(parts) if parts else text("alliance", row.get("alliance"))


def _grouping_words(group_by: list[str]) -> str:
    return ", ".join(str(BY_WORDS[name]) for name in group_by)


def _referral_charts(report: dict[str, Any], text, group_by: list[str]) -> list[charts.Chart]:
    rows = report.get("rows") or []
    if not rows:
        return []
    by = _grouping_words(group_by) or _("Bündnis")
    hidden = [row.get("suppressed") or [] for row in rows]
    made = [
        charts.horizontal_bars(
            _("Anzahl der Vermittlungen nach %(by)s", by=by),
            [charts.Bar(_row_label(report, row, text),
                        (None if "count" in gone else row.get("count"),))
             for row, gone in zip(rows, hidden, strict=True)],
            [str(label("report_column", "count"))],
            formatter=lambda value: format_decimal(value),
            what=_("Anzahl der Vermittlungen nach %(by)s", by=by),
        ),
        charts.horizontal_bars(
            _("Antwortzeit (Median, Stunden) nach %(by)s", by=by),
            [charts.Bar(_row_label(report, row, text),
                        (None if "median_hours_to_first_answer" in gone
                         else row.get("median_hours_to_first_answer"),))
             for row, gone in zip(rows, hidden, strict=True)],
            [str(label("report_column", "median_hours_to_first_answer"))],
            formatter=lambda value: format_decimal(value, format="#,##0.0"),
            what=_("Stunden bis zur ersten Antwort (Median) nach %(by)s", by=by),
        ),
    ]
    return [chart for chart in made if chart is not None]


def _gap_chart(report: dict[str, Any], text) -> list[charts.Chart]:
    rows = report.get("rows") or []
    bars = [
        charts.Bar(_row_label(report, row, text), (
            None if "open_needs" in (row.get("suppressed") or []) else row.get("open_needs"),
            row.get("capacity"),
        ))
        for row in rows
        # A category with nothing open and nothing offered has nothing to compare.
        if row.get("open_needs") or row.get("capacity")
        or "open_needs" in (row.get("suppressed") or [])
    ]
    chart = charts.horizontal_bars(
        _("Offene Bedarfe und Plätze nach Bedarf"), bars,
        [str(label("report_column", "open_needs")), str(label("report_column", "capacity"))],
        formatter=lambda value: format_decimal(value),
        what=_("offene Bedarfe und freie Plätze der Angebote je Bedarf"),
    )
    return [chart] if chart else []


@blp.get("/")
def index():
    choice = _choice()
    ministry = has_role("ministry")
    organisations = api.organizations()
    names = {org["alias"]: org["name"] for org in organisations}
    text = _labeller(names)
    errors: dict[str, str] = {}
    message = None
    reports: dict[str, dict[str, Any]] = {}
    try:
        for kind in ("referrals", "gaps", "stuck"):
            reports[kind] = api.get(f"/api/v1/reports/{kind}", **_params(kind, choice)).body
    except api.ApiError as exc:
        if exc.status not in (400, 422):
            raise  # 403 and the like: the error page with the API's message
        errors = {name.split(".")[0]: text_ for name, text_ in exc.field_errors().items()}
        message = exc.localized_message
        reports = {}
    tables = {kind: _table(report, text) for kind, report in reports.items()}
    figures = {}
    if reports:
        figures = {
            "referrals": _referral_charts(reports["referrals"], text, choice["group_by"]),
            "gaps": _gap_chart(reports["gaps"], text),
        }
    min_cell = next((r.get("min_cell") for r in reports.values() if r.get("min_cell")), 5)
    alliance = choice["alliance"] if ministry else (
        (current_user().get("organization") or {}).get("alliance") or "")
    return render_template(
        "reports/index.html",
        choice=choice,
        ministry=ministry,
        alliances=_alliances(organisations) if ministry else [],
        alliance=alliance,
        dimensions=[(code, str(text_)) for code, text_ in DIMENSIONS.items()],
        grouping=_grouping_words(choice["group_by"]),
        reports=reports,
        tables=tables,
        charts=figures,
        min_cell=min_cell,
        errors=errors,
        message=message,
        download_args=_download_args(choice),
    ), 422 if errors else 200


def _download_args(choice: dict[str, Any]) -> dict[str, Any]:
    """The choice as query arguments for the download links (empty ones left out)."""
    return {key: value for key, value in choice.items() if value not in ("", [], None)}


def _filename(word: str, choice: dict[str, Any], extension: str) -> str:
    """``bericht-vermittlungen-leverkusen-2026-01-bis-2026-11.csv``: the report, the alliance
    and the period (or the day it was taken); nothing about a person."""
    alliance = choice["alliance"] or (
        "alle-buendnisse" if has_role("ministry")
        else (current_user().get("organization") or {}).get("alliance") or "buendnis")
    start, end = choice["from"][:7], choice["to"][:7]
    if word == "vermittlungen" and (start or end):
        period = start if start == end else f"{start or 'anfang'}-bis-{end or 'heute'}"
    else:
        period = f"stand-{date.today().isoformat()}"
    safe = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in f"{alliance}-{period}")
    return f"bericht-{word}-{safe}.{extension}"


@blp.get("/<any(vermittlungen, luecken, stillstand):word>.<any(csv, xlsx):extension>")
def download(word: str, extension: str):
    """The report as the API exports it (CSV or XLSX), suppressed cells included as such."""
    choice = _choice()
    kind = KINDS[word]
    exported = api.call("GET", f"/api/v1/reports/{kind}",
                        params={**_params(kind, choice), "format": extension}, raw=True)
    return Response(
        exported.content,
        content_type=exported.headers.get("Content-Type", "application/octet-stream"),
        headers={"Content-Disposition":
                 f'attachment; filename="{_filename(word, choice, extension)}"'},
    )
