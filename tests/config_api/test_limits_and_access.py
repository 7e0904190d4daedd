"""``/client/{id}/limit/`` (read by the client, changed by admins only) and the access rules of
every configuration write: refused to Call API apps, read-only users and other clients, with
nothing written."""

from __future__ import annotations

from typing import Any

import pytest

from callgate.identity.models import Client
from callgate.routing.service import TrunkSpec
from callgate.services import Services
from tests.api.conftest import ActAs
from tests.api.helpers import assert_error
from tests.config_api.helpers import row, snapshot
from tests.support.factories import World


def test_limits_show_own_and_effective_values(
    services: Services, world: World, act_as: ActAs
) -> None:
    api = act_as(world.manager)
    limits = api.get(f"/client/{world.client.id}/limit/").json()
    defaults = services.settings
    assert limits == {
        "client_id": world.client.id,
        "rate_limit_per_hour": None,
        "max_extensions": None,
        "max_concurrent_calls": None,
        "storage_quota_mb": None,
        "effective": {
            "rate_limit_per_hour": defaults.rate_limit_per_hour,
            "max_extensions": defaults.max_extensions,
            "max_concurrent_calls": defaults.max_concurrent_calls,
            "storage_quota_mb": defaults.storage_quota_mb,
        },
        "usage": {"extensions": 2},
    }


def test_an_admin_changes_limits(services: Services, world: World, act_as: ActAs) -> None:
    admin = act_as(world.admin, "all")
    path = f"/client/{world.client.id}/limit/"
    changed = admin.put(path, json={"max_extensions": 5, "storage_quota_mb": 100})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["max_extensions"], body["effective"]["max_extensions"]) == (5, 5)
    assert body["rate_limit_per_hour"] is None
    restored = admin.put(path, json={"max_extensions": None}).json()
    assert restored["max_extensions"] is None and restored["storage_quota_mb"] == 100
    assert restored["effective"]["max_extensions"] == services.settings.max_extensions
    # The new hourly quota takes effect on the next request.
    admin.put(path, json={"rate_limit_per_hour": 1234})
    assert act_as(world.manager).get("/user").headers["x-ratelimit-limit"] == "1234"


def test_only_an_admin_changes_limits(services: Services, world: World, act_as: ActAs) -> None:
    path = f"/client/{world.client.id}/limit/"
    refused = act_as(world.manager, "all").put(path, json={"max_extensions": 100000})
    assert_error(refused, 403, "permission_denied")
    assert row(services, Client, world.client.id).max_extensions is None
    assert_error(
        act_as(world.manager).put(path, json={"max_extensions": 1}), 403, "app_access_type_deny"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"max_extensions": 0},
        {"storage_quota_mb": -1},
        {"rate_limit_per_hour": "lots"},
        {"calls": 1},
    ],
)
def test_invalid_limits_change_nothing(
    services: Services, world: World, act_as: ActAs, body: dict[str, Any]
) -> None:
    admin = act_as(world.admin, "all")
    assert_error(admin.put(f"/client/{world.client.id}/limit/", json=body), 422, "invalid_input")
    stored = row(services, Client, world.client.id)
    assert (stored.max_extensions, stored.storage_quota_mb, stored.rate_limit_per_hour) == (
        None,
        None,
        None,
    )


