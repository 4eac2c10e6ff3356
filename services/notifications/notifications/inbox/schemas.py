"""What clients send to and get from the inbox."""
from __future__ import annotations

from marshmallow import fields, validate

from buendnis_common.validation import Schema
from notifications.inbox.models import KINDS


class NotificationQuery(Schema):
    unread = fields.Boolean(metadata={"description": "true: only unread, false: only read."})
    kind = fields.String(validate=validate.OneOf(KINDS))


class Notification(Schema):
    id = fields.UUID()
    kind = fields.String(metadata={"description": f"One of: {', '.join(KINDS)}."})
    text = fields.String(metadata={"description": "The entry in one sentence: German, or English "
                                             "with Accept-Language: en."})
    created_at = fields.DateTime()
    read = fields.Boolean()
    read_at = fields.DateTime(allow_none=True)
    addressed_to = fields.String(
        metadata={"description": "user: to you; organization: to every case worker of it."})
    organization = fields.String()
    referral_id = fields.UUID(allow_none=True)
    appointment_id = fields.UUID(allow_none=True)
    reminder_id = fields.UUID(allow_none=True)
    data = fields.Dict(metadata={"description": "Ids, codes and times of what happened."})


class Preferences(Schema):
    email_copies = fields.Dict(
        keys=fields.String(validate=validate.OneOf(KINDS)), values=fields.Boolean(),
        required=True,
        metadata={"description": "Per kind of entry: send me an e-mail copy. A kind left out "
                  "is on."},
    )
