"""Between HTML forms and the API's JSON: field names in forms are the API's, dotted for nested
objects (``contact.phone``), so the API's field errors land beside the field they name."""
from __future__ import annotations

from typing import Any

from flask import request

from . import auth


def form_values(multi: tuple[str, ...] = ()) -> dict[str, Any]:
    """The submitted form, or the one kept over a new sign-in, as ``{name: value}``; the
    names in ``multi`` as lists."""
    kept = auth.take_pending_form(request.path) if request.method == "GET" else None
    if kept is not None:
        return {key: (values if key in multi else (values[0] if values else ""))
                for key, values in kept.items()}
    if request.method != "POST":
        return {}
    return {
        key: (request.form.getlist(key) if key in multi else request.form.get(key, ""))
        for key in request.form
        if key != "csrf_token"
    }


def was_kept(values: dict[str, Any]) -> bool:
    return request.method == "GET" and bool(values)


def to_json(values: dict[str, Any], fields: tuple[str, ...], *,
            keep_empty: bool = False) -> dict[str, Any]:
    """The named fields as the API's JSON: dotted names nested, empty ones left out (or sent as
    ``null`` with ``keep_empty``, which a PATCH uses to clear a field)."""
    body: dict[str, Any] = {}
    for name in fields:
        value = values.get(name)
        if isinstance(value, str):
            value = value.strip()
        if value in (None, "", []):
            if not keep_empty or name not in values:
                continue
            value = [] if isinstance(values.get(name), list) else None
        target = body
        *parents, leaf = name.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return body


def flatten(obj: dict[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """An API object as form values: ``{"contact": {"phone": …}}`` → ``{"contact.phone": …}``."""
    flat: dict[str, Any] = {}
    for key, value in (obj or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
