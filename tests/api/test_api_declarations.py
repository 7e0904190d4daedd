"""Every /api/ver1.0 route declares its operation class once; the app refuses to start without
it, and the OpenAPI document publishes it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter

from callgate.api import router as api_router
from callgate.composition import create_app
from callgate.config import Settings
from callgate.policy.http import PolicyRoute
from callgate.policy.operations import Operation, UndeclaredOperation, declare

OPERATIONS = {
    ("get", "/api/ver1.0/user"): "read",
    ("get", "/api/ver1.0/client/{client_id}/"): "read",
    ("put", "/api/ver1.0/client/{client_id}/"): "config",
    ("get", "/api/ver1.0/extension/{extension_id}/event/"): "read",
    ("post", "/api/ver1.0/extension/{extension_id}/event/"): "call_api",
    ("get", "/api/ver1.0/extension/{extension_id}/event/{event_id}"): "read",
    ("put", "/api/ver1.0/extension/{extension_id}/event/{event_id}"): "call_api",
    ("delete", "/api/ver1.0/extension/{extension_id}/event/{event_id}"): "call_api",
}


def _endpoint() -> dict[str, str]:
    return {}


def _undeclared() -> APIRouter:
    router = APIRouter(route_class=PolicyRoute)
    router.add_api_route("/client/{client_id}/secret_thing/", _endpoint, methods=["POST"])
    return router


def _plain() -> APIRouter:
    router = APIRouter()  # not a PolicyRoute: nothing would guard it
    router.add_api_route("/client/{client_id}/other/", _endpoint, methods=["GET"])
    return router


def _contradicting() -> APIRouter:
    router = APIRouter(route_class=PolicyRoute)
    router.add_api_route(
        "/client/{client_id}/x/", _endpoint, methods=["POST"], openapi_extra=declare(Operation.READ)
    )
    return router


@pytest.mark.parametrize("extra", [_undeclared, _plain, _contradicting])
def test_create_app_refuses_a_route_without_a_valid_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: object
) -> None:
    settings = Settings(data_dir=tmp_path)
    create_app(settings)  # the real routes are all declared
    assert callable(extra)
    monkeypatch.setattr(api_router, "FEATURE_ROUTERS", (*api_router.FEATURE_ROUTERS, extra()))
    with pytest.raises(UndeclaredOperation):
        create_app(settings)


def test_openapi_document_publishes_each_class(http: httpx.Client) -> None:
    response = http.get("/api/ver1.0/openapi.json")  # public: no token
    assert response.status_code == 200
    document = response.json()
    found = {
        (method, path): operation["x-callgate-operation"]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    assert found.items() >= OPERATIONS.items()
    assert set(found.values()) <= {"read", "call_api", "config"}
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert document["security"] == [{"bearerAuth": []}, {"appCredentials": []}]
    assert all(path.startswith("/api/ver1.0/") for path in document["paths"])
