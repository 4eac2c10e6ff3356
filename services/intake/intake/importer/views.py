"""The import API: partners bring the participant lists they keep today (CSV, XLSX), checked
row by row like registrations; large lists run in the worker."""
from __future__ import annotations

from flask import jsonify
from flask.views import MethodView
from marshmallow import fields, validate

from buendnis_common.errors import Unprocessable
from buendnis_common.service import current_runtime
from buendnis_common.validation import Schema
from buendnis_common.web import Blueprint, current_principal
from intake.importer import parsing, service
from intake.importer.limits import ImportLimits

blp = Blueprint("participant-import", __name__, url_prefix="/api/v1/participants",
                description="Import of the participant lists partners keep today.")

MODES = ("all_or_nothing", "valid_rows")


class ImportForm(Schema):
    mode = fields.String(
        load_default="all_or_nothing", validate=validate.OneOf(MODES),
        metadata={"description": "all_or_nothing: any invalid row stops the import; "
                  "valid_rows: the valid rows are imported, the others reported."},
    )


class ImportFile(Schema):
    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary",
                                               "description": ".csv or .xlsx"})


class RowError(Schema):
    row = fields.Integer()
    field = fields.String()
    code = fields.String(metadata={"description": "the error's code, as in a 422 body"})
    message = fields.String()
    params = fields.Dict()


class ImportedRow(Schema):
    row = fields.Integer()
    id = fields.UUID()
    pseudonym = fields.String()


class ImportReport(Schema):
    mode = fields.String()
    rows = fields.Integer()
    imported = fields.List(fields.Nested(ImportedRow))
    errors = fields.List(fields.Nested(RowError))


class ImportStatus(Schema):
    id = fields.UUID()
    status = fields.String(metadata={"description": "queued, checking, importing, done or "
                                     "failed"})
    mode = fields.String()
    rows_total = fields.Integer(metadata={"description": "rows to check (after the header)"})
    rows_done = fields.Integer(metadata={"description": "rows checked so far"})
    message = fields.String(allow_none=True, metadata={
        "description": "why nothing (or not everything) was imported"})
    errors = fields.Dict(allow_none=True, metadata={
        "description": "as in a 422 body: the file's problems under file, or, when nothing was "
                       "imported for errors in rows, the rows under rows"})
    report = fields.Nested(ImportReport, allow_none=True, metadata={
        "description": "when done or refused: the row report, as the synchronous import gives"})
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)


@blp.route("/import")
class ParticipantImport(MethodView):
    @blp.arguments(ImportForm, location="form")
    @blp.arguments(ImportFile, location="files")
    @blp.response(201, ImportReport)
    @blp.alt_response(202, schema=ImportStatus, description=(
        "A list longer than IMPORT_SYNC_MAX_ROWS: imported by the worker; Location names the "
        "import, whose progress and report GET gives."))
    @blp.alt_response(413, description="The file, or what it unpacks to, is too large.")
    def post(self, form, files):
        """Import a CSV or XLSX list. Every row is checked like a registration; the report names
        row, column and problem. Short lists are answered with the report (201); longer ones
        run in the worker (202)."""
        limits = ImportLimits.from_env()
        upload = files["file"]
        filename = upload.filename or ""
        content = upload.read()  # at most MAX_CONTENT_LENGTH; the limits come next
        rows = parsing.count_rows(filename, content, limits)
        if rows > limits.sync_max_rows:
            runtime = current_runtime()
            record = service.start(runtime=runtime, session=runtime.db.session,
                                   principal=current_principal(),
                                   kind=filename.lower().rpartition(".")[2], mode=form["mode"],
                                   content=content, rows=rows)
            response = jsonify(ImportStatus().dump(record))
            response.status_code = 202
            response.headers["Location"] = f"/api/v1/participants/imports/{record.id}"
            return response
        rows, valid, errors = service.validate(filename, content, limits)
        if errors and form["mode"] == "all_or_nothing":
            raise Unprocessable("import.rows_invalid", errors={"rows": errors},
                                **service.refusal(rows, errors))
        runtime = current_runtime()
        imported = service.import_rows(runtime=runtime, session=runtime.db.session,
                                       principal=current_principal(), rows=valid)
        return {"mode": form["mode"], "rows": rows, "imported": imported, "errors": errors}


@blp.route("/imports/<uuid:import_id>")
class ParticipantImportStatus(MethodView):
    @blp.response(200, ImportStatus)
    def get(self, import_id):
        """An import running in the worker: status, progress and, when finished, its row
        report. Only the importing organisation sees it (404 for any other)."""
        runtime = current_runtime()
        return service.get(session=runtime.db.session, principal=current_principal(),
                           import_id=import_id)
