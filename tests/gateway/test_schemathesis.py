"""Schemathesis against the merged document, through the gateway, as a demo case worker: no
answer is a server error, and every answer matches the schema the document gives for it.

The operations are run one by one with Hypothesis (schemathesis' pytest plugin does not yet
support this pytest), each with a bounded number of generated requests."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

pytestmark = pytest.mark.platform

EXAMPLES_PER_OPERATION = 15


def test_the_api_keeps_its_document(platform):
    schema = schemathesis.openapi.from_url(f"{platform.gateway_url}/api/openapi.json")
    headers = {"Authorization": f"Bearer {platform.token('cw.jmd-leverkusen')}"}
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True,
                  database=None, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def exercise(case):
            case.call_and_validate(base_url=platform.gateway_url, headers=headers,
                                   checks=[not_a_server_error, response_schema_conformance])

        try:
            exercise()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect them all
            failures[f"{operation.method.upper()} {operation.path}"] = str(exc)[:1500]
    assert operations >= 20
    assert not failures, "\n\n".join(f"{name}:\n{text}" for name, text in failures.items())
