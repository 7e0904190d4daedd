"""Bad input on every operation that takes a body: each is answered with a clear 4xx, and the
database is exactly as it was before (every table compared, row by row).

The operations come from the live server's OpenAPI document, so a resource added later is
covered too. Requests are made by an admin through an ``all`` app (the policy lets them
through, so what answers is the input handling), on the world's client A and extension 101;
nested ids do not exist, which does not matter: the body is refused first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import select

from callgate.config import Settings
from callgate.models import Base
from callgate.services import Services
from tests.api.helpers import token_for
from tests.matrix.oracle import Operation, Target, fill, operations
from tests.support.factories import World

# Counted on every request (quota) or written on purpose when something is refused (audit).
VOLATILE_TABLES = frozenset({"rate_counters", "audit_events"})
METACHARACTERS = 'Robert\'); DROP TABLE clients;-- <script>alert("x")</script> & %s \\ ` $1'
UPLOAD_LIMIT = 64 * 1024


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Small upload limits, so that an oversized upload is quick to send.
    small = {"sound_max_bytes": UPLOAD_LIMIT, "fax_max_bytes": UPLOAD_LIMIT}
    return settings.model_copy(update={k: v for k, v in small.items() if hasattr(settings, k)})


class Asker:
    def __init__(self, http: httpx.Client, token: str, world: World) -> None:
        self.http = http
        self.auth = {"Authorization": f"Bearer {token}"}
        self.target = Target(world.client.id, world.ext101.id, world.client.id)

    def send(self, operation: Operation, **kwargs: Any) -> httpx.Response:
        headers = {**self.auth, **kwargs.pop("headers", {})}
        path = fill(operation, self.target)
        return self.http.request(operation.method.upper(), path, headers=headers, **kwargs)


@pytest.fixture
def admin(services: Services, world: World, http: httpx.Client) -> Asker:
    return Asker(http, token_for(services, world.admin, level="all", admin=world.admin), world)


def snapshot(services: Services) -> dict[str, list[str]]:
    with services.database.read() as session:
        return {
            table.name: sorted(repr(tuple(row)) for row in session.execute(select(table)))
            for table in Base.metadata.sorted_tables
            if table.name not in VOLATILE_TABLES
        }


@pytest.fixture
def unchanged(services: Services, admin: Asker) -> Iterator[None]:
    """The test's requests must leave every table as it was (the token is made before)."""
    before = snapshot(services)
    yield
    after = snapshot(services)
    changed = [name for name in before if before[name] != after[name]]
    assert not changed, f"bad input changed {changed}: {before[changed[0]]} -> {after[changed[0]]}"


def body_operations(document: dict[str, Any], kind: str) -> list[Operation]:
    found = [operation for operation in operations(document) if operation.body == kind]
    assert found, f"no {kind} operation in the document"
    return found


def body_schema(document: dict[str, Any], operation: Operation) -> dict[str, Any]:
    schema: dict[str, Any] = operation.spec["requestBody"]["content"]["application/json"]["schema"]
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def property_types(schema: dict[str, Any]) -> set[str]:
    options = [schema, *schema.get("anyOf", ()), *schema.get("oneOf", ())]
    return {option["type"] for option in options if isinstance(option.get("type"), str)}


