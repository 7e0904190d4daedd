"""DIDs and SIP trunks through the API: CRUD, global uniqueness of numbers, validation that
names the field and writes nothing, write-only trunk passwords, other clients' objects."""

from __future__ import annotations

from typing import Any

import pytest

from callgate.routing.models import Did, Trunk
from callgate.routing.service import host_problem
from callgate.services import Services
from tests.api.conftest import ActAs
from tests.api.helpers import assert_error
from tests.config_api.helpers import NASTY, count_rows, fields_named, row, snapshot
from tests.support.factories import World

TRUNK = {"name": "Provider", "host": "sip.provider.example", "username": "acct", "password": "pw-1"}


def dids(world: World) -> str:
    return f"/client/{world.client.id}/did/"


def trunks(world: World) -> str:
    return f"/client/{world.client.id}/trunk/"


def test_did_lifecycle(services: Services, world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    created = api.post(dids(world), json={"number": "+4930123456", "extension_id": world.ext101.id})
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["number"], body["name"], body["extension_id"]) == (
        "+4930123456",
        "+4930123456",
        world.ext101.id,
    )
    path = f"{dids(world)}{body['id']}"
    assert api.get(path).json() == body
    assert api.get(dids(world)).headers["x-total-count"] == "1"
    moved = api.put(path, json={"extension_id": world.ext102.id}).json()
    assert moved["extension_id"] == world.ext102.id and moved["number"] == "+4930123456"
    unrouted = api.put(path, json={"extension_id": None}).json()
    assert unrouted["extension_id"] is None
    renumbered = api.put(path, json={"name": "4930999"}).json()
    assert renumbered["number"] == "4930999"
    assert api.delete(path).status_code == 204
    assert_error(api.get(path), 404, "not_found")
    assert count_rows(services, Did) == 0


def test_did_numbers_are_unique_across_clients(
    services: Services, world: World, act_as: ActAs
) -> None:
    ours = act_as(world.manager, "all")
    theirs = act_as(world.other_manager, "all")
    first = ours.post(dids(world), json={"number": "74951234567"})
    assert first.status_code == 201
    taken = theirs.post(f"/client/{world.other_client.id}/did/", json={"number": "74951234567"})
    assert_error(taken, 409, "conflict")
    second = ours.post(dids(world), json={"number": "74951234568"}).json()
    assert_error(
        ours.put(f"{dids(world)}{second['id']}", json={"number": "74951234567"}), 409, "conflict"
    )
    assert count_rows(services, Did) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"number": "12-34"}, "number"),
        ({"number": "+"}, "number"),
        ({"number": "1 234"}, "number"),
        ({"number": "'; DROP TABLE dids; --"}, "number"),
        ({"number": "1" * 33}, "number"),
        ({}, "number"),
        ({"number": "12345", "extension_id": 987654}, "extension_id"),
        ({"number": "12345", "routing": "x"}, "routing"),
    ],
)
def test_invalid_dids_write_nothing(
    services: Services, world: World, act_as: ActAs, body: dict[str, Any], field: str
) -> None:
    refused = act_as(world.manager, "all").post(dids(world), json=body)
    assert field in fields_named(assert_error(refused, 422, "invalid_input")), refused.json()
    assert count_rows(services, Did) == 0


