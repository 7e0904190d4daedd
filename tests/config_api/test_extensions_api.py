"""Extensions through the API: create (all four types), list with a type filter, read, change,
delete; the client's ``max_extensions``; renaming clears the SIP credentials."""

from __future__ import annotations

import uuid

import pytest

from callgate.identity.models import Client, Extension, User
from callgate.phones.models import PhoneSettings
from callgate.routing.models import Did
from callgate.services import Services
from callgate.voicemail.models import Voicemail
from tests.api.conftest import ActAs
from tests.api.helpers import assert_error
from tests.config_api.helpers import NASTY, count_rows, row, snapshot
from tests.support.factories import World


def extensions_path(world: World) -> str:
    return f"/client/{world.client.id}/extension/"


def test_extension_lifecycle(services: Services, world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    created = api.post(extensions_path(world), json={"name": "201", "label": "Reception"})
    assert created.status_code == 201, created.text
    body = created.json()
    prefix = world.client.prefix
    assert {k: body[k] for k in ("name", "type", "label", "status", "client_id")} == {
        "name": "201",
        "type": "phone",
        "label": "Reception",
        "status": "active",
        "client_id": world.client.id,
    }
    assert body["sip_username"] == f"{prefix}*201"
    assert body["created"] == body["create_date"]

    path = f"/extension/{body['id']}/"
    assert api.get(path).json() == body
    changed = api.put(path, json={"label": "Front desk", "status": "blocked"})
    assert changed.status_code == 200
    assert (changed.json()["label"], changed.json()["status"]) == ("Front desk", "blocked")
    assert changed.json()["name"] == "201"

    assert api.delete(path).status_code == 204
    # A client user learns nothing of ids outside its realm, a deleted one's included.
    assert_error(api.get(path), 403, "access_denied")
    assert_error(act_as(world.admin).get(path), 404, "not_found")
    assert row(services, Extension, body["id"]) is None


def test_all_four_types_and_the_type_filter(world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    for name, type_ in (("300", "fax"), ("301", "queue"), ("302", "ivr")):
        created = api.post(extensions_path(world), json={"name": name, "type": type_})
        assert created.status_code == 201
        assert created.json()["type"] == type_ and created.json()["sip_username"] is None
    faxes = api.get(extensions_path(world), params={"type": "fax"})
    assert faxes.headers["x-total-count"] == "1" and faxes.json()[0]["name"] == "300"
    everything = api.get(extensions_path(world), params={"per_page": 2, "page": 3})
    assert everything.headers["x-total-count"] == "5"
    assert [item["name"] for item in everything.json()] == ["302"]
    assert_error(api.get(extensions_path(world), params={"type": "modem"}), 422, "invalid_input")


def test_the_original_apis_prefixed_name_is_accepted(world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    created = api.post(extensions_path(world), json={"name": f"{world.client.prefix}*205"})
    assert created.status_code == 201 and created.json()["name"] == "205"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "10a"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "999*101"}, "name"),
        ({"name": "1" * 21}, "name"),
        ({"name": "400", "type": "modem"}, "type"),
        ({"name": "400", "status": "gone"}, "status"),
        ({"name": "400", "label": "x" * 201}, "label"),
        ({"name": 400}, "name"),
        ({"name": "400", "colour": "red"}, "colour"),
        ({}, "name"),
    ],
)
def test_invalid_extensions_are_refused_and_nothing_is_written(
    services: Services, world: World, act_as: ActAs, body: dict[str, object], field: str
) -> None:
    api = act_as(world.manager, "all")
    before = snapshot(services)
    refused = assert_error(api.post(extensions_path(world), json=body), 422, "invalid_input")
    assert field in refused["fields"], refused
    assert snapshot(services) == before


