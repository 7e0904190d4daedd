"""No token, refresh token, code, app secret or password is stored or logged in clear."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy import select

from callgate.common.security import hash_secret
from callgate.models import Base
from callgate.services import Services
from tests.conftest import LiveServer
from tests.oauth.helpers import (
    code_flow_tokens,
    introspect,
    make_app,
    password_token,
    refresh,
    token_request,
)
from tests.support.factories import PASSWORD, World

# Client-side libraries of the test process log what they send and receive (httpcore logs the
# Location header with the code); only the server's own logging is under test.
CLIENT_LOGGERS = ("httpx", "httpcore")


def _dump_every_table(services: Services) -> str:
    parts: list[str] = []
    with services.database.read() as session:
        for table in Base.metadata.sorted_tables:
            rows = session.execute(select(table)).all()
            parts.append(f"{table.name}: " + " | ".join(repr(tuple(row)) for row in rows))
    return "\n".join(parts)


def test_no_secret_value_is_stored_or_logged(
    live_server: LiveServer,
    services: Services,
    world: World,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    trusted = make_app(services, world, "trusted")
    password_app = make_app(services, world, "password_credentials")
    public = make_app(services, world, "public")
    secrets = [trusted.client_secret, password_app.client_secret, public.client_secret, PASSWORD]

    client_token = token_request(live_server.url, trusted, grant_type="client_credentials").json()
    by_password = password_token(live_server.url, password_app, world.manager)
    refreshed = refresh(live_server.url, password_app, by_password["refresh_token"]).json()
    by_code = code_flow_tokens(live_server.url, public, world.ext_user)
    code_refreshed = refresh(live_server.url, public, by_code["refresh_token"]).json()
    introspect(live_server.url, public, code_refreshed["access_token"])
    httpx.post(
        f"{live_server.url}/oauth/revoke",
        data={"token": code_refreshed["refresh_token"]},
        auth=(public.client_id, public.client_secret),
    )
    token_request(
        live_server.url,
        password_app,
        grant_type="password",
        username=world.manager.login,
        password="wrong " + PASSWORD,
    )
    secrets.append("wrong " + PASSWORD)
    regenerated = services.apps.regenerate_secret(world.manager, trusted.client_id)
    secrets.append(regenerated.app_secret)
    for body in (client_token, by_password, refreshed, by_code, code_refreshed):
        secrets.extend(v for k, v in body.items() if k in ("access_token", "refresh_token"))
    secrets.append(by_code["_code"])
    assert len(set(secrets)) == len(secrets) == 16

    dump = _dump_every_table(services)
    # The dump is real: the hashes of what was issued are in it.
    assert hash_secret(client_token["access_token"]) in dump
    assert hash_secret(by_code["_code"]) in dump
    assert [s for s in secrets if s in dump] == []

    server_logs = "\n".join(
        record.getMessage() + (record.exc_text or "")
        for record in caplog.records
        if not record.name.startswith(CLIENT_LOGGERS)
    )
    # The capture is real: the audit log lines of the flows above are in it.
    for kind in ("token_issued", "token_refreshed", "consent_given", "token_revoked"):
        assert f"audit {kind}" in server_logs
    assert [s for s in secrets if s in server_logs] == []
