from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from buendnis_common.errors import Unprocessable
from buendnis_common.service import current_runtime
from buendnis_common.web import current_principal
from intake.importer import service

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
    message = fields.String()


class ImportedRow(Schema):
    row = fields.Integer()
    id = fields.UUID()
    pseudonym = fields.String()


class ImportReport(Schema):
    mode = fields.String()
    rows = fields.Integer()
    imported = fields.List(fields.Nested(ImportedRow))
    errors = fields.List(fields.Nested(RowError))


@blp.route("/import")
class ParticipantImport(MethodView):
    @blp.arguments(ImportForm, location="form")
    @blp.arguments(ImportFile, location="files")
    @blp.response(201, ImportReport)
    def post(self, form, files):
        """Import a CSV or XLSX list. Every row is checked like a registration; the report names
        row, column and problem."""
        upload = files["file"]
        rows, valid, errors = service.validate(upload.filename or "", upload.read())
        if errors and form["mode"] == "all_or_nothing":
            raise Unprocessable(
                f"Nothing was imported: {len({e['row'] for e in errors})} of {rows} rows have "
                "errors. Correct them, or import the valid rows only (mode=valid_rows).",
                errors={"rows": errors},
            )
        runtime = current_runtime()
        session = runtime.db.session
        imported = service.import_rows(runtime=runtime, session=session,
                                       principal=current_principal(), rows=valid)
        session.commit()
        return {"mode": form["mode"], "rows": rows, "imported": imported, "errors": errors}