def wrong_value(document: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A JSON value the property's schema refuses (and pydantic's lax mode does too)."""
    validator = Draft202012Validator({**schema, "components": document.get("components", {})})
    for candidate in ({"wrong": "type"}, "wrong type", ["wrong"]):
        if not validator.is_valid(candidate):
            return candidate
    return None


def assert_refused(response: httpx.Response, code: int, label: str) -> dict[str, Any]:
    assert response.status_code == code, (label, response.status_code, response.text)
    body: dict[str, Any] = response.json()
    assert body["status"] and body["message"], (label, body)
    return body


@pytest.mark.usefixtures("unchanged")
def test_other_body_types_are_415(document: dict[str, Any], admin: Asker) -> None:
    bodies = [
        ("text/plain", b"hello"),
        ("application/x-www-form-urlencoded", b"name=x&url=y"),
        (
            "multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--b--\r\n',
        ),
        ("application/xml", b"<name>x</name>"),
    ]
    for operation in body_operations(document, "json"):
        for content_type, content in bodies:
            response = admin.send(
                operation, content=content, headers={"Content-Type": content_type}
            )
            body = assert_refused(response, 415, f"{operation.label} {content_type}")
            assert body["status"] == "unsupported_media_type"


@pytest.mark.usefixtures("unchanged")
def test_malformed_json_is_422_with_a_sentence(document: dict[str, Any], admin: Asker) -> None:
    json_type = {"Content-Type": "application/json"}
    for operation in body_operations(document, "json"):
        for content in (b'{"name": ', b"{'name': 'x'}", b"\xff\xfe{}", b'{"a": 1} trailing'):
            response = admin.send(operation, content=content, headers=json_type)
            body = assert_refused(response, 422, f"{operation.label} {content!r}")
            assert "JSON" in body["fields"]["body"], body


@pytest.mark.usefixtures("unchanged")
def test_bodies_of_the_wrong_shape_are_422(document: dict[str, Any], admin: Asker) -> None:
    for operation in body_operations(document, "json"):
        for value in ([], "x", 42, None, [{"name": "x"}]):
            response = admin.send(operation, json=value)
            body = assert_refused(response, 422, f"{operation.label} {value!r}")
            assert body["status"] == "invalid_input" and body["fields"], body


@pytest.mark.usefixtures("unchanged")
def test_unknown_fields_are_named(document: dict[str, Any], admin: Asker) -> None:
    for operation in body_operations(document, "json"):
        response = admin.send(operation, json={"surprise_field": 1})
        body = assert_refused(response, 422, operation.label)
        assert "surprise_field" in body["fields"], (operation.label, body)


@pytest.mark.usefixtures("unchanged")
def test_wrong_types_are_named(document: dict[str, Any], admin: Asker) -> None:
    checked = 0
    for operation in body_operations(document, "json"):
        for name, schema in body_schema(document, operation).get("properties", {}).items():
            value = wrong_value(document, schema)
            if value is None:
                continue
            response = admin.send(operation, json={name: value})
            body = assert_refused(response, 422, f"{operation.label} {name}={value!r}")
            assert any(field.split(".")[0] == name for field in body["fields"]), body
            checked += 1
    assert checked >= 10


@pytest.mark.usefixtures("unchanged")
def test_values_no_database_can_hold_are_named(document: dict[str, Any], admin: Asker) -> None:
    """NUL characters, lone surrogates, integers wider than a column, NaN: a 422 on both
    databases, not a server error on one of them."""
    for operation in body_operations(document, "json"):
        for name, schema in body_schema(document, operation).get("properties", {}).items():
            kinds = property_types(schema)
            raw = []
            if "string" in kinds:
                raw += ['"a\\u0000b"', '"\\ud800"']
            if "integer" in kinds or "number" in kinds:
                raw += [str(2**40), "NaN"]
            for value in raw:
                content = f'{{"{name}": {value}}}'.encode()
                response = admin.send(
                    operation, content=content, headers={"Content-Type": "application/json"}
                )
                body = assert_refused(response, 422, f"{operation.label} {content!r}")
                assert name in body["fields"], body


@pytest.mark.usefixtures("unchanged")
def test_huge_bodies_and_strings(document: dict[str, Any], admin: Asker) -> None:
    huge = json.dumps({"name": "x" * (2 * 1024 * 1024)})
    for operation in body_operations(document, "json"):
        response = admin.send(operation, content=huge, headers={"Content-Type": "application/json"})
        assert assert_refused(response, 413, operation.label)["status"] == "payload_too_large"
        # Within the body limit, a string longer than any column: refused, never a 500.
        for name, schema in body_schema(document, operation).get("properties", {}).items():
            if "string" in property_types(schema):
                response = admin.send(operation, json={name: "y" * 300_000})
                assert_refused(response, 422, f"{operation.label} long {name}")


def test_metacharacters_are_stored_as_text(
    document: dict[str, Any], admin: Asker, world: World
) -> None:
    put_client = f"/api/ver1.0/client/{world.client.id}/"
    response = admin.http.put(put_client, headers=admin.auth, json={"name": METACHARACTERS})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == METACHARACTERS
    again = admin.http.get(put_client, headers=admin.auth)
    assert again.json()["name"] == METACHARACTERS
    assert again.headers["content-type"] == "application/json"
    # Every other string field takes them too, or refuses them with a 4xx: never a 500.
    for operation in body_operations(document, "json"):
        for name, schema in body_schema(document, operation).get("properties", {}).items():
            if "string" in property_types(schema):
                response = admin.send(operation, json={name: METACHARACTERS})
                assert response.status_code < 500, (operation.label, name, response.text)
    listed = admin.http.get("/api/ver1.0/user", headers=admin.auth)
    assert listed.status_code == 200  # the tables are all still there


@pytest.mark.usefixtures("unchanged")
def test_extensions_of_other_clients_cannot_be_named_in_bodies(
    document: dict[str, Any], admin: Asker, world: World
) -> None:
    """A body on client A's realm naming client B's extension is refused, even for an admin."""
    tried = 0
    for operation in body_operations(document, "json"):
        schema = body_schema(document, operation)
        if "extension_id" not in schema.get("properties", {}) or "client_id" not in (
            operation.parameters
        ):
            continue
        body = {"extension_id": world.other_ext.id}
        for name in schema.get("required", ()):
            body.setdefault(name, filler(document, schema["properties"][name]))
        response = admin.send(operation, json=body)
        assert 400 <= response.status_code < 500, (operation.label, body, response.text)
        tried += 1
    assert tried >= 1 or not any(op.path.endswith("/did/") for op in operations(document))


def filler(document: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A valid value for a required field, from a few plausible candidates."""
    validator = Draft202012Validator({**schema, "components": document.get("components", {})})
    for candidate in ("74951234567", "matrix-login-1", "correct horse battery staple 9", 30):
        if validator.is_valid(candidate):
            return candidate
    raise AssertionError(f"no filler for {schema}")


@pytest.mark.usefixtures("unchanged")
def test_malformed_and_oversized_uploads(document: dict[str, Any], admin: Asker) -> None:
    broken = [
        ("multipart/form-data", b"--b\r\n\r\n--b--\r\n"),  # no boundary parameter
        ("multipart/form-data; boundary=b", b"this is not multipart at all"),
        ("multipart/form-data; boundary=b", b'--b\r\nContent-Disposition: form-data; name="file"'),
        ("multipart/form-data; boundary=b", b"--b--\r\n"),  # no parts: the file is missing
        ("application/json", b'{"file": "x"}'),
    ]
    for operation in body_operations(document, "multipart"):
        for content_type, content in broken:
            response = admin.send(
                operation, content=content, headers={"Content-Type": content_type}
            )
            assert_refused(response, response.status_code, operation.label)
            assert 400 <= response.status_code < 500, (operation.label, content, response.text)

        def oversized() -> Iterator[bytes]:
            yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.wav"\r\n'
            yield b"Content-Type: application/octet-stream\r\n\r\n"
            for _ in range(4 * UPLOAD_LIMIT // 4096):
                yield b"\0" * 4096
            yield b"\r\n--b--\r\n"

        response = admin.send(
            operation,
            content=oversized(),
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
        assert response.status_code in (413, 422), (operation.label, response.text)
