"""Reports in and out.

Every row carries its labels (``alliance`` and the groupings), its figures, and ``suppressed``:
the names of the figures hidden in that row so that no person can be singled out. A hidden figure
is ``null`` and named in ``suppressed``; a figure that is ``null`` is always named there. In CSV
and XLSX exports a hidden figure is the text ``suppressed``. Counts carry the Cell Key Method's
noise (``perturbation`` says how much); rates are worked out from perturbed counts.
"""
from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from buendnis_common.validation import FieldError, Schema
from referrals.report.service import DIMENSIONS

FORMATS = ("json", "csv", "xlsx")


class _Query(Schema):
    alliance = ma.fields.String(
        validate=validate.Length(max=120),
        metadata={"description": "The alliance; left out: your own (core group, coordinator) "
                                 "or all, one row each (ministry)."},
    )
    format = ma.fields.String(
        validate=validate.OneOf(FORMATS),
        metadata={"description": "json, csv or xlsx; otherwise the Accept header decides."},
    )


class GroupBy(ma.fields.Field):
    """``status,to_org`` → ``["status", "to_org"]``, each one of DIMENSIONS."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ma.ValidationError(FieldError("report.comma_separated_list"))
        names = [part.strip() for part in value.split(",") if part.strip()]
        unknown = [name for name in names if name not in DIMENSIONS]
        if unknown:
            raise ma.ValidationError(FieldError("report.unknown_grouping", unknown=unknown,
                                                allowed=list(DIMENSIONS)))
        return list(dict.fromkeys(names))


class ReferralReportQuery(_Query):
    from_ = ma.fields.Date(data_key="from", metadata={
        "description": "First day; widened to the first day of its month (or quarter or "
                       "year, as the deployment sets)."})
    to = ma.fields.Date(metadata={
        "description": "Last day; widened to the end of its month (or quarter or year)."})
    group_by = GroupBy(load_default=list, metadata={
        "description": f"Comma-separated, any of {', '.join(DIMENSIONS)}."})

    @ma.validates_schema
    def _period(self, data, **_kwargs):
        if data.get("from_") and data.get("to") and data["from_"] > data["to"]:
            raise ma.ValidationError(FieldError("report.from_after_to"), field_name="from")


class ReportQuery(_Query):
    """The query of the gaps and stuck reports: alliance and format only."""


class _Row(Schema):
    alliance = ma.fields.String()
    suppressed = ma.fields.List(ma.fields.String(), metadata={
        "description": "The figures of this row hidden (null) because they would rest on fewer "
                       "different people than the threshold."})


class ReferralRow(_Row):
    status = ma.fields.String()
    from_org = ma.fields.String()
    to_org = ma.fields.String()
    need_category = ma.fields.String()
    month = ma.fields.String(metadata={"description": "YYYY-MM (UTC)"})
    count = ma.fields.Integer(allow_none=True, metadata={
        "description": "Referrals, perturbed; shown when they are of enough different people."})
    median_hours_to_first_answer = ma.fields.Float(allow_none=True)
    acceptance_rate = ma.fields.Float(allow_none=True, metadata={
        "description": "Accepted of the answered (accepted, rejected, cancelled by receiver)."})
    completion_rate = ma.fields.Float(allow_none=True, metadata={
        "description": "Completed of the accepted referrals that have ended."})
    overdue_open = ma.fields.Integer(allow_none=True, metadata={
        "description": "Still unanswered after the alliance's response time."})


class GapRow(_Row):
    need_category = ma.fields.String()
    open_needs = ma.fields.Integer(allow_none=True)
    active_offers = ma.fields.Integer()
    capacity = ma.fields.Integer(metadata={"description": "Sum of the stated capacities."})
    open_referrals = ma.fields.Integer(allow_none=True)


class StuckRow(_Row):
    stuck_participants = ma.fields.Integer(allow_none=True, metadata={
        "description": "Participants with two or more closed referrals and none completed."})


class _Report(Schema):
    alliance = ma.fields.String(allow_none=True, metadata={
        "description": "null: every alliance, one row each."})
    min_cell = ma.fields.Integer(metadata={
        "description": "Figures about fewer different people than this are suppressed."})
    perturbation = ma.fields.Dict(metadata={
        "description": "How counts are perturbed: method (cell key), max_deviation (no count "
                       "is further than this from the truth), variance (of the noise)."})
    columns = ma.fields.List(ma.fields.String())


class ReferralReport(_Report):
    period = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(allow_none=True))
    group_by = ma.fields.List(ma.fields.String())
    rows = ma.fields.List(ma.fields.Nested(ReferralRow))


class GapReport(_Report):
    rows = ma.fields.List(ma.fields.Nested(GapRow))


class StuckReport(_Report):
    rows = ma.fields.List(ma.fields.Nested(StuckRow))
