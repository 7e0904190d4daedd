"""``callgate app ...``: who acts, what is refused, and that only the secret's hash is stored."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from callgate.apps.models import Application
from callgate.apps.repository import ApplicationRepository
from callgate.audit.models import AuditEvent
from callgate.common.security import hash_secret
from callgate.services import Services
from tests.cli.conftest import CallgateRunner
from tests.support.factories import World

APP_ID = re.compile(r"^[0-9a-f]{32}$")


def _stored(services: Services, app_id: str) -> Application:
    with services.database.read() as session:
        application = ApplicationRepository(session).by_app_id(app_id)
    assert application is not None
    return application


def _count(services: Services) -> int:
    with services.database.read() as session:
        return int(session.scalar(select(func.count()).select_from(Application)) or 0)


def test_app_create_prints_id_and_secret_and_stores_only_the_hash(
    callgate: CallgateRunner, services: Services, world: World
) -> None:
    run = callgate(
        "app", "create", "--owner", world.manager.login, "--name", "CRM", "--type", "trusted",
        "--json",
    )  # fmt: skip
    assert run.code == 0, run.err
    created = run.json()
    assert APP_ID.match(created["app_id"])
    secret = created["app_secret"]
    assert len(secret) >= 43  # 32 random bytes, URL-safe base64
    assert (created["type"], created["access_level"]) == ("trusted", "call_api")
    assert created["owner"] == world.manager.login

    stored = _stored(services, created["app_id"])
    assert stored.id == created["id"]
    assert stored.owner_id == world.manager.id
    assert stored.secret_hash == hash_secret(secret)
    row = {c.key: getattr(stored, c.key) for c in Application.__mapper__.column_attrs}
    assert all(secret not in str(value) for value in row.values())


def test_app_create_human_output_shows_the_secret_once(
    callgate: CallgateRunner, world: World
) -> None:
    run = callgate(
        "app", "create", "--owner", world.manager.login, "--name", "Widget", "--type", "public",
        "--redirect-uri", "https://crm.example/cb", "--redirect-uri", "http://127.0.0.1:9000/cb",
    )  # fmt: skip
    assert run.code == 0, run.err
    app_id = re.search(r"^app_id:\s+(\S+)$", run.out, re.M)
    app_secret = re.search(r"^app_secret:\s+(\S+)$", run.out, re.M)
    assert app_id and APP_ID.match(app_id.group(1))
    assert app_secret and len(app_secret.group(1)) >= 43
    listed = callgate("app", "list", "--owner", world.manager.login, "--json").json()
    assert listed["applications"][0]["redirect_uris"] == [
        "https://crm.example/cb",
        "http://127.0.0.1:9000/cb",
    ]
    assert app_secret.group(1) not in str(listed)


def test_non_admin_owner_cannot_create_password_credentials_or_all(
    callgate: CallgateRunner, services: Services, world: World
) -> None:
    for extra in (["--type", "password_credentials"], ["--type", "trusted", "--level", "all"]):
        run = callgate("app", "create", "--owner", world.manager.login, "--name", "X", *extra)
        assert run.code == 1, extra
        assert "Only an administrator" in run.err
        assert run.out == ""
    assert _count(services) == 0

    admin = callgate(
        "app", "create", "--owner", world.admin.login, "--name", "Ops", "--type",
        "password_credentials", "--level", "all", "--json",
    )  # fmt: skip
    assert admin.code == 0, admin.err
    assert (admin.json()["type"], admin.json()["access_level"]) == ("password_credentials", "all")


def test_set_level_and_type_act_as_the_operator(
    callgate: CallgateRunner, services: Services, world: World
) -> None:
    created = callgate(
        "app", "create", "--owner", world.manager.login, "--name", "CRM", "--type", "trusted",
        "--json",
    )  # fmt: skip
    app_id = created.json()["app_id"]

    level = callgate("app", "set-level", app_id, "all", "--json")
    assert level.code == 0, level.err
    assert level.json()["access_level"] == "all"
    kind = callgate("app", "set-type", app_id, "password_credentials")
    assert kind.code == 0, kind.err
    assert "password_credentials" in kind.out

    stored = _stored(services, app_id)
    assert (stored.access_level, stored.type) == ("all", "password_credentials")
    with services.database.read() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.app_id == app_id).order_by(AuditEvent.id)
        ).all()
    changes = [(e.kind, e.user_id) for e in events if e.kind.endswith("_changed")]
    # the operator is no user of the PBX: its audit rows carry no user id
    assert changes == [("app_level_changed", None), ("app_type_changed", None)]


def test_set_level_as_a_non_admin_is_refused(
    callgate: CallgateRunner, services: Services, world: World
) -> None:
    app_id = callgate(
        "app", "create", "--owner", world.manager.login, "--name", "CRM", "--type", "trusted",
        "--json",
    ).json()["app_id"]  # fmt: skip

    level = callgate("app", "set-level", app_id, "all", "--as", world.manager.login)
    assert level.code == 1
    assert level.err == "callgate: Only an administrator may set the access level All.\n"
    kind = callgate("app", "set-type", app_id, "password_credentials", "--as", world.manager.login)
    assert kind.code == 1
    stranger = callgate("app", "set-level", app_id, "call_api", "--as", world.other_manager.login)
    assert (stranger.code, "There is no application" in stranger.err) == (1, True)
    stored = _stored(services, app_id)
    assert (stored.access_level, stored.type) == ("call_api", "trusted")

    as_admin = callgate("app", "set-level", app_id, "all", "--as", world.admin.login, "--json")
    assert as_admin.code == 0, as_admin.err
    assert _stored(services, app_id).access_level == "all"


def test_a_blocked_user_may_not_act(
    callgate: CallgateRunner, services: Services, world: World
) -> None:
    assert callgate("user", "block", world.admin.login).code == 0
    run = callgate("app", "set-level", "0" * 32, "all", "--as", world.admin.login)
    assert run.code == 1
    assert "blocked" in run.err
    owner = callgate(
        "app", "create", "--owner", world.admin.login, "--name", "X", "--type", "trusted"
    )
    assert owner.code == 1
    assert _count(services) == 0


def test_app_list_json(callgate: CallgateRunner, world: World) -> None:
    assert callgate("app", "list", "--json").json() == {"applications": [], "count": 0}
    for owner, name in ((world.manager, "One"), (world.ext_user, "Two"), (world.manager, "Three")):
        run = callgate("app", "create", "--owner", owner.login, "--name", name, "--type", "trusted")
        assert run.code == 0, run.err

    everything = callgate("app", "list", "--json").json()
    assert everything["count"] == 3
    assert [a["name"] for a in everything["applications"]] == ["One", "Two", "Three"]
    assert all("app_secret" not in a for a in everything["applications"])

    owned = callgate("app", "list", "--owner", world.manager.login, "--json").json()
    assert [a["name"] for a in owned["applications"]] == ["One", "Three"]
    assert {a["owner"] for a in owned["applications"]} == {world.manager.login}

    table = callgate("app", "list")
    assert table.out.splitlines()[0].startswith("APP_ID")
    assert len(table.out.splitlines()) == 4