def test_dids_of_another_client(services: Services, world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    other_ext = api.post(dids(world), json={"number": "55501", "extension_id": world.other_ext.id})
    assert "extension_id" in assert_error(other_ext, 422, "invalid_input")["fields"]
    admin = act_as(world.admin, "all")
    theirs = admin.post(f"/client/{world.other_client.id}/did/", json={"number": "55502"}).json()
    # Their DID under our client: not found; their client: refused.
    assert_error(api.get(f"{dids(world)}{theirs['id']}"), 404, "not_found")
    assert_error(
        api.put(f"{dids(world)}{theirs['id']}", json={"extension_id": world.ext101.id}),
        404,
        "not_found",
    )
    assert_error(api.delete(f"{dids(world)}{theirs['id']}"), 404, "not_found")
    assert_error(
        api.get(f"/client/{world.other_client.id}/did/{theirs['id']}"), 403, "access_denied"
    )
    assert row(services, Did, theirs["id"]).extension_id is None


def test_trunk_lifecycle(services: Services, world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    created = api.post(trunks(world), json={**TRUNK, "register": True, "transport": "tcp"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert "pw-1" not in created.text and "password" not in body
    assert body["password_set"] is True and body["register"] is True
    assert (body["host"], body["port"], body["transport"], body["priority"]) == (
        "sip.provider.example",
        5060,
        "tcp",
        10,
    )
    assert row(services, Trunk, body["id"]).password == "pw-1"
    path = f"{trunks(world)}{body['id']}"
    assert api.get(path).json() == body
    backup = api.post(trunks(world), json={"name": "Backup", "host": "192.0.2.10", "priority": 5})
    assert [t["name"] for t in api.get(trunks(world)).json()] == ["Backup", "Provider"]

    changed = api.put(path, json={"port": 5080, "caller_id_number": "+4930123456"}).json()
    assert (changed["port"], changed["caller_id_number"], changed["password_set"]) == (
        5080,
        "+4930123456",
        True,
    )
    # The password cannot go while the trunk registers; with registration off it can.
    refused = api.put(path, json={"password": None})
    assert "register" in assert_error(refused, 422, "invalid_input")["fields"]
    cleared = api.put(path, json={"password": None, "register": False}).json()
    assert (cleared["password_set"], cleared["register"]) == (False, False)
    assert api.delete(path).status_code == 204
    assert api.delete(f"{trunks(world)}{backup.json()['id']}").status_code == 204
    assert count_rows(services, Trunk) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**TRUNK, "host": "sip://provider.example"}, "host"),
        ({**TRUNK, "host": "provider.example:5060"}, "host"),
        ({**TRUNK, "host": "provider example"}, "host"),
        ({**TRUNK, "host": "<script>"}, "host"),
        ({**TRUNK, "host": "300.1.2.3"}, "host"),
        ({**TRUNK, "port": 0}, "port"),
        ({**TRUNK, "port": 65536}, "port"),
        ({**TRUNK, "transport": "tls"}, "transport"),
        ({**TRUNK, "register": True, "username": None}, "register"),
        ({**TRUNK, "register_expires": 10}, "register_expires"),
        ({**TRUNK, "caller_id_number": "abc"}, "caller_id_number"),
        ({**TRUNK, "username": "with space"}, "username"),
        ({**TRUNK, "priority": -1}, "priority"),
        ({**TRUNK, "name": "   "}, "name"),
        ({"host": "sip.provider.example"}, "name"),
        ({**TRUNK, "secret": "x"}, "secret"),
    ],
)
def test_invalid_trunks_write_nothing(
    services: Services, world: World, act_as: ActAs, body: dict[str, Any], field: str
) -> None:
    refused = act_as(world.manager, "all").post(trunks(world), json=body)
    assert field in fields_named(assert_error(refused, 422, "invalid_input")), refused.json()
    assert count_rows(services, Trunk) == 0


def test_invalid_trunk_change_leaves_the_trunk_as_it_was(world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    path = f"{trunks(world)}{api.post(trunks(world), json=TRUNK).json()['id']}"
    before = api.get(path).json()
    for body in ({"host": "bad host", "port": 5070}, {"port": 70000}, {"register_": True}):
        assert_error(api.put(path, json=body), 422, "invalid_input")
    assert api.get(path).json() == before


def test_trunk_names_are_unique_within_a_client(world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    assert api.post(trunks(world), json=TRUNK).status_code == 201
    assert_error(api.post(trunks(world), json=TRUNK), 409, "conflict")
    other = act_as(world.other_manager, "all")
    assert other.post(f"/client/{world.other_client.id}/trunk/", json=TRUNK).status_code == 201


def test_metacharacters_in_trunk_names_are_stored_verbatim(
    services: Services, world: World, act_as: ActAs
) -> None:
    api = act_as(world.manager, "all")
    created = api.post(trunks(world), json={**TRUNK, "name": NASTY, "password": NASTY})
    assert created.status_code == 201 and created.json()["name"] == NASTY
    # Once, as the name; the password (the same text) is never returned.
    assert created.text.count("DROP TABLE") == 1 and created.json()["password_set"] is True
    assert row(services, Trunk, created.json()["id"]).name == NASTY
    assert api.get(trunks(world)).json()[0]["name"] == NASTY


def test_other_clients_trunks_are_out_of_reach(
    services: Services, world: World, act_as: ActAs
) -> None:
    admin = act_as(world.admin, "all")
    theirs = admin.post(f"/client/{world.other_client.id}/trunk/", json=TRUNK).json()
    api = act_as(world.manager, "all")
    before = snapshot(services)
    assert_error(api.get(f"{trunks(world)}{theirs['id']}"), 404, "not_found")
    assert_error(api.put(f"{trunks(world)}{theirs['id']}", json={"port": 1}), 404, "not_found")
    assert_error(api.delete(f"{trunks(world)}{theirs['id']}"), 404, "not_found")
    assert_error(api.get(f"/client/{world.other_client.id}/trunk/"), 403, "access_denied")
    assert snapshot(services) == before


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("sip.example.com", True),
        ("sip.example.com.", True),
        ("192.0.2.1", True),
        ("2001:db8::1", True),
        ("[2001:db8::1]", True),
        ("-bad.example", False),
        ("a" * 64 + ".example", False),
        ("", False),
        ("1.2.3", False),
        ("exa_mple.com", False),
    ],
)
def test_host_names(host: str, ok: bool) -> None:
    assert (host_problem(host) is None) is ok
