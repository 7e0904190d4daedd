"""``callgate demo``: the demo data set, created once, idempotent afterwards."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from callgate.common.security import verify_password
from callgate.identity.models import Client, Extension, User
from callgate.identity.repository import IdentityRepository
from callgate.services import Services
from tests.cli.conftest import CallgateRunner


def _counts(services: Services) -> tuple[int, int, int]:
    with services.database.read() as session:
        return tuple(  # type: ignore[return-value]
            int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Client, Extension, User)
        )


def test_demo_creates_the_data_set_once(callgate: CallgateRunner, services: Services) -> None:
    first = callgate("demo", "--json")
    assert first.code == 0, first.err
    data = first.json()
    assert data["admin"]["login"] == "admin" and data["admin"]["admin"] is True
    assert data["admin"]["created"] is True
    admin_password = data["admin"]["password"]
    assert admin_password and len(admin_password) >= 12
    assert (data["client"]["name"], data["client"]["prefix"]) == ("Demo", "00012")
    assert [e["name"] for e in data["extensions"]] == ["101", "102"]
    assert {e["type"] for e in data["extensions"]} == {"phone"}
    assert [a["user"] for a in data["sip_accounts"]] == ["00012*101", "00012*102"]
    assert data["user"]["login"] == "demo"
    assert data["user"]["client_id"] == data["client"]["id"]
    with services.database.read() as session:
        admin = IdentityRepository(session).user_by_login("admin")
        demo_user = IdentityRepository(session).user_by_login("demo")
    assert admin is not None and verify_password(admin_password, admin.password_hash)
    assert demo_user is not None and verify_password(
        data["user"]["password"], demo_user.password_hash
    )
    assert _counts(services) == (1, 2, 2)

    second = callgate("demo", "--json")
    assert second.code == 0, second.err
    again = second.json()
    assert again["admin"]["created"] is False
    assert again["admin"]["password"] is None  # never printed twice
    assert again["client"]["id"] == data["client"]["id"]
    assert [e["id"] for e in again["extensions"]] == [e["id"] for e in data["extensions"]]
    assert _counts(services) == (1, 2, 2)

    human = callgate("demo")
    assert human.code == 0
    assert "admin login:     admin" in human.out
    assert "00012*101" in human.out
    assert admin_password not in human.out


def test_demo_completes_a_partial_data_set_with_given_passwords(
    callgate: CallgateRunner, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = services.identity.create_client("Demo", "00012")
    services.identity.create_extension(client.id, "101")
    monkeypatch.setenv("CALLGATE_DEMO_ADMIN_PASSWORD", "admin-password-1")
    monkeypatch.setenv("CALLGATE_DEMO_USER_PASSWORD", "user-password-1")

    run = callgate("demo", "--json")

    assert run.code == 0, run.err
    data = run.json()
    assert data["client"] == {**data["client"], "id": client.id, "created": False}
    assert [e["created"] for e in data["extensions"]] == [False, True]
    assert data["admin"]["password"] == "admin-password-1"
    assert data["user"]["password"] == "user-password-1"
    assert _counts(services) == (1, 2, 2)


def test_demo_is_refused_in_production_mode(
    callgate: CallgateRunner, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLGATE_MODE", "production")
    monkeypatch.setenv("CALLGATE_SECRET_KEY", "x" * 40)
    monkeypatch.setenv("CALLGATE_PUBLIC_URL", "https://pbx.example")
    run = callgate("demo")
    assert run.code == 1
    assert "development mode" in run.err
    assert _counts(services) == (0, 0, 0)
