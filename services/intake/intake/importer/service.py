"""Import of a participant list: validate every row like a registration, then import all or
nothing, or only the valid rows."""
from __future__ import annotations

from marshmallow import ValidationError
from sqlalchemy.orm import Session

from buendnis_common.auth import Principal
from buendnis_common.service import ServiceRuntime
from intake.importer.parsing import FIELD_TO_COLUMN, read_rows, to_participant
from intake.participant import schemas
from intake.participant import service as participants


def _flatten(messages: dict, prefix: str = "") -> list[tuple[str, str]]:
    flat = []
    for key, value in messages.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.extend(_flatten(value, f"{name}."))
        else:
            for message in value if isinstance(value, list) else [value]:
                flat.append((name, str(message)))
    return flat


def _column(field: str) -> str:
    if field.startswith("needs."):
        return "needs"
    return FIELD_TO_COLUMN.get(field, field.split(".")[0])


def validate(filename: str, content: bytes) -> tuple[int, list[tuple[int, dict]], list[dict]]:
    """(rows read, valid rows with their number, errors as {row, field, message})."""
    schema = schemas.ParticipantCreate()
    valid, errors = [], []
    rows = read_rows(filename, content)
    for number, values in rows:
        try:
            valid.append((number, schema.load(to_participant(values))))
        except ValidationError as exc:
            for field, message in _flatten(exc.normalized_messages()):
                errors.append({"row": number, "field": _column(field), "message": message})
    return len(rows), valid, errors


def import_rows(
    *, runtime: ServiceRuntime, session: Session, principal: Principal,
    rows: list[tuple[int, dict]],
) -> list[dict]:
    created = participants.register_many(
        runtime=runtime, session=session, principal=principal, rows=[data for _, data in rows]
    )
    return [
        {"row": number, "id": str(participant.id), "pseudonym": participant.pseudonym}
        for (number, _), participant in zip(rows, created, strict=True)
    ]