def test_duplicate_names_are_conflicts(world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    assert_error(api.post(extensions_path(world), json={"name": "101"}), 409, "conflict")
    rename = api.put(f"/extension/{world.ext102.id}/", json={"name": "101"})
    assert_error(rename, 409, "conflict")
    assert api.get(f"/extension/{world.ext102.id}/").json()["name"] == "102"


def test_max_extensions_is_enforced(services: Services, world: World, act_as: ActAs) -> None:
    with services.database.write() as session:
        client = session.get(Client, world.client.id)
        assert client is not None
        client.max_extensions = 3
    api = act_as(world.manager, "all")
    assert api.post(extensions_path(world), json={"name": "103"}).status_code == 201
    before = count_rows(services, Extension)
    refused = assert_error(api.post(extensions_path(world), json={"name": "104"}), 409, "conflict")
    assert "max_extensions" in refused["message"] and "3" in refused["message"]
    assert count_rows(services, Extension) == before
    # The limit is per client: the other client still has room.
    admin = act_as(world.admin, "all")
    other = admin.post(f"/client/{world.other_client.id}/extension/", json={"name": "104"})
    assert other.status_code == 201


def test_renaming_clears_the_sip_credentials(
    services: Services, world: World, act_as: ActAs
) -> None:
    api = act_as(world.manager, "all")
    phone = f"/extension/{world.ext102.id}/phone/"
    assert api.put(phone, json={"password": "sip-secret-102"}).json()["password_set"] is True
    renamed = api.put(f"/extension/{world.ext102.id}/", json={"name": "112"})
    assert renamed.json()["sip_username"] == f"{world.client.prefix}*112"
    after = api.get(phone).json()
    assert after["password_set"] is False and after["sip_username"] == f"{world.client.prefix}*112"
    settings = row(services, PhoneSettings, world.ext102.id)
    assert settings.ha1_md5 is None and settings.ha1_sha256 is None


def test_deleting_refuses_an_extension_with_users_and_unroutes_dids(
    services: Services, world: World, act_as: ActAs
) -> None:
    api = act_as(world.manager, "all")
    refused = assert_error(api.delete(f"/extension/{world.ext101.id}/"), 409, "conflict")
    assert "user" in refused["message"]
    assert row(services, User, world.ext_user.id) is not None
    did = api.post(
        f"/client/{world.client.id}/did/",
        json={"number": "+4930123456", "extension_id": world.ext102.id},
    ).json()
    assert api.delete(f"/extension/{world.ext102.id}/").status_code == 204
    assert row(services, Did, did["id"]).extension_id is None


def test_other_clients_extensions_are_refused(
    services: Services, world: World, act_as: ActAs
) -> None:
    api = act_as(world.manager, "all")
    before = snapshot(services)
    other = f"/extension/{world.other_ext.id}/"
    assert_error(api.get(other), 403, "access_denied")
    assert_error(api.put(other, json={"label": "x"}), 403, "access_denied")
    assert_error(api.delete(other), 403, "access_denied")
    assert_error(
        api.post(f"/client/{world.other_client.id}/extension/", json={"name": "555"}),
        403,
        "access_denied",
    )
    assert snapshot(services) == before


def test_metacharacters_in_labels_are_stored_verbatim(
    services: Services, world: World, act_as: ActAs
) -> None:
    api = act_as(world.manager, "all")
    created = api.post(extensions_path(world), json={"name": "250", "label": NASTY})
    assert created.status_code == 201 and created.json()["label"] == NASTY
    assert row(services, Extension, created.json()["id"]).label == NASTY
    changed = api.put(f"/extension/{created.json()['id']}/", json={"label": NASTY + "2"})
    assert changed.json()["label"] == NASTY + "2"
    assert api.get(extensions_path(world)).json()[-1]["label"] == NASTY + "2"


def test_deleting_an_extension_deletes_its_voicemail_files(
    services: Services, world: World, act_as: ActAs
) -> None:
    relative = services.files.new_relative_path("voicemail", world.client.id, "vm1", "wav")
    services.files.write_bytes(relative, [b"RIFF....WAVE"])
    with services.database.write() as session:
        session.add(
            Voicemail(
                uuid=str(uuid.uuid4()),
                client_id=world.client.id,
                extension_id=world.ext102.id,
                storage_path=relative,
                size_bytes=12,
            )
        )
    assert services.files.path_of(relative).exists()
    assert act_as(world.manager, "all").delete(f"/extension/{world.ext102.id}/").status_code == 204
    assert count_rows(services, Voicemail) == 0
    assert not services.files.path_of(relative).exists()
