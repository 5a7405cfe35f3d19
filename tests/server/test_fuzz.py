"""A bounded schemathesis run over the server's own OpenAPI schema: no input gets a 5xx.

schemathesis's pytest plugin does not work with this pytest, so the test drives it
directly: every operation in the schema, a bounded number of generated cases each.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from keel.config import load_settings
from keel.server import create_app

CASES_PER_OPERATION = 30


# The run is bounded by its count of cases; this bound only catches a hang. Under load the
# suite's 300 s was not enough (1,180 s on a loaded 2-core machine), and its Failed, raised
# inside hypothesis's call, came back as a FlakyFailure naming an innocent operation.
@pytest.mark.timeout(3600)
def test_no_generated_input_makes_the_server_fail(tmp_path: Path) -> None:
    app = create_app(settings=load_settings(tmp_path / "home"))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30  # the whole API, not an empty schema

    failures: dict[str, str] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=CASES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        try:
            check()
        except Exception as exc:
            failures[operation.label] = f"{type(exc).__name__}: {str(exc)[:500]}"
    assert failures == {}
