"""The published OpenAPI document is valid OpenAPI 3.1 and describes every operation fully:
bodies, success answers, the policy's errors, paging and the quota headers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from callgate.api.openapi import refusals
from tests.matrix.oracle import Operation, operations

ERROR = "#/components/schemas/Error"
INVALID_INPUT = "#/components/schemas/InvalidInputError"


def _schema_ref(response: dict[str, Any]) -> str:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    ref: str = schema.get("$ref", "")
    return ref


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises on the first violation of the OpenAPI 3.1 schema


def test_the_document_is_public_and_json(http: httpx.Client) -> None:
    response = http.get("/api/ver1.0/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"


def test_security_schemes_offer_a_token_for_a_trusted_app(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearerAuth"]["description"],
    }
    flow = schemes["appCredentials"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/oauth/token"
    assert document["security"] == [{"bearerAuth": []}, {"appCredentials": []}]


def _check_errors(document: dict[str, Any], operation: Operation) -> list[str]:
    responses = operation.spec["responses"]
    problems = []
    for code in ("401", "403", "429"):
        if code not in responses or _schema_ref(responses[code]) != ERROR:
            problems.append(f"no {code} Error answer")
    if "WWW-Authenticate" not in responses.get("401", {}).get("headers", {}):
        problems.append("401 without WWW-Authenticate")
    if "Retry-After" not in responses.get("429", {}).get("headers", {}):
        problems.append("429 without Retry-After")
    statuses = responses.get("403", {}).get("content", {}).get("application/json", {})
    listed = set(statuses.get("examples", {}))
    if listed != set(refusals(operation.method, operation.operation_class, operation.path)):
        problems.append(f"403 lists {sorted(listed)}")
    if operation.parameters and "404" not in responses:
        problems.append("no 404 although the path names objects")
    parsed = operation.body != "none" or operation.spec.get("parameters")
    if parsed and _schema_ref(responses.get("422", {})) != INVALID_INPUT:
        problems.append("422 is not InvalidInputError")
    if operation.body != "none" and "415" not in responses:
        problems.append("no 415 although it takes a body")
    if operation.is_write and "409" not in responses:
        problems.append("no 409 on a write")
    return problems


def _check_success(document: dict[str, Any], operation: Operation) -> list[str]:
    responses = operation.spec["responses"]
    successes = [code for code in responses if code.startswith("2")]
    expected = {"get": "200", "post": "201", "put": "200", "delete": "204"}[operation.method]
    problems = []
    if successes != [expected]:
        problems.append(f"success answers {successes}, SPEC §5 says {expected}")
    for code, response in responses.items():
        headers = response.get("headers", {})
        rate = {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}
        if code != "401" and not rate <= set(headers):
            problems.append(f"{code} without the X-RateLimit-* headers")
    names = {parameter["name"] for parameter in operation.spec.get("parameters", ())}
    success = responses.get(expected, {})
    schema = success.get("content", {}).get("application/json", {}).get("schema", {})
    if schema.get("type") == "array":
        if not {"page", "per_page"} <= names:
            problems.append("a list without page/per_page")
        if "X-Total-Count" not in success.get("headers", {}):
            problems.append("a list without X-Total-Count")
    return problems


def _check_body(document: dict[str, Any], operation: Operation) -> list[str]:
    if operation.body != "json":
        return []
    content = operation.spec["requestBody"]["content"]["application/json"]
    schema = _resolve(document, content["schema"])
    if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
        return ["its JSON body accepts unknown fields (extra='forbid' is missing)"]
    return []


def test_every_operation_is_described_completely(document: dict[str, Any]) -> None:
    problems = [
        f"{operation.label}: {problem}"
        for operation in operations(document)
        for check in (_check_errors, _check_success, _check_body)
        for problem in check(document, operation)
    ]
    assert not problems, "\n".join(problems)


def test_every_operation_has_a_unique_id_and_a_summary(document: dict[str, Any]) -> None:
    found = operations(document)
    ids = [operation.spec.get("operationId") for operation in found]
    assert len(set(ids)) == len(ids) and None not in ids
    assert all(operation.spec.get("summary") for operation in found)


@pytest.mark.parametrize(
    ("method", "declared", "path", "expected"),
    [
        ("get", "read", "/api/ver1.0/user", ["user_blocked"]),
        (
            "put",
            "config",
            "/api/ver1.0/client/{client_id}/",
            [
                "user_blocked",
                "user_access_type_deny",
                "app_access_type_deny",
                "access_denied",
                "permission_denied",
            ],
        ),
        (
            "delete",
            "call_api",
            "/api/ver1.0/extension/{extension_id}/event/{event_id}",
            ["user_blocked", "user_access_type_deny", "access_denied", "permission_denied"],
        ),
    ],
)
def test_the_403_answers_follow_the_operation_class(
    method: str, declared: str, path: str, expected: list[str]
) -> None:
    assert refusals(method, declared, path) == expected
