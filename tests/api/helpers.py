"""Helpers of the API tests: tokens issued straight into the database, and a small client."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from callgate.apps.models import Application
from callgate.common.clock import utcnow
from callgate.identity.models import Client, User
from callgate.oauth.repository import TokenRepository
from callgate.services import Services
from tests.support.factories import register_app

API = "/api/ver1.0"


def issue_token(services: Services, application: Application, user: User) -> str:
    """An access token as the token endpoint would issue it (the OAuth code is elsewhere)."""
    with services.database.write() as session:
        issued = TokenRepository(session).issue(
            application=application,
            user=user,
            grant_type="client_credentials",
            access_lifetime=services.settings.access_token_lifetime,
            refresh_lifetime=None,
        )
        return issued.access_token


def token_for(
    services: Services, user: User, *, level: str = "call_api", admin: User | None = None
) -> str:
    """A token of a fresh trusted app owned by ``user``; level ``all`` needs ``admin``."""
    registered = register_app(services, user, level=level, actor=admin or user)
    return issue_token(services, registered.application, user)


def expire_token(services: Services, token: str) -> None:
    with services.database.write() as session:
        row = TokenRepository(session).by_access_token(token)
        assert row is not None
        row.access_expires_at = utcnow() - dt.timedelta(seconds=1)


def set_status(services: Services, model: type[User] | type[Client], id_: int, status: str) -> None:
    """Change a status behind the services' back: they would also revoke the tokens."""
    with services.database.write() as session:
        row = session.get(model, id_)
        assert isinstance(row, User | Client)
        row.status = status


def set_rate_limit(services: Services, client_id: int, limit: int | None) -> None:
    with services.database.write() as session:
        client = session.get(Client, client_id)
        assert client is not None
        client.rate_limit_per_hour = limit


class Api:
    """An httpx client on the live server's API, acting with one bearer token."""

    def __init__(self, http: httpx.Client, token: str | None) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.http.request(method, API + path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)


@contextmanager
def http_client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        yield client


def assert_error(response: httpx.Response, code: int, status: str) -> dict[str, Any]:
    assert response.status_code == code, (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    assert body["status"] == status, body
    assert body["message"]
    return body


HANDLER = {"url": "https://crm.example.com/hook", "method": "POST", "event_type": "dial-in"}
