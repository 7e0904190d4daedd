"""The client's users through the API: create, list, read, change, delete; passwords are
write-only, blocking and new passwords revoke tokens, nobody blocks or deletes themselves."""

from __future__ import annotations

import httpx
import pytest

from callgate.identity.models import User
from callgate.services import Services
from tests.api.conftest import ActAs
from tests.api.helpers import Api, assert_error
from tests.config_api.helpers import NASTY, count_rows, row
from tests.support.factories import World

PASSWORD = "a long enough secret"


def users_path(world: World) -> str:
    return f"/client/{world.client.id}/user/"


def test_user_lifecycle(services: Services, world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    created = api.post(
        users_path(world),
        json={"login": "operator1", "password": PASSWORD, "extension_id": world.ext102.id},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert "password" not in created.text and PASSWORD not in created.text
    assert body["login"] == "operator1" and body["extension_id"] == world.ext102.id
    assert (body["access"], body["status"], body["admin"]) == ("full", "active", False)
    assert body["client_id"] == world.client.id
    stored = row(services, User, body["id"])
    assert stored.level == "extension" and stored.password_hash.startswith("$argon2")

    path = f"{users_path(world)}{body['id']}"
    assert api.get(path).json() == body
    listed = api.get(users_path(world), params={"per_page": 500})
    # The world's manager, reader and extension owner, plus the new one; never an admin.
    assert listed.headers["x-total-count"] == "4"
    assert body["id"] in [user["id"] for user in listed.json()]
    assert world.admin.id not in [user["id"] for user in listed.json()]

    changed = api.put(
        path, json={"access": "read_only", "extension_id": None, "timezone": "Europe/Berlin"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["extension_id"] is None and changed.json()["access"] == "read_only"
    assert row(services, User, body["id"]).level == "client"

    assert api.delete(path).status_code == 204
    assert_error(api.get(path), 404, "not_found")
    assert_error(api.delete(path), 404, "not_found")


def test_new_password_and_blocking_revoke_the_users_tokens(
    services: Services, world: World, act_as: ActAs, http: httpx.Client
) -> None:
    manager = act_as(world.manager, "all")
    owner = act_as(world.ext_user)
    assert owner.get("/user").status_code == 200
    path = f"{users_path(world)}{world.ext_user.id}"
    assert manager.put(path, json={"password": "another long secret"}).status_code == 200
    assert_error(owner.get("/user"), 401, "invalid_token")
    assert services.authenticator.authenticate(
        world.ext_user.login, "another long secret", "127.0.0.1"
    )

    owner = act_as(world.ext_user)
    assert manager.put(path, json={"status": "blocked"}).json()["status"] == "blocked"
    assert owner.get("/user").status_code in (401, 403)


def test_nobody_blocks_or_deletes_themselves(world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    path = f"{users_path(world)}{world.manager.id}"
    assert (
        "status"
        in assert_error(api.put(path, json={"status": "blocked"}), 422, "invalid_input")["fields"]
    )
    assert_error(api.delete(path), 403, "permission_denied")
    assert api.get(path).json()["status"] == "active"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"login": "x y", "password": PASSWORD}, "login"),
        ({"login": "", "password": PASSWORD}, "login"),
        ({"login": "shortpw", "password": "short"}, "password"),
        ({"login": "nopw"}, "password"),
        ({"login": "badaccess", "password": PASSWORD, "access": "root"}, "access"),
        ({"login": "badstatus", "password": PASSWORD, "status": "gone"}, "status"),
        ({"login": "badtz", "password": PASSWORD, "timezone": "Mars/Olympus"}, "timezone"),
        ({"login": "badtz2", "password": PASSWORD, "timezone": "../../etc/passwd"}, "timezone"),
        ({"login": "noext", "password": PASSWORD, "extension_id": 987654}, "extension_id"),
        ({"login": "wrongtype", "password": PASSWORD, "extension_id": "x"}, "extension_id"),
        ({"login": "extra", "password": PASSWORD, "level": "admin"}, "level"),
        ({"login": "admin2", "password": PASSWORD, "admin": True}, "admin"),
    ],
)
def test_invalid_users_are_refused_and_nothing_is_written(
    services: Services, world: World, act_as: ActAs, body: dict[str, object], field: str
) -> None:
    api = act_as(world.manager, "all")
    before = count_rows(services, User)
    refused = assert_error(api.post(users_path(world), json=body), 422, "invalid_input")
    assert field in refused["fields"], refused
    assert count_rows(services, User) == before


def test_another_clients_extension_and_users_are_out_of_reach(
    services: Services, world: World, act_as: ActAs
) -> None:
    api = act_as(world.manager, "all")
    before = count_rows(services, User)
    refused = api.post(
        users_path(world),
        json={"login": "spy", "password": PASSWORD, "extension_id": world.other_ext.id},
    )
    assert "extension_id" in assert_error(refused, 422, "invalid_input")["fields"]
    assert count_rows(services, User) == before
    # Another client's user under our client is not found; the other client is refused.
    assert_error(api.get(f"{users_path(world)}{world.other_manager.id}"), 404, "not_found")
    assert_error(api.delete(f"{users_path(world)}{world.other_manager.id}"), 404, "not_found")
    assert_error(api.get(f"/client/{world.other_client.id}/user/"), 403, "access_denied")
    assert_error(
        api.post(
            f"/client/{world.other_client.id}/user/", json={"login": "x", "password": PASSWORD}
        ),
        403,
        "access_denied",
    )
    # An admin is nobody's client user.
    assert_error(api.get(f"{users_path(world)}{world.admin.id}"), 404, "not_found")


def test_duplicate_login_is_a_conflict(services: Services, world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    before = count_rows(services, User)
    taken = api.post(
        users_path(world), json={"login": world.other_manager.login, "password": PASSWORD}
    )
    assert_error(taken, 409, "conflict")
    rename = api.put(f"{users_path(world)}{world.reader.id}", json={"login": world.admin.login})
    assert_error(rename, 409, "conflict")
    assert count_rows(services, User) == before


def test_admin_manages_any_clients_users(world: World, act_as: ActAs) -> None:
    api = act_as(world.admin, "all")
    created = api.post(
        f"/client/{world.other_client.id}/user/", json={"login": "other2", "password": PASSWORD}
    )
    assert created.status_code == 201 and created.json()["client_id"] == world.other_client.id


def test_metacharacters_in_a_login_are_refused_cleanly_and_in_a_timezone_too(
    world: World, act_as: ActAs
) -> None:
    api: Api = act_as(world.manager, "all")
    refused = api.post(users_path(world), json={"login": NASTY, "password": PASSWORD})
    assert "login" in assert_error(refused, 422, "invalid_input")["fields"]
    # A password is anything: metacharacters in it are fine and never echoed.
    created = api.post(users_path(world), json={"login": "nasty.pw", "password": NASTY})
    assert created.status_code == 201 and NASTY not in created.text
