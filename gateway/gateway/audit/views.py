from __future__ import annotations

from flask.views import MethodView
from marshmallow import fields, validate, validates_schema
from marshmallow.exceptions import ValidationError
from sqlalchemy import func, select

from buendnis_common.service import current_runtime
from buendnis_common.validation import FieldError, Schema
from buendnis_common.web import Blueprint, current_principal
from gateway.audit.models import AuditTrailEntry

blp = Blueprint("audit", __name__, url_prefix="/api/v1/audit",
                description="The audit trail of the caller's organisation (role auditor).")


class AuditQuery(Schema):
    from_ = fields.AwareDateTime(data_key="from", metadata={"description": "ISO 8601 with offset"})
    to = fields.AwareDateTime(metadata={"description": "ISO 8601 with offset"})
    actor = fields.String(validate=validate.Length(min=1, max=128))
    participant_id = fields.UUID()

    @validates_schema
    def _ordered(self, data, **_kwargs):
        if data.get("from_") and data.get("to") and data["from_"] > data["to"]:
            raise ValidationError(FieldError("query.from_after_to"), "from")


class AuditEntry(Schema):
    seq = fields.Integer()
    at = fields.DateTime()
    actor = fields.String()
    actor_org = fields.String(allow_none=True)
    action = fields.String()
    participant_id = fields.UUID(allow_none=True)
    record_id = fields.UUID(allow_none=True)
    request_id = fields.String(allow_none=True)
    source = fields.String()
    hash = fields.String()


@blp.route("")
class AuditTrail(MethodView):
    @blp.arguments(AuditQuery, location="query")
    @blp.response(200, AuditEntry(many=True))
    @blp.paginate(page_size=50, max_page_size=500)
    def get(self, query, pagination_parameters):
        """Who did what with which participant's data, newest first — for the organisation's
        own staff only."""
        session = current_runtime().db.session
        conditions = [AuditTrailEntry.actor_org == current_principal().org_alias]
        if query.get("from_"):
            conditions.append(AuditTrailEntry.at >= query["from_"])
        if query.get("to"):
            conditions.append(AuditTrailEntry.at <= query["to"])
        if query.get("actor"):
            conditions.append(AuditTrailEntry.actor == query["actor"])
        if query.get("participant_id"):
            conditions.append(AuditTrailEntry.participant_id == query["participant_id"])
        pagination_parameters.item_count = session.scalar(
            select(func.count()).select_from(AuditTrailEntry).where(*conditions)
        )
        return session.scalars(
            select(AuditTrailEntry).where(*conditions)
            .order_by(AuditTrailEntry.seq.desc())
            .offset(pagination_parameters.first_item).limit(pagination_parameters.page_size)
        ).all()
