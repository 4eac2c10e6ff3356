"""The organisations a caller may address (referral targets, consent recipients): the web
front end and clients list them here instead of knowing the realm."""
from __future__ import annotations

from flask.views import MethodView
from marshmallow import fields

from buendnis_common.auth import Principal
from buendnis_common.directory import Organization, organizations
from buendnis_common.validation import Schema
from buendnis_common.web import Blueprint, current_principal

blp = Blueprint("organizations", __name__, url_prefix="/api/v1/organizations",
                description="The organisations the caller may address.")


class OrganizationEntry(Schema):
    alias = fields.String()
    name = fields.String()
    type = fields.String(allow_none=True)
    alliance = fields.String(allow_none=True)


def addressable_by(principal: Principal) -> list[Organization]:
    """A member of an alliance addresses its alliance (its own organisation included); the
    ministry, whose organisation belongs to no alliance, addresses every organisation."""
    if principal.alliance is not None:
        found = [o for o in organizations().values() if o.alliance == principal.alliance]
    elif principal.org_alias is not None:
        found = list(organizations().values())
    else:
        found = []
    return sorted(found, key=lambda o: (o.name.casefold(), o.alias))


@blp.route("")
class Organizations(MethodView):
    @blp.response(200, OrganizationEntry(many=True))
    def get(self):
        """The organisations of the caller's alliance, or every one for the ministry; by name."""
        return addressable_by(current_principal())
