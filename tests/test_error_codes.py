"""Errors with codes (API.md, "Errors with codes"): every code the code base raises has a German
and an English text in the one catalogue (``buendnis_common/translations``), no error is raised
with a sentence instead of a code, and marshmallow's field errors carry codes too.

The codes are collected from the source itself (its syntax tree, not a list kept by hand): the
first argument of every ``raise``-able error class and of ``FieldError``, ``error_code=`` of
``error_body``, a refusal ``Decision``'s code, and any string literal shaped like a code in a
table of codes (``_SET_BY_OTHER_SIDE``). Field codes come from every schema the services load.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import marshmallow as ma
import pytest

from buendnis_common import errors, messages, validation

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "common", ROOT / "gateway" / "gateway", *(ROOT / "services").glob("*/*")]
ERROR_CLASSES = {
    "DomainError", "BadRequest", "Unauthorized", "Forbidden", "NotFound", "Conflict",
    "PreconditionFailed", "Unprocessable", "PreconditionRequired", "ServiceUnavailable",
    "TooLarge", "BadGateway", "GatewayTimeout", "MethodNotAllowed", "FieldError", "Coded",
    "_refuse",
}
SERVICE_PACKAGES = ("intake", "referrals", "notifications", "gateway")


def _python_files():
    for source in SOURCES:
        if not source.is_dir():
            continue
        for path in source.rglob("*.py"):
            if "migrations" not in path.parts and "tests" not in path.parts:
                yield path


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _raised(tree: ast.AST):
    """(line, first argument) of every error built in the module."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        args = node.args
        if name == "_refuse":
            args = args[1:]
        elif name == "Decision":
            args = args[2:3]
        elif name == "error_body":
            args = [kw.value for kw in node.keywords if kw.arg == "error_code"]
        elif name not in ERROR_CLASSES:
            continue
        if args:
            yield node.lineno, args[0]


def _collect():
    codes: dict[str, str] = {}
    sentences: list[str] = []
    for path in _python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(ROOT)
        for line, first in _raised(tree):
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                if errors.is_code(first.value):
                    codes.setdefault(first.value, f"{where}:{line}")
                elif first.value:
                    sentences.append(f"{where}:{line}: {first.value!r}")
            elif isinstance(first, ast.JoinedStr):
                sentences.append(f"{where}:{line}: an f-string (say the code itself)")
        for node in ast.walk(tree):  # codes kept in tables: {(…): "referral.set_by_receiver"}
            if isinstance(node, ast.Dict):
                for value in node.values:
                    if (isinstance(value, ast.Constant) and isinstance(value.value, str)
                            and value.value.startswith(("referral.", "appointment."))
                            and errors.is_code(value.value) and "_" in value.value):
                        codes.setdefault(value.value, f"{where}:{value.lineno}")
    return codes, sentences


RAISED, SENTENCES = _collect()


def _schemas():
    """Every schema class of the services' and the gateway's modules."""
    found = set()
    for package_name in SERVICE_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, f"{package_name}."):
            if info.name.endswith(("__main__", ".worker", ".beat")):
                continue
            try:
                module = importlib.import_module(info.name)
            except Exception:  # noqa: BLE001, S112 - a module that needs a running platform
                continue
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, ma.Schema) and cls.__module__ == module.__name__:
                    found.add(cls)
    return sorted(found, key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


def _field_codes(schema_class) -> set[str]:
    schema = schema_class()
    codes = {str(t.code) for t in schema.error_messages.values() if isinstance(t, errors.Coded)}

    def walk(field):
        codes.update(t.code for t in field.error_messages.values()
                     if isinstance(t, errors.Coded))
        for validator in field.validators:
            for value in vars(validator).values():
                if isinstance(value, errors.Coded):
                    codes.add(value.code)
        for inner in (getattr(field, "inner", None), getattr(field, "value_field", None),
                      getattr(field, "key_field", None)):
            if isinstance(inner, ma.fields.Field):
                walk(inner)

    for field in schema.fields.values():
        walk(field)
    return codes


SCHEMAS = _schemas()


def test_the_collector_finds_the_codes_it_should():
    """The test can fail: it sees the raise sites and schemas it is meant to check."""
    assert len(RAISED) > 80, sorted(RAISED)
    assert {"participant.not_found", "referral.consent_missing", "policy.role_required",
            "import.rows_invalid", "referral.set_by_receiver"} <= set(RAISED)
    assert any(cls.__name__ == "ParticipantCreate" for cls in SCHEMAS)


def test_no_error_is_raised_with_a_sentence_instead_of_a_code():
    assert not SENTENCES, "raise with a code and params, not a sentence:\n" + "\n".join(SENTENCES)


@pytest.mark.parametrize("language", messages.LANGUAGES)
def test_every_code_raised_in_the_code_base_has_a_text(language):
    known = messages.known_codes(language)
    missing = {code: where for code, where in RAISED.items() if code not in known}
    assert not missing, f"codes without a {language} text in errors.po: {missing}"


def test_every_schema_is_built_on_the_coded_base_schema():
    plain = [f"{cls.__module__}.{cls.__qualname__}" for cls in SCHEMAS
             if not issubclass(cls, validation.Schema)]
    assert not plain, "derive from buendnis_common.validation.Schema:\n" + "\n".join(plain)


@pytest.mark.parametrize("language", messages.LANGUAGES)
def test_every_field_error_code_of_every_schema_has_a_text(language):
    known = messages.known_codes(language)
    missing = {f"{cls.__module__}.{cls.__qualname__}": sorted(_field_codes(cls) - known)
               for cls in SCHEMAS}
    missing = {name: codes for name, codes in missing.items() if codes}
    assert not missing, f"field codes without a {language} text: {missing}"


def test_german_and_english_catalogues_have_the_same_codes_and_placeholders():
    english, german = messages.catalogue("en"), messages.catalogue("de")
    assert messages.known_codes("en") == messages.known_codes("de")
    for message in english:
        if not message.id:
            continue
        other = german.get(message.id)
        assert set(_placeholders(message.string)) == set(_placeholders(other.string)), message.id


def _placeholders(text: str) -> list[str]:
    import re

    return re.findall(r"%\((\w+)\)s", text)


def test_an_error_raised_with_a_sentence_fails_where_it_is_raised():
    with pytest.raises(ValueError, match="code from the catalogue"):
        errors.NotFound("No such thing.")
    with pytest.raises(ValueError, match="code from the catalogue"):
        errors.Unprocessable("Too old.", field="birth_date")
    coded = errors.Unprocessable("participant.age_out_of_range", field="birth_date",
                                 min=18, max=27, age=31)
    assert (coded.code, coded.params) == ("participant.age_out_of_range",
                                          {"min": 18, "max": 27, "age": 31})
    assert coded.errors["birth_date"][0].code == "participant.age_out_of_range"
