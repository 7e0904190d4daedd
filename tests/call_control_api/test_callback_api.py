"""``POST /extension/{id}/callback/`` through the real app, with a fake engine behind it."""

from __future__ import annotations

from typing import Any

import pytest

from callgate.calls.live import CallbackRequest
from callgate.identity.models import ExtensionType, Status
from callgate.services import Services
from tests.api.conftest import ActAs
from tests.api.helpers import assert_error
from tests.call_control_api.fake import NOWHERE, FakeCallControl
from tests.support.factories import World

BODY = {"src_num": ["101"], "dst_num": "74951234567"}


def originated(control: FakeCallControl) -> list[CallbackRequest]:
    return [request[1] for request in control.requests if request[0] == "originate"]


def test_a_callback_reaches_the_engine_and_answers_its_ids(
    act_as: ActAs, world: World, control: FakeCallControl
) -> None:
    response = act_as(world.manager).post(
        f"/extension/{world.ext101.id}/callback/",
        json={
            "src_num": ["101", "+74950000001"],
            "dst_num": "102",
            "caller_id_name": "Sales line",
            "caller_id_number": "74951112233",
            "call_duration": 600,
            "wait_for_pickup": 20,
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"call_api_id", "call_id"}
    assert body["call_api_id"] in control.calls
    assert originated(control) == [
        CallbackRequest(
            client_id=world.client.id,
            extension_id=world.ext101.id,
            src_num=["101", "+74950000001"],
            dst_num="102",
            caller_id_name="Sales line",
            caller_id_number="74951112233",
            call_duration=600,
            wait_for_pickup=20,
        )
    ]


def test_defaults_one_number_as_a_string_and_repeats(
    act_as: ActAs, world: World, control: FakeCallControl
) -> None:
    api = act_as(world.manager)
    path = f"/extension/{world.ext101.id}/callback/"
    assert api.post(path, json={"src_num": "101", "dst_num": "102"}).status_code == 201
    assert api.post(path, json={"src_num": ["101", "103", "101"], "dst_num": "102"}).is_success
    first, second = originated(control)
    assert first.src_num == ["101"]
    assert (first.wait_for_pickup, first.call_duration, first.caller_id_name) == (30, None, None)
    assert second.src_num == ["101", "103"]


def test_an_extension_user_calls_through_at_me(
    act_as: ActAs, world: World, control: FakeCallControl
) -> None:
    response = act_as(world.ext_user).post("/extension/@me/callback/", json=BODY)
    assert response.status_code == 201, response.text
    assert originated(control)[0].extension_id == world.ext101.id


def test_the_policy_guards_the_callback(
    act_as: ActAs, world: World, control: FakeCallControl
) -> None:
    other = f"/extension/{world.other_ext.id}/callback/"
    assert_error(act_as(world.manager).post(other, json=BODY), 403, "access_denied")
    own_neighbour = f"/extension/{world.ext102.id}/callback/"
    assert_error(act_as(world.ext_user).post(own_neighbour, json=BODY), 403, "access_denied")
    mine = f"/extension/{world.ext101.id}/callback/"
    assert_error(act_as(world.reader).post(mine, json=BODY), 403, "user_access_type_deny")
    assert_error(
        act_as(world.admin).post("/extension/987654/callback/", json=BODY), 404, "not_found"
    )
    assert originated(control) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"src_num": []}, "src_num"),
        ({"src_num": [str(n) for n in range(100, 111)]}, "src_num"),
        ({"src_num": ["10 1"]}, "src_num"),
        ({"src_num": 101}, "src_num"),
        ({"dst_num": "sip:102@example.com"}, "dst_num"),
        ({"dst_num": "1" * 33}, "dst_num"),
        ({"caller_id_name": "Evil\r\nX-Injected: 1"}, "caller_id_name"),
        ({"caller_id_name": 'Say "hi"'}, "caller_id_name"),
        ({"caller_id_number": "anonymous"}, "caller_id_number"),
        ({"call_duration": 0}, "call_duration"),
        ({"call_duration": 86_401}, "call_duration"),
        ({"wait_for_pickup": 601}, "wait_for_pickup"),
        ({"wait_for_pickup": "soon"}, "wait_for_pickup"),
        ({"announce_sound_id": 5}, "announce_sound_id"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(
    act_as: ActAs, world: World, control: FakeCallControl, change: dict[str, Any], field: str
) -> None:
    response = act_as(world.manager).post(
        f"/extension/{world.ext101.id}/callback/", json={**BODY, **change}
    )
    body = assert_error(response, 422, "invalid_input")
    assert any(name.split(".")[0] == field for name in body["fields"]), body
    assert originated(control) == []


def test_missing_numbers_are_named(act_as: ActAs, world: World) -> None:
    response = act_as(world.manager).post(f"/extension/{world.ext101.id}/callback/", json={})
    assert {"src_num", "dst_num"} <= set(assert_error(response, 422, "invalid_input")["fields"])


def test_only_active_phone_extensions_place_calls(
    act_as: ActAs, world: World, services: Services, control: FakeCallControl
) -> None:
    fax = services.identity.create_extension(world.client.id, "300", ExtensionType.FAX)
    blocked = services.identity.create_extension(world.client.id, "301", status=Status.BLOCKED)
    api = act_as(world.manager)
    refused = assert_error(api.post(f"/extension/{fax.id}/callback/", json=BODY), 404, "not_found")
    assert "phone" in refused["message"]
    assert_error(api.post(f"/extension/{blocked.id}/callback/", json=BODY), 409, "conflict")
    assert originated(control) == []


def test_engine_errors_pass_through_the_error_table(act_as: ActAs, world: World) -> None:
    response = act_as(world.manager).post(
        f"/extension/{world.ext101.id}/callback/", json={**BODY, "dst_num": NOWHERE}
    )
    assert assert_error(response, 422, "invalid_input")["fields"] == {"dst_num": "routes nowhere"}


def test_without_a_pbx_the_answer_is_503(act_as: ActAs, world: World, services: Services) -> None:
    services.call_control = None
    response = act_as(world.manager).post(f"/extension/{world.ext101.id}/callback/", json=BODY)
    body = assert_error(response, 503, "pbx_unavailable")
    assert "PBX" in body["message"]
    assert "x-ratelimit-remaining" in response.headers
