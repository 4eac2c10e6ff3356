"""One API document: the services' OpenAPI documents and the gateway's own, merged, with the
bearer security scheme and the roles of each operation from the role policy."""
from __future__ import annotations

import copy
import json
import threading
import time
from typing import Any

import requests

from buendnis_common import policy
from buendnis_common.errors import ServiceUnavailable

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _rename_refs(node: Any, section: str, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                prefix = f"#/components/{section}/"
                if value.startswith(prefix) and value[len(prefix):] in renames:
                    value = prefix + renames[value[len(prefix):]]
            out[key] = _rename_refs(value, section, renames)
        return out
    if isinstance(node, list):
        return [_rename_refs(item, section, renames) for item in node]
    return node


def _template(path: str) -> str:
    """``/api/v1/participants/{participant_id}`` → the policy's ``…/<participant_id>``."""
    return path.replace("{", "<").replace("}", ">")


def merge(documents: dict[str, dict], *, title: str = "Bündnis") -> dict:
    """Merge the documents (by owner name); a component whose name another owner already uses
    with another definition is renamed ``<owner>.<name>`` in its owner's document."""
    merged: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": title,
            "version": "v1",
            "description": "The public API of Bündnis, behind the gateway. Every operation needs "
            "a bearer token from the realm `buendnis` (audience `buendnis-api`); `x-roles` names "
            "the realm roles allowed to call it. Another organisation's records answer 404.",
        },
        "servers": [{"url": "/"}],
        "paths": {},
        "components": {"securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        "security": [{"bearerAuth": []}],
        "tags": [],
    }
    components = merged["components"]
    for owner, original in documents.items():
        document = copy.deepcopy(original)
        for section, entries in (document.get("components") or {}).items():
            if section == "securitySchemes":
                continue
            target = components.setdefault(section, {})
            renames = {name: f"{owner}.{name}" for name, value in entries.items()
                       if name in target and target[name] != value}
            if renames:
                document = _rename_refs(document, section, renames)
            for name, value in (document.get("components") or {}).get(section, {}).items():
                target[renames.get(name, name)] = value
        for path, operations in (document.get("paths") or {}).items():
            merged["paths"].setdefault(path, {}).update(operations)
        known = {tag["name"] for tag in merged["tags"]}
        merged["tags"] += [tag for tag in document.get("tags", []) if tag["name"] not in known]
    for path, operations in merged["paths"].items():
        for method, operation in operations.items():
            if method not in HTTP_METHODS:
                continue
            roles = policy.roles_for(_template(path), method.upper())
            operation["x-roles"] = sorted(roles or [])
            operation["security"] = [{"bearerAuth": []}]
            note = (f"Roles: {', '.join(sorted(roles))}." if roles
                    else "Not reachable through the gateway (no role policy).")
            operation["description"] = f"{operation.get('description', '')}\n\n{note}".strip()
    merged["paths"] = dict(sorted(merged["paths"].items()))
    return merged


class MergedDocument:
    """The merged document, fetched from the services and kept for ``ttl`` seconds."""

    def __init__(self, service_urls: dict[str, str], own: dict, *, ttl: float = 60.0) -> None:
        self.service_urls = service_urls
        self.own = own
        self.ttl = ttl
        self._cached: tuple[float, bytes] | None = None
        self._lock = threading.Lock()

    def fetch(self) -> dict[str, dict]:
        documents = {"gateway": self.own}
        for name, url in self.service_urls.items():
            try:
                response = requests.get(f"{url}/openapi.json", timeout=3)
                response.raise_for_status()
                documents[name] = response.json()
            except (requests.RequestException, ValueError):
                raise ServiceUnavailable("gateway.openapi_incomplete", service=name) from None
        return documents

    def json(self) -> bytes:
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < self.ttl:
                return self._cached[1]
            body = json.dumps(merge(self.fetch()), ensure_ascii=False).encode()
            self._cached = (time.monotonic(), body)
            return body
