"""How routes are wired: the services reach every route on the event loop, and the audio artefact
routes built from a description (``api/artefacts.py``) publish what written-out routes did."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_typed_return_annotation
from fastapi.routing import APIRoute

from callgate.api.router import PREFIX, build_openapi
from callgate.composition import create_app
from callgate.config import Settings
from callgate.policy.http import routes_under
from callgate.services import Services


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    folder: Path = tmp_path_factory.mktemp("wiring")
    return create_app(Settings(data_dir=folder / "data"))


def _all_routes(app: FastAPI) -> Iterator[APIRoute]:
    for _, route in routes_under(app, ""):
        if isinstance(route, APIRoute):
            yield route


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependants(sub)


def test_the_services_dependency_never_costs_a_thread_pool_hop(app: FastAPI) -> None:
    # FastAPI runs a plain-function dependency in the thread pool; one handing out the services
    # must be ``async def`` so that it runs on the loop.
    found = 0
    for route in _all_routes(app):
        for sub in _dependants(route.dependant):
            if sub.call is None or get_typed_return_annotation(sub.call) is not Services:
                continue
            found += 1
            assert inspect.iscoroutinefunction(sub.call), (route.path, sub.call)
    assert found > 50  # nearly every route takes the services


# (method, path under the prefix): (endpoint name, docstring, declared operation class)
ARTEFACT_ROUTES: dict[tuple[str, str], tuple[str, str, str]] = {
    ("get", "/client/{client_id}/record/"): (
        "list_client_records",
        "The client's recordings (a JSON array, as in the original API), newest first.",
        "read",
    ),
    ("get", "/client/{client_id}/record/{record_uuid}"): (
        "download_client_record", "The recording's WAV file.", "read"
    ),
    ("get", "/client/{client_id}/record/{record_uuid}/info"): (
        "get_client_record", "The recording's details, as in the list.", "read"
    ),
    ("delete", "/client/{client_id}/record/{record_uuid}"): (
        "delete_client_record", "Delete the recording and its file.", "call_api"
    ),
    ("get", "/extension/{extension_id}/record/"): (
        "list_extension_records", "The extension's recordings, newest first.", "read"
    ),
    ("get", "/extension/{extension_id}/record/{record_uuid}"): (
        "download_extension_record", "The recording's WAV file.", "read"
    ),
    ("get", "/extension/{extension_id}/record/{record_uuid}/info"): (
        "get_extension_record", "The recording's details, as in the list.", "read"
    ),
    ("delete", "/extension/{extension_id}/record/{record_uuid}"): (
        "delete_extension_record", "Delete the recording and its file.", "call_api"
    ),
    ("get", "/client/{client_id}/voicemail/"): (
        "list_client_voicemail",
        "Voicemail messages of the client's extensions, newest first.",
        "read",
    ),
    ("get", "/client/{client_id}/voicemail/{uuid}"): (
        "download_client_voicemail", "The message's WAV file.", "read"
    ),
    ("get", "/client/{client_id}/voicemail/{uuid}/info"): (
        "get_client_voicemail", "The message's details, as in the list.", "read"
    ),
    ("delete", "/client/{client_id}/voicemail/{uuid}"): (
        "delete_client_voicemail", "Delete the message and its file.", "call_api"
    ),
    ("get", "/extension/{extension_id}/voicemail/"): (
        "list_extension_voicemail",
        "Voicemail messages left for the extension, newest first.",
        "read",
    ),
    ("get", "/extension/{extension_id}/voicemail/{uuid}"): (
        "download_extension_voicemail", "The message's WAV file.", "read"
    ),
    ("get", "/extension/{extension_id}/voicemail/{uuid}/info"): (
        "get_extension_voicemail", "The message's details, as in the list.", "read"
    ),
    ("delete", "/extension/{extension_id}/voicemail/{uuid}"): (
        "delete_extension_voicemail", "Delete the message and its file.", "call_api"
    ),
}  # fmt: skip


def _operations(document: dict[str, Any], segment: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path.removeprefix(PREFIX)): operation
        for path, operations in document["paths"].items()
        if f"/{segment}/" in path
        for method, operation in operations.items()
    }


@pytest.mark.parametrize(
    ("segment", "schema"), [("record", "RecordOut"), ("voicemail", "VoicemailOut")]
)
def test_artefact_routes_publish_what_written_out_routes_did(
    app: FastAPI, segment: str, schema: str
) -> None:
    published = _operations(build_openapi(app), segment)
    item = {"$ref": f"#/components/schemas/{schema}"}
    expected = {key: value for key, value in ARTEFACT_ROUTES.items() if f"/{segment}/" in key[1]}
    assert published.keys() == expected.keys()
    for (method, path), (name, doc, operation_class) in expected.items():
        operation = published[(method, path)]
        assert operation["operationId"].startswith(f"{name}_api_ver1_0_"), operation
        assert operation["summary"] == name.replace("_", " ").title()
        assert operation["description"] == doc
        assert operation["x-callgate-operation"] == operation_class
        answer = operation["responses"]["204" if method == "delete" else "200"]
        if path.endswith("/"):
            assert answer["content"]["application/json"]["schema"]["items"] == item
            continue
        if path.endswith("/info"):
            assert answer["content"]["application/json"]["schema"] == item
        key = path.rsplit("{", 1)[1].split("}")[0]
        (parameter,) = [p for p in operation["parameters"] if p["name"] == key]
        assert parameter["schema"]["maxLength"] == 64
        if method == "get" and not path.endswith("/info"):
            assert list(answer["content"]) == ["audio/wav"]
