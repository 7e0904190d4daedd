"""The foundation: migrations, services and the live server work on both databases."""

from __future__ import annotations

import httpx
from sqlalchemy import inspect

from callgate.models import Base
from callgate.services import Services
from tests.conftest import LiveServer
from tests.support.factories import World


def test_migrations_create_every_table(services: Services) -> None:
    tables = set(inspect(services.database.engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables


def test_world_is_created(world: World) -> None:
    assert world.ext101.client_id == world.client.id
    assert world.ext_user.level == "extension"
    assert world.admin.is_admin


def test_login_page_has_security_headers(live_server: LiveServer) -> None:
    response = httpx.get(f"{live_server.url}/login")
    assert response.status_code == 200
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
