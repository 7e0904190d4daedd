"""``current_calls``: listing live calls and acting on them, in both realms, through the real
app with a fake engine behind it."""

from __future__ import annotations

import dataclasses

import pytest

from callgate.calls import control_http
from callgate.calls.live import CallAction, LiveCall
from callgate.services import Services
from tests.api.conftest import ActAs
from tests.api.helpers import assert_error
from tests.call_control_api.fake import NOWHERE, T0, FakeCallControl, live_call
from tests.support.factories import World


@dataclasses.dataclass
class Calls:
    of101: LiveCall
    of102: LiveCall
    of_other: LiveCall


@pytest.fixture
def calls(control: FakeCallControl, world: World) -> Calls:
    answered = T0.replace(second=7)
    return Calls(
        of101=control.add(
            live_call(
                world.client.id,
                world.ext101.id,
                minutes=1,
                answer_time=answered,
                record_uuid="rec-1",
                state="answered",
            )
        ),
        of102=control.add(live_call(world.client.id, world.ext102.id, minutes=2, call_flow="in")),
        of_other=control.add(live_call(world.other_client.id, world.other_ext.id)),
    )


def acted(control: FakeCallControl) -> list[tuple[object, ...]]:
    return [request[1:] for request in control.requests if request[0] in ("act", "hangup")]


def test_a_client_lists_its_live_calls(act_as: ActAs, world: World, calls: Calls) -> None:
    response = act_as(world.manager).get(f"/client/{world.client.id}/current_calls/")
    assert response.status_code == 200, response.text
    assert response.headers["x-total-count"] == "2"
    newest, oldest = response.json()
    assert newest["call_api_id"] == calls.of102.call_api_id  # newest first
    assert oldest == {
        "call_api_id": calls.of101.call_api_id,
        "call_id": calls.of101.call_id,
        "call_flow": "out",
        "caller_id_name": "Reception",
        "caller_id_number": "101",
        "called_number": "74951234567",
        "extension_id": world.ext101.id,
        "init_time_gmt": "2024-03-01 12:01:00",
        "answer_time_gmt": "2024-03-01 12:00:07",
        "record_uuid": "rec-1",
        "state": "answered",
    }
    assert newest["answer_time_gmt"] is None and newest["state"] == "ringing"


def test_paging_and_order(act_as: ActAs, world: World, calls: Calls) -> None:
    api = act_as(world.manager)
    path = f"/client/{world.client.id}/current_calls/"
    page = api.get(path, params={"per_page": 1, "page": 2, "order": "asc"})
    assert [call["call_api_id"] for call in page.json()] == [calls.of102.call_api_id]
    assert page.headers["x-total-count"] == "2"
    assert api.get(path, params={"page": 3, "per_page": 1}).json() == []
    assert_error(api.get(path, params={"per_page": 0}), 422, "invalid_input")


def test_an_extension_sees_only_its_calls(act_as: ActAs, world: World, calls: Calls) -> None:
    for api, path in [
        (act_as(world.manager), f"/extension/{world.ext101.id}/current_calls/"),
        (act_as(world.ext_user), "/extension/@me/current_calls/"),
    ]:
        response = api.get(path)
        assert response.status_code == 200, response.text
        assert [call["call_api_id"] for call in response.json()] == [calls.of101.call_api_id]


def test_reading_is_guarded_by_the_policy(act_as: ActAs, world: World, calls: Calls) -> None:
    other = f"/client/{world.other_client.id}/current_calls/"
    assert_error(act_as(world.manager).get(other), 403, "access_denied")
    own_client = f"/client/{world.client.id}/current_calls/"
    assert_error(act_as(world.ext_user).get(own_client), 403, "access_denied")
    neighbour = f"/extension/{world.ext102.id}/current_calls/"
    assert_error(act_as(world.ext_user).get(neighbour), 403, "access_denied")
    assert act_as(world.reader).get(own_client).status_code == 200


def test_transfer_hold_and_offhold(
    act_as: ActAs, world: World, calls: Calls, control: FakeCallControl
) -> None:
    api = act_as(world.manager)  # through a call_api application
    client_path = f"/client/{world.client.id}/current_calls/{calls.of101.call_api_id}"
    ext_path = f"/extension/{world.ext101.id}/current_calls/{calls.of101.call_api_id}"
    done = api.put(client_path, json={"action": "transfer", "send_dst": "102"})
    assert (done.status_code, done.json()) == (200, {"status": "success"})
    assert api.put(ext_path, json={"action": "hold"}).json() == {"status": "success"}
    assert control.calls[calls.of101.call_api_id].state == "held"
    assert_error(api.put(ext_path, json={"action": "hold"}), 409, "conflict")
    assert api.put(ext_path, json={"action": "OFFHOLD", "send_dst": "999"}).is_success
    call_api_id = calls.of101.call_api_id
    assert acted(control) == [
        (world.client.id, None, call_api_id, CallAction.TRANSFER, "102"),
        (world.client.id, world.ext101.id, call_api_id, CallAction.HOLD, None),
        (world.client.id, world.ext101.id, call_api_id, CallAction.HOLD, None),
        (world.client.id, world.ext101.id, call_api_id, CallAction.OFFHOLD, None),
    ]


