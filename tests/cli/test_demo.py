"""``callgate demo``: the demo data set, created once, idempotent afterwards."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from callgate.common.security import verify_password
from callgate.identity.models import Client, Extension, User
from callgate.identity.repository import IdentityRepository
from callgate.phones.repository import PhoneRepository
from callgate.phones.service import digest_ha1
from callgate.services import Services
from tests.cli.conftest import CallgateRunner


def _counts(services: Services) -> tuple[int, int, int]:
    with services.database.read() as session:
        return tuple(  # type: ignore[return-value]
            int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Client, Extension, User)
        )


def _ha1_matches(services: Services, extension_id: int, user: str, password: str) -> bool:
    with services.database.read() as session:
        row = PhoneRepository(session).settings(extension_id)
    realm = services.settings.sip_realm
    return row is not None and row.ha1_md5 == digest_ha1(user, realm, password, "MD5")


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
    assert data["sip"] == "udp+tcp 127.0.0.1:5060"
    sip_passwords = [a["password"] for a in data["sip_accounts"]]
    assert all(len(p) >= 12 for p in sip_passwords) and len(set(sip_passwords)) == 2
    assert data["sip_accounts"][0]["baresip_account"] == (
        f"<sip:00012*101@127.0.0.1:5060>;auth_pass={sip_passwords[0]};answermode=auto;"
        "regint=300;audio_codecs=pcmu"
    )
    for ext in data["extensions"]:
        assert services.phones.get_phone(ext["id"]).password_set
    assert _ha1_matches(services, data["extensions"][1]["id"], "00012*102", sip_passwords[1])
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
    assert [(a["password"], a["baresip_account"]) for a in again["sip_accounts"]] == [
        (None, None),
        (None, None),
    ]
    assert _ha1_matches(services, data["extensions"][1]["id"], "00012*102", sip_passwords[1])
    assert again["client"]["id"] == data["client"]["id"]
    assert [e["id"] for e in again["extensions"]] == [e["id"] for e in data["extensions"]]
    assert _counts(services) == (1, 2, 2)

    human = callgate("demo")
    assert human.code == 0
    assert "admin login:     admin" in human.out
    assert "00012*101" in human.out
    assert admin_password not in human.out
    assert sip_passwords[0] not in human.out


def test_demo_completes_a_partial_data_set_with_given_passwords(
    callgate: CallgateRunner, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = services.identity.create_client("Demo", "00012")
    services.identity.create_extension(client.id, "101")
    monkeypatch.setenv("CALLGATE_DEMO_ADMIN_PASSWORD", "admin-password-1")
    monkeypatch.setenv("CALLGATE_DEMO_USER_PASSWORD", "user-password-1")
    monkeypatch.setenv("CALLGATE_DEMO_SIP_PASSWORD", "sip-password-1")
    monkeypatch.setenv("CALLGATE_SIP_HOST", "0.0.0.0")  # noqa: S104 - never bound here
    monkeypatch.setenv("CALLGATE_SIP_PORT", "5070")

    run = callgate("demo", "--json")

    assert run.code == 0, run.err
    data = run.json()
    assert data["client"] == {**data["client"], "id": client.id, "created": False}
    assert [e["created"] for e in data["extensions"]] == [False, True]
    assert data["admin"]["password"] == "admin-password-1"
    assert data["user"]["password"] == "user-password-1"
    assert [a["password"] for a in data["sip_accounts"]] == ["sip-password-1"] * 2
    # a wildcard listen address is not where a phone registers
    assert data["sip_accounts"][1]["baresip_account"].startswith("<sip:00012*102@127.0.0.1:5070>;")
    assert _ha1_matches(services, data["extensions"][0]["id"], "00012*101", "sip-password-1")
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
