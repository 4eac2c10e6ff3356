"""The base schema every service's schemas derive from: marshmallow's field errors with codes.

marshmallow makes every field error by formatting a template — a field's
``error_messages[key]`` (``required``, ``null``, ``invalid`` …, merged from the field class's
``default_error_messages``) or a validator's message (``Length.message_max``,
``OneOf.error`` …) — with the values of the check (``min``, ``max``, ``choices``). When a field
is bound to a schema, marshmallow calls the schema's ``on_bind_field`` (a documented hook); this
base schema then puts a ``Coded`` template (``buendnis_common.errors``) in place of each
template, with a code taken from marshmallow's own key and class:

* ``field.required``, ``field.null``, ``field.validator_failed`` — keys of ``fields.Field``;
* ``field.<class>.<key>`` for a key a field class defines (``field.integer.invalid``,
  ``field.uuid.invalid_uuid``, ``field.date.invalid``);
* ``field.length.{min,max,between,equal}`` (characters) and ``field.items.{…}`` (entries of a
  list), ``field.range.{min,max,between}``, ``field.one_of``, ``field.pattern``,
  ``field.email.invalid`` — marshmallow's validators;
* ``schema.unknown_field``, ``schema.invalid_type`` — the schema's own.

``Coded.format`` keeps the code and the values, so the error that marshmallow raises still
knows both, and the error handler answers ``{"code", "message", "params"}`` in the caller's
language. A template a schema wrote itself (``error=FieldError("offer.language_code")``) is
already ``Coded`` and stays as it is. Nothing is parsed.
"""
from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from .errors import Coded, FieldError

__all__ = ["FieldError", "Schema", "coded_field"]

_BASE_KEYS = frozenset(fields.Field.default_error_messages)
_LENGTH = {"message_min": "min", "message_max": "max", "message_all": "between",
           "message_equal": "equal"}
_RANGE = {"message_min": "min", "message_max": "max", "message_all": "between"}
_ONE_ERROR = {
    validate.OneOf: "field.one_of",
    validate.Regexp: "field.pattern",
    validate.Email: "field.email.invalid",
    validate.URL: "field.url.invalid",
    validate.Equal: "field.equal",
    validate.ContainsOnly: "field.contains_only",
    validate.NoneOf: "field.none_of",
}


def _field_code(field: fields.Field, key: str, template: str) -> str:
    if key in _BASE_KEYS:
        return f"field.{key}"
    if "{obj_type}" in template:
        return f"field.{getattr(field, 'OBJ_TYPE', type(field).__name__).lower()}.{key}"
    for cls in type(field).__mro__:
        if key in vars(cls).get("default_error_messages", {}):
            return f"field.{cls.__name__.lower()}.{key}"
    return f"field.{type(field).__name__.lower()}.{key}"


def _code(template: Any, code: str) -> Any:
    if isinstance(template, str) and not isinstance(template, Coded):
        return Coded(code, template)
    return template


def _coded_validator(validator: Any, *, counts_items: bool) -> None:
    if isinstance(validator, validate.Length):
        kind = "items" if counts_items else "length"
        for attribute, name in _LENGTH.items():
            setattr(validator, attribute,
                    _code(getattr(validator, attribute), f"field.{kind}.{name}"))
        validator.error = _code(validator.error, f"field.{kind}.invalid")
    elif isinstance(validator, validate.Range):
        for attribute, name in _RANGE.items():
            exclusive = (name in ("min", "between") and not validator.min_inclusive) or (
                name in ("max", "between") and not validator.max_inclusive)
            code = f"field.range.{name}" + ("_exclusive" if exclusive else "")
            setattr(validator, attribute, _code(getattr(validator, attribute), code))
        validator.error = _code(validator.error, "field.range.invalid")
    else:
        for cls, code in _ONE_ERROR.items():
            if isinstance(validator, cls):
                validator.error = _code(validator.error, code)
                return


def coded_field(field: fields.Field) -> None:
    """Put coded templates into a field, its validators and its inner fields (in place; a
    second call changes nothing)."""
    for key, template in list(field.error_messages.items()):
        field.error_messages[key] = _code(template, _field_code(field, key, str(template)))
    counts_items = isinstance(field, (fields.List, fields.Tuple, fields.Dict))
    for validator in field.validators:
        _coded_validator(validator, counts_items=counts_items)
    for inner in (getattr(field, "inner", None), getattr(field, "key_field", None),
                  getattr(field, "value_field", None), *(getattr(field, "tuple_fields", None)
                                                         or ())):
        if isinstance(inner, fields.Field):
            coded_field(inner)


class Schema(ma.Schema):
    """marshmallow's ``Schema`` whose every error carries a code (see the module)."""

    error_messages = {  # noqa: RUF012 - marshmallow's own class attribute
        "unknown": Coded("schema.unknown_field", "Unknown field."),
        "type": Coded("schema.invalid_type", "Invalid input type."),
    }

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        super().on_bind_field(field_name, field_obj)
        coded_field(field_obj)