def _writes(services: Services, world: World) -> list[tuple[str, str, dict[str, Any]]]:
    """Every configuration write of this area, with a body that would otherwise succeed."""
    client = f"/client/{world.client.id}"
    ext = f"/extension/{world.ext102.id}"
    did = services.routing.create_did(world.client.id, "5550001", None)
    trunk = services.routing.create_trunk(world.client.id, TrunkSpec("T0", "sip.example.com"))
    return [
        ("PUT", f"{client}/did/{did.id}", {"extension_id": world.ext101.id}),
        ("DELETE", f"{client}/did/{did.id}", {}),
        ("PUT", f"{client}/trunk/{trunk.id}", {"port": 5070}),
        ("DELETE", f"{client}/trunk/{trunk.id}", {}),
        ("PUT", f"{client}/", {"name": "Renamed"}),
        ("POST", f"{client}/user/", {"login": "newbie", "password": "long enough pw"}),
        ("PUT", f"{client}/user/{world.reader.id}", {"access": "full"}),
        ("DELETE", f"{client}/user/{world.reader.id}", {}),
        ("POST", f"{client}/extension/", {"name": "777"}),
        ("PUT", f"{ext}/", {"label": "changed"}),
        ("DELETE", f"{ext}/", {}),
        ("PUT", f"{ext}/phone/", {"password": "long enough pw"}),
        ("PUT", f"{ext}/incom_rule/", {"action": "voicemail"}),
        ("POST", f"{client}/did/", {"number": "12345"}),
        ("POST", f"{client}/trunk/", {"name": "T", "host": "sip.example.com"}),
        ("PUT", f"{client}/limit/", {"max_extensions": 3}),
    ]


@pytest.mark.parametrize(
    ("who", "level", "status"),
    [
        ("manager", "call_api", "app_access_type_deny"),
        ("reader", "all", "user_access_type_deny"),
        ("other_manager", "all", "access_denied"),
    ],
)
def test_configuration_writes_are_refused_and_write_nothing(
    services: Services, world: World, act_as: ActAs, who: str, level: str, status: str
) -> None:
    api = act_as(getattr(world, who), level)
    writes = _writes(services, world)
    before = snapshot(services)
    for method, path, body in writes:
        kwargs: dict[str, Any] = {"json": body} if method != "DELETE" else {}
        assert_error(api.request(method, path, **kwargs), 403, status)
    assert snapshot(services) == before
    assert row(services, Client, world.client.id).name == world.client.name
    assert services.routing.list_trunks(world.client.id, 1, 10).items[0].port == 5060


def test_nested_objects_of_other_clients_are_not_found(
    services: Services, world: World, act_as: ActAs
) -> None:
    admin = act_as(world.admin, "all")
    other = f"/client/{world.other_client.id}"
    did = admin.post(f"{other}/did/", json={"number": "999001"}).json()
    trunk = admin.post(f"{other}/trunk/", json={"name": "T", "host": "sip.example.com"}).json()
    api = act_as(world.manager, "all")
    before = snapshot(services)
    ours = f"/client/{world.client.id}"
    for path in (
        f"{ours}/did/{did['id']}",
        f"{ours}/trunk/{trunk['id']}",
        f"{ours}/user/{world.other_manager.id}",
    ):
        assert_error(api.get(path), 404, "not_found")
        assert_error(api.put(path, json={}), 404, "not_found")
        assert_error(api.delete(path), 404, "not_found")
    assert snapshot(services) == before


def test_reads_are_allowed_to_call_api_apps(world: World, act_as: ActAs) -> None:
    api = act_as(world.manager)
    client = f"/client/{world.client.id}"
    ext = f"/extension/{world.ext101.id}"
    for path in (
        f"{client}/user/",
        f"{client}/extension/",
        f"{ext}/",
        f"{ext}/phone/",
        f"{ext}/incom_rule/",
        f"{client}/did/",
        f"{client}/trunk/",
        f"{client}/limit/",
    ):
        assert api.get(path).status_code == 200, path


def test_an_extension_owner_reaches_its_extension_only(world: World, act_as: ActAs) -> None:
    owner = act_as(world.ext_user, "all")
    assert owner.get("/extension/@me/").json()["id"] == world.ext101.id
    assert owner.put("/extension/@me/incom_rule/", json={"action": "voicemail"}).status_code == 200
    assert_error(owner.get(f"/extension/{world.ext102.id}/phone/"), 403, "access_denied")
    assert_error(owner.get(f"/client/{world.client.id}/limit/"), 403, "access_denied")
    assert_error(
        owner.post(f"/client/{world.client.id}/did/", json={"number": "1234"}), 403, "access_denied"
    )
