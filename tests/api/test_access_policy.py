"""The six checks of SPEC §4, each answer and their order, against a live server."""

from __future__ import annotations

import httpx

from callgate.apps.models import Application
from callgate.identity.models import Client, Status, User
from callgate.services import Services
from tests.api.conftest import ActAs
from tests.api.helpers import (
    HANDLER,
    Api,
    assert_error,
    expire_token,
    issue_token,
    set_status,
)
from tests.support.factories import World, register_app

MISSING_ID = 987654


def test_trusted_token_acts_as_the_owner(
    services: Services, world: World, http: httpx.Client
) -> None:
    registered = register_app(services, world.manager, type_="trusted")
    api = Api(http, issue_token(services, registered.application, world.manager))
    response = api.get("/user")
    assert response.status_code == 200
    assert response.json() == {
        "id": world.manager.id,
        "login": world.manager.login,
        "admin": False,
        "access": "full",
        "client_id": world.client.id,
        "extension_id": None,
        "extension_group_id": None,
        "dealer_id": None,
        "timezone": "UTC",
        "extra_params": None,
    }


def test_user_shows_level_and_access(world: World, act_as: ActAs) -> None:
    ext = act_as(world.ext_user).get("/user").json()
    assert (ext["extension_id"], ext["client_id"]) == (world.ext101.id, world.client.id)
    assert act_as(world.reader).get("/user").json()["access"] == "read_only"
    admin = act_as(world.admin).get("/user").json()
    assert admin["admin"] is True and admin["client_id"] is None


def test_call_api_app_may_manage_event_handlers_but_not_configuration(
    world: World, act_as: ActAs
) -> None:
    api = act_as(world.manager, "call_api")
    assert api.get(f"/client/{world.client.id}/").status_code == 200
    assert_error(
        api.put(f"/client/{world.client.id}/", json={"name": "X"}), 403, "app_access_type_deny"
    )
    created = api.post(f"/extension/{world.ext101.id}/event/", json=HANDLER)
    assert created.status_code == 201, created.text
    handler_id = created.json()["id"]
    changed = api.put(
        f"/extension/{world.ext101.id}/event/{handler_id}", json={"event_type": "hangup"}
    )
    assert changed.status_code == 200 and changed.json()["event_type"] == "hangup"
    assert api.delete(f"/extension/{world.ext101.id}/event/{handler_id}").status_code == 204


