"""``/api/v1/reports``: referrals, gaps and stuck, as JSON, CSV or XLSX."""
from __future__ import annotations

import csv
import io

from flask import Response, current_app, request
from flask.views import MethodView
from openpyxl import Workbook

from buendnis_common.service import current_runtime
from buendnis_common.web import Blueprint, current_principal
from referrals.report import schemas, service

blp = Blueprint("reports", __name__, url_prefix="/api/v1/reports",
                description="Reports without personal data: small cells suppressed, "
                            "counts perturbed (Cell Key Method)")

CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
JSON = "application/json"
_BY_FORMAT = {"json": JSON, "csv": CSV, "xlsx": XLSX}
SUPPRESSED = "suppressed"


def disclosure() -> service.Disclosure:
    return current_app.extensions["reports"].disclosure


def _wanted(query: dict) -> str:
    if query.get("format"):
        return _BY_FORMAT[query["format"]]
    return request.accept_mimetypes.best_match([JSON, CSV, XLSX], default=JSON) or JSON


def _table(report: service.Report) -> list[list]:
    """Header and rows as exported: a hidden figure is the text ``suppressed``."""
    table: list[list] = [list(report.columns)]
    for row in report.rows:
        table.append([
            SUPPRESSED if name in row["suppressed"] else row.get(name)
            for name in report.columns
        ])
    return table


def _filename(report: service.Report, extension: str) -> str:
    return f"bundnis-{report.kind}-{report.alliance or 'all-alliances'}.{extension}"


def _export(report: service.Report, mimetype: str) -> Response | None:
    if mimetype == CSV:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerows(_table(report))
        body, extension = buffer.getvalue().encode("utf-8"), "csv"
        mimetype = "text/csv; charset=utf-8"
    elif mimetype == XLSX:
        workbook = Workbook()
        sheet = workbook.active
        sheet.title = report.kind
        for line in _table(report):
            sheet.append(line)
        buffer = io.BytesIO()
        workbook.save(buffer)
        body, extension = buffer.getvalue(), "xlsx"
    else:
        return None
    return Response(body, mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="{_filename(report, extension)}"'})


def _answer(report: service.Report, query: dict, **extra):
    exported = _export(report, _wanted(query))
    if exported is not None:
        return exported
    return {"alliance": report.alliance, "min_cell": report.min_cell,
            "perturbation": report.perturbation,
            "columns": list(report.columns), "rows": report.rows, **extra}


def _scope(query: dict) -> str | None:
    return service.alliance_in_scope(principal=current_principal(),
                                     requested=query.get("alliance"))


_EXPORTS = {"description": "The same report as CSV or XLSX (Accept header or format=)."}


@blp.route("/referrals")
class ReferralsReport(MethodView):
    @blp.arguments(schemas.ReferralReportQuery, location="query")
    @blp.response(200, schemas.ReferralReport)
    @blp.alt_response(200, content_type=CSV, **_EXPORTS)
    @blp.alt_response(200, content_type=XLSX, **_EXPORTS)
    def get(self, query):
        """Referrals by status, organisations, need category and month: counts, median hours to
        the first answer, acceptance and completion rates, overdue open referrals."""
        alliance = _scope(query)
        report = service.referrals_report(
            session=current_runtime().db.session, alliance=alliance,
            start=query.get("from_"), end=query.get("to"), group_by=query["group_by"],
            disclosure=disclosure(),
        )
        return _answer(report, query, period=report.period, group_by=query["group_by"])


@blp.route("/gaps")
class GapsReport(MethodView):
    @blp.arguments(schemas.ReportQuery, location="query")
    @blp.response(200, schemas.GapReport)
    @blp.alt_response(200, content_type=CSV, **_EXPORTS)
    @blp.alt_response(200, content_type=XLSX, **_EXPORTS)
    def get(self, query):
        """Per need category: open needs, active offers and their capacity, open referrals."""
        alliance = _scope(query)
        report = service.gaps_report(session=current_runtime().db.session, alliance=alliance,
                                     disclosure=disclosure())
        return _answer(report, query)


@blp.route("/stuck")
class StuckReport(MethodView):
    @blp.arguments(schemas.ReportQuery, location="query")
    @blp.response(200, schemas.StuckReport)
    @blp.alt_response(200, content_type=CSV, **_EXPORTS)
    @blp.alt_response(200, content_type=XLSX, **_EXPORTS)
    def get(self, query):
        """Per alliance: participants with several closed referrals and none completed."""
        alliance = _scope(query)
        report = service.stuck_report(session=current_runtime().db.session, alliance=alliance,
                                      disclosure=disclosure())
        return _answer(report, query)
