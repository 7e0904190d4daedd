"""schemathesis against the live server's OpenAPI document, as an admin through an ``all`` app.

Every operation is exercised with data that fits the document (realm parameters fixed to the
world's client and extension, so requests reach the resources' own code) and with data that
does not (everything generated, so the edge is probed too). No answer may be a 5xx, and every
answer must be one the document describes: its status, content type, body and headers.
Generation is derandomized and bounded, so a run takes well under two minutes per database and
a failure can be reproduced.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from callgate.config import Settings
from callgate.services import Services
from tests.api.helpers import API, token_for
from tests.conftest import LiveServer
from tests.support.factories import World

POSITIVE_EXAMPLES = 12
NEGATIVE_EXAMPLES = 6
CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The admin's own hourly quota would otherwise end the run with 429s halfway.
    return settings.model_copy(update={"rate_limit_per_hour": 1_000_000})


def _deletes_its_realm(operation: Any) -> bool:
    return bool(
        operation.method.lower() == "delete" and operation.path.rstrip("/").endswith("_id}")
    )


def _run(
    strategy: Any, examples: int, base_url: str, headers: dict[str, str], checks: list[Any]
) -> None:
    @hypothesis_settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def exercise(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, checks=checks)

    exercise()


def test_no_answer_is_a_server_error_or_outside_the_document(
    services: Services, world: World, live_server: LiveServer
) -> None:
    token = token_for(services, world.admin, level="all", admin=world.admin)
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_url(f"{live_server.url}{API}/openapi.json")
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) >= 8
    realm = {"client_id": str(world.client.id), "extension_id": str(world.ext101.id)}
    # Deleting the world's extension first would turn the rest of the run into 404s.
    found.sort(key=_deletes_its_realm)
    failures: list[str] = []
    for operation in found:
        names = {parameter.name for parameter in operation.path_parameters}
        fixed = {name: value for name, value in realm.items() if name in names}
        runs = [
            (
                POSITIVE_EXAMPLES,
                operation.as_strategy(
                    generation_mode=schemathesis.GenerationMode.POSITIVE,
                    path_parameters=fixed,
                    headers=headers,
                ),
                CONFORMANCE,
            ),
            (
                NEGATIVE_EXAMPLES,
                operation.as_strategy(
                    generation_mode=schemathesis.GenerationMode.NEGATIVE, headers=headers
                ),
                [*CONFORMANCE, negative_data_rejection],
            ),
        ]
        for examples, strategy, checks in runs:
            try:
                _run(strategy, examples, live_server.url, headers, checks)
            except Unsatisfiable:
                # Nothing to get wrong: no parameters and no body (GET /user, negative run).
                assert checks is not CONFORMANCE, operation.label
            # Collected, not raised: one run shows every finding.
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"--- {operation.label}\n{exc}")
    assert not failures, f"{len(failures)} operation runs failed:\n" + "\n".join(failures)