def test_transfer_needs_send_dst(
    act_as: ActAs, world: World, calls: Calls, control: FakeCallControl
) -> None:
    path = f"/client/{world.client.id}/current_calls/{calls.of101.call_api_id}"
    body = assert_error(
        act_as(world.manager).put(path, json={"action": "transfer"}), 422, "invalid_input"
    )
    assert set(body["fields"]) == {"send_dst"}
    refused = act_as(world.manager).put(path, json={"action": "transfer", "send_dst": NOWHERE})
    assert assert_error(refused, 422, "invalid_input")["fields"] == {"send_dst": "routes nowhere"}


@pytest.mark.parametrize("action", ["record", "whisper", "eavesdrop", "park", "conference"])
def test_actions_of_the_original_not_built_yet_are_422(
    act_as: ActAs, world: World, calls: Calls, control: FakeCallControl, action: str
) -> None:
    path = f"/extension/{world.ext101.id}/current_calls/{calls.of101.call_api_id}"
    response = act_as(world.manager).put(path, json={"action": action, "send_dst": "102"})
    body = assert_error(response, 422, "invalid_input")
    assert "not supported yet" in body["message"] and "transfer" in body["message"]
    assert set(body["fields"]) == {"action"}
    assert acted(control) == []


@pytest.mark.parametrize(
    "body", [{"action": "frobnicate"}, {"action": ""}, {}, {"action": "hold", "extra": 1}]
)
def test_other_bodies_are_422(
    act_as: ActAs, world: World, calls: Calls, control: FakeCallControl, body: dict[str, object]
) -> None:
    path = f"/extension/{world.ext101.id}/current_calls/{calls.of101.call_api_id}"
    assert_error(act_as(world.manager).put(path, json=body), 422, "invalid_input")
    assert acted(control) == []


def test_hang_up(act_as: ActAs, world: World, calls: Calls, control: FakeCallControl) -> None:
    api = act_as(world.manager)
    path = f"/extension/{world.ext101.id}/current_calls/{calls.of101.call_api_id}"
    response = api.delete(path)
    assert (response.status_code, response.content) == (204, b"")
    assert calls.of101.call_api_id not in control.calls
    assert_error(api.delete(path), 404, "not_found")
    client_path = f"/client/{world.client.id}/current_calls/{calls.of102.call_api_id}"
    assert api.delete(client_path).status_code == 204
    assert control.calls.keys() == {calls.of_other.call_api_id}


def test_calls_outside_the_realm_are_404(
    act_as: ActAs, world: World, calls: Calls, control: FakeCallControl
) -> None:
    api = act_as(world.manager)
    # another extension's call under this extension, another client's call under this client
    wrong_extension = f"/extension/{world.ext101.id}/current_calls/{calls.of102.call_api_id}"
    wrong_client = f"/client/{world.client.id}/current_calls/{calls.of_other.call_api_id}"
    for path in (wrong_extension, wrong_client):
        assert_error(api.put(path, json={"action": "hold"}), 404, "not_found")
        assert_error(api.delete(path), 404, "not_found")
    assert len(control.calls) == 3


def test_writes_are_guarded_by_the_policy(
    act_as: ActAs, world: World, calls: Calls, control: FakeCallControl
) -> None:
    mine = f"/extension/{world.ext101.id}/current_calls/{calls.of101.call_api_id}"
    reader = act_as(world.reader)
    assert_error(reader.put(mine, json={"action": "hold"}), 403, "user_access_type_deny")
    assert_error(reader.delete(mine), 403, "user_access_type_deny")
    theirs = f"/client/{world.other_client.id}/current_calls/{calls.of_other.call_api_id}"
    assert_error(act_as(world.manager).delete(theirs), 403, "access_denied")
    neighbour = f"/extension/{world.ext102.id}/current_calls/{calls.of102.call_api_id}"
    assert_error(act_as(world.ext_user).delete(neighbour), 403, "access_denied")
    assert acted(control) == []
    # the extension's own user, through a call_api application, may
    assert (
        act_as(world.ext_user)
        .delete(f"/extension/@me/current_calls/{calls.of101.call_api_id}")
        .status_code
        == 204
    )


def test_without_a_pbx_every_route_is_503(act_as: ActAs, world: World, services: Services) -> None:
    services.call_control = None
    api = act_as(world.manager)
    one = f"/extension/{world.ext101.id}/current_calls/abc"
    for response in (
        api.get(f"/client/{world.client.id}/current_calls/"),
        api.get(f"/extension/{world.ext101.id}/current_calls/"),
        api.put(one, json={"action": "hold"}),
        api.delete(one),
    ):
        assert_error(response, 503, "pbx_unavailable")


def test_an_engine_that_does_not_answer_is_503(
    act_as: ActAs, world: World, control: FakeCallControl, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control_http, "CONTROL_TIMEOUT", 0.2)
    control.stall = True
    response = act_as(world.manager).get(f"/client/{world.client.id}/current_calls/")
    assert "did not answer" in assert_error(response, 503, "pbx_unavailable")["message"]