def test_all_app_of_a_full_user_may_change_configuration(world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    response = api.put(f"/client/{world.client.id}/", json={"name": "  Renamed PBX "})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Renamed PBX"
    client = api.get("/client/@me/").json()
    assert client["name"] == "Renamed PBX"
    assert set(client) == {"id", "name", "prefix", "status", "created"}


def test_read_only_user_is_refused_every_write(world: World, act_as: ActAs) -> None:
    writer = act_as(world.manager, "all")
    handler_id = writer.post(f"/extension/{world.ext101.id}/event/", json=HANDLER).json()["id"]
    api = act_as(world.reader, "all")
    events = f"/extension/{world.ext101.id}/event/"
    for response in (
        api.put(f"/client/{world.client.id}/", json={"name": "X"}),
        api.post(events, json=HANDLER),
        api.put(f"{events}{handler_id}", json={"method": "GET"}),
        api.delete(f"{events}{handler_id}"),
    ):
        assert_error(response, 403, "user_access_type_deny")
    assert api.get(f"{events}{handler_id}").status_code == 200


def test_blocked_user_or_client_is_refused(services: Services, world: World, act_as: ActAs) -> None:
    manager, ext_user = act_as(world.manager), act_as(world.ext_user)
    set_status(services, User, world.manager.id, Status.BLOCKED)
    assert_error(manager.get("/user"), 403, "user_blocked")
    assert ext_user.get("/user").status_code == 200
    set_status(services, User, world.manager.id, Status.ACTIVE)
    set_status(services, Client, world.client.id, Status.BLOCKED)
    assert_error(manager.get("/user"), 403, "user_blocked")
    assert_error(ext_user.get("/extension/@me/event/"), 403, "user_blocked")
    assert act_as(world.other_manager).get("/user").status_code == 200


def test_blocking_through_the_service_revokes_the_tokens(
    services: Services, world: World, act_as: ActAs
) -> None:
    api = act_as(world.manager)
    services.identity.set_user_status(world.manager.id, Status.BLOCKED)
    assert_error(api.get("/user"), 401, "invalid_token")


def test_objects_of_another_client_are_denied(world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    assert_error(api.get(f"/client/{world.other_client.id}/"), 403, "access_denied")
    assert_error(
        api.put(f"/client/{world.other_client.id}/", json={"name": "X"}), 403, "access_denied"
    )
    assert_error(api.get(f"/extension/{world.other_ext.id}/event/"), 403, "access_denied")
    assert_error(
        api.post(f"/extension/{world.other_ext.id}/event/", json=HANDLER), 403, "access_denied"
    )
    # Check 5 precedes 6: a non-admin cannot tell a missing id from someone else's.
    assert_error(api.get(f"/client/{MISSING_ID}/"), 403, "access_denied")
    assert_error(api.get(f"/extension/{MISSING_ID}/event/"), 403, "access_denied")


def test_admin_sees_everything_and_gets_404_for_missing_ids(world: World, act_as: ActAs) -> None:
    api = act_as(world.admin, "all")
    assert api.get(f"/client/{world.other_client.id}/").json()["id"] == world.other_client.id
    assert api.get(f"/extension/{world.other_ext.id}/event/").status_code == 200
    assert_error(api.get(f"/client/{MISSING_ID}/"), 404, "not_found")
    assert_error(api.get(f"/extension/{MISSING_ID}/event/"), 404, "not_found")
    assert_error(api.get("/client/@me/"), 404, "not_found")


def test_extension_user_sees_only_its_extension(world: World, act_as: ActAs) -> None:
    api = act_as(world.ext_user)
    assert api.get("/extension/@me/event/").status_code == 200
    assert api.get(f"/extension/{world.ext101.id}/event/").status_code == 200
    assert_error(api.get(f"/extension/{world.ext102.id}/event/"), 403, "access_denied")
    assert_error(api.get(f"/client/{world.client.id}/"), 403, "access_denied")
    assert_error(api.get("/client/@me/"), 403, "access_denied")


def test_me_and_malformed_ids(world: World, act_as: ActAs) -> None:
    api = act_as(world.manager)
    assert api.get("/client/@me/").json()["id"] == world.client.id
    assert_error(api.get("/extension/@me/event/"), 404, "not_found")  # a manager owns none
    body = assert_error(api.get("/client/abc/"), 422, "invalid_input")
    assert "client_id" in body["fields"]


def test_invalid_tokens_get_401_with_the_challenge(
    services: Services, world: World, http: httpx.Client
) -> None:
    registered = register_app(services, world.manager)
    expired = issue_token(services, registered.application, world.manager)
    expire_token(services, expired)
    revoked = issue_token(services, registered.application, world.manager)
    services.apps.regenerate_secret(world.manager, registered.application.app_id)
    attempts = [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": f"Bearer {expired}"},
        {"Authorization": f"Bearer {revoked}"},
    ]
    for headers in attempts:
        response = http.get("/api/ver1.0/user", headers=headers)
        assert_error(response, 401, "invalid_token")
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert "x-ratelimit-limit" not in response.headers


def test_suspended_app_token_is_invalid(
    services: Services, world: World, http: httpx.Client
) -> None:
    registered = register_app(services, world.manager)
    api = Api(http, issue_token(services, registered.application, world.manager))
    with services.database.write() as session:
        app = session.get(Application, registered.application.id)
        assert app is not None
        app.status = "suspended"  # without the service, which would also revoke the tokens
    assert_error(api.get("/user"), 401, "invalid_token")


def test_lowered_app_level_applies_to_the_next_request(
    services: Services, world: World, http: httpx.Client
) -> None:
    registered = register_app(services, world.manager, level="all", actor=world.admin)
    api = Api(http, issue_token(services, registered.application, world.manager))
    assert api.put(f"/client/{world.client.id}/", json={"name": "A"}).status_code == 200
    services.apps.set_access_level(world.admin, registered.application.app_id, "call_api")
    assert_error(
        api.put(f"/client/{world.client.id}/", json={"name": "B"}), 403, "app_access_type_deny"
    )


def test_checks_run_in_order(
    services: Services, world: World, act_as: ActAs, http: httpx.Client
) -> None:
    client_path = f"/client/{world.client.id}/"
    # 3 before 4: a read-only user through a Call API app.
    reader = act_as(world.reader, "call_api")
    assert_error(reader.put(client_path, json={"name": "X"}), 403, "user_access_type_deny")
    # 4 before 5: a Call API app writing configuration of another client.
    manager = act_as(world.manager, "call_api")
    other = f"/client/{world.other_client.id}/"
    assert_error(manager.put(other, json={"name": "X"}), 403, "app_access_type_deny")
    # 1 before everything, even before the body is looked at.
    anonymous = Api(http, None)
    response = anonymous.put(
        client_path, content=b"not json", headers={"Content-Type": "text/plain"}
    )
    assert_error(response, 401, "invalid_token")
    # 2 before 3.
    set_status(services, User, world.reader.id, Status.BLOCKED)
    assert_error(reader.put(client_path, json={"name": "X"}), 403, "user_blocked")
    # 5 before the body: 403, not 415 or 422.
    response = manager.post(f"/extension/{world.other_ext.id}/event/", content=b"x")
    assert_error(response, 403, "access_denied")
