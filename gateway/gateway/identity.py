"""``GET /api/v1/me``, answered by the gateway itself from the verified token: who the
caller is, for which organisation, with which roles."""
from __future__ import annotations

from flask.views import MethodView
from marshmallow import fields

from buendnis_common.validation import Schema
from buendnis_common.web import Blueprint, current_principal, whoami

blp = Blueprint("identity", __name__, url_prefix="/api/v1/me", description="Who am I?")


class Organization(Schema):
    alias = fields.String()
    type = fields.String(allow_none=True)
    alliance = fields.String(allow_none=True)


class Me(Schema):
    username = fields.String()
    organization = fields.Nested(Organization)
    roles = fields.List(fields.String())


@blp.route("")
class MeView(MethodView):
    @blp.response(200, Me)
    def get(self):
        """The signed-in user, their organisation and their roles."""
        return whoami(current_principal())
