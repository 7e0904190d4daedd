"""Call history through the API: filters, paging, order, one call, realms; and the service the
engine writes it with."""

from __future__ import annotations

import datetime as dt

import pytest

from callgate.calls.models import CallRecord
from callgate.calls.service import FinishedCall
from callgate.common.errors import Conflict, InvalidInput
from callgate.services import Services
from tests.api.conftest import ActAs
from tests.api.helpers import assert_error
from tests.history_api.conftest import add_call, at
from tests.support.factories import World

ROW_FIELDS = {
    "call_uuid", "flow", "init_time_gmt", "answer_time_gmt", "bridged_time_gmt",
    "hangup_time_gmt", "duration", "bridged_duration", "from_username", "from_screen_name",
    "to_username", "bridged_username", "did_number", "result", "hangup_cause", "record_uuid",
    "extension_id", "client_owner_id", "callback_id",
}  # fmt: skip


@pytest.fixture
def calls(services: Services, world: World) -> dict[str, str]:
    """Four calls of client A at minutes 0, 10, 20, 30 and one of the other client at 5."""
    client, other = world.client.id, world.other_client.id
    return {
        "out101": add_call(
            services, client, 0, extension_id=world.ext101.id, from_username="101",
            to_username="+15550001", bridged_username="+15550001", hangup_cause="NORMAL_CLEARING",
            record_uuid="rec-1", callback_id="cb-1",
        ),
        "in101": add_call(
            services, client, 10, extension_id=world.ext101.id, flow="in", result="not answered",
            did_number="+15559999",
        ),
        "internal102": add_call(services, client, 20, extension_id=world.ext102.id,
                                flow="internal", result="busy"),
        "in_client": add_call(services, client, 30, flow="in", result="voicemail"),
        "other": add_call(services, other, 5, extension_id=world.other_ext.id),
    }  # fmt: skip


def uuids(response_json: dict[str, object]) -> list[str]:
    rows = response_json["call_history"]
    assert isinstance(rows, list)
    return [row["call_uuid"] for row in rows]


def test_the_list_has_the_original_shape_and_fields(
    world: World, act_as: ActAs, calls: dict[str, str]
) -> None:
    response = act_as(world.manager).get("/client/@me/call_history/")
    assert response.status_code == 200, response.text
    body = response.json()
    assert response.headers["x-total-count"] == "4"
    assert (body["page"], body["per_page"], body["order"]) == (1, 50, "desc")
    assert uuids(body) == [
        calls["in_client"],
        calls["internal102"],
        calls["in101"],
        calls["out101"],
    ]
    first = body["call_history"][-1]
    assert set(first) == ROW_FIELDS
    assert first == {
        "call_uuid": calls["out101"], "flow": "out", "init_time_gmt": "2024-03-01 12:00:00",
        "answer_time_gmt": "2024-03-01 12:00:10", "bridged_time_gmt": "2024-03-01 12:00:10",
        "hangup_time_gmt": "2024-03-01 12:01:00", "duration": 60, "bridged_duration": 50,
        "from_username": "101", "from_screen_name": "", "to_username": "+15550001",
        "bridged_username": "+15550001", "did_number": None, "result": "answered",
        "hangup_cause": "NORMAL_CLEARING", "record_uuid": "rec-1",
        "extension_id": world.ext101.id, "client_owner_id": world.client.id, "callback_id": "cb-1",
    }  # fmt: skip
    unanswered = body["call_history"][-2]
    assert (unanswered["answer_time_gmt"], unanswered["bridged_duration"]) == (None, 0)
    assert unanswered["did_number"] == "+15559999"


def test_filters_order_and_pages(world: World, act_as: ActAs, calls: dict[str, str]) -> None:
    api = act_as(world.manager)
    path = f"/client/{world.client.id}/call_history/"

    def listed(**params: object) -> list[str]:
        response = api.get(path, params=params)
        assert response.status_code == 200, response.text
        return uuids(response.json())

    assert listed(order="asc") == [
        calls["out101"], calls["in101"], calls["internal102"], calls["in_client"]
    ]  # fmt: skip
    page = api.get(path, params={"per_page": 2, "page": 2})
    assert page.headers["x-total-count"] == "4"
    assert uuids(page.json()) == [calls["in101"], calls["out101"]]
    assert listed(page=3, per_page=2) == []
    assert listed(flow="in") == [calls["in_client"], calls["in101"]]
    assert listed(flow="internal") == [calls["internal102"]]
    assert listed(extension_id=world.ext101.id) == [calls["in101"], calls["out101"]]
    # Another client's extension as a filter shows nothing of it.
    assert listed(extension_id=world.other_ext.id) == []
    # Both ends inclusive to the second, in the original's format or ISO 8601 with an offset.
    window = [calls["internal102"], calls["in101"]]
    assert (
        listed(start_datetime="2024-03-01 12:10:00", end_datetime="2024-03-01 12:20:00") == window
    )
    iso = {"start_datetime": "2024-03-01T12:10:00Z", "end_datetime": "2024-03-01T13:20:00+01:00"}
    assert listed(**iso) == window
    assert listed(start_datetime="2024-03-01 12:10:01") == [
        calls["in_client"],
        calls["internal102"],
    ]
    assert listed(end_datetime="2024-03-01 12:09:59", flow="out") == [calls["out101"]]


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({"start_datetime": "yesterday"}, {"start_datetime"}),
        ({"end_datetime": "2024-13-01 00:00:00"}, {"end_datetime"}),
        ({"start_datetime": "2024-03-02", "end_datetime": "2024-03-01"},
         {"start_datetime", "end_datetime"}),
        ({"flow": "sideways"}, {"flow"}),
        ({"order": "random"}, {"order"}),
        ({"per_page": 0}, {"per_page"}),
        ({"per_page": 501}, {"per_page"}),
        ({"page": 0}, {"page"}),
        ({"extension_id": "abc"}, {"extension_id"}),
        ({"extension_id": 2**40}, {"extension_id"}),
    ],
)  # fmt: skip
def test_invalid_filters_are_422_naming_the_parameter(
    world: World, act_as: ActAs, params: dict[str, object], fields: set[str]
) -> None:
    response = act_as(world.manager).get("/client/@me/call_history/", params=params)
    body = assert_error(response, 422, "invalid_input")
    assert set(body["fields"]) == fields


def test_one_call(world: World, act_as: ActAs, calls: dict[str, str]) -> None:
    manager = act_as(world.manager)
    one = manager.get(f"/client/{world.client.id}/call_history/{calls['in101']}")
    assert one.status_code == 200 and one.json()["flow"] == "in"
    assert set(one.json()) == ROW_FIELDS
    # Another client's call inside the manager's own realm does not exist there.
    assert_error(manager.get(f"/client/@me/call_history/{calls['other']}"), 404, "not_found")
    assert_error(manager.get("/client/@me/call_history/no-such-call"), 404, "not_found")
    # The other client's realm is refused before anything is looked up.
    other_path = f"/client/{world.other_client.id}/call_history/{calls['other']}"
    assert_error(manager.get(other_path), 403, "access_denied")
    assert act_as(world.other_manager).get(other_path).status_code == 200
    assert act_as(world.admin).get(other_path).status_code == 200


def test_an_extension_user_sees_its_extension_only(
    world: World, act_as: ActAs, calls: dict[str, str]
) -> None:
    api = act_as(world.ext_user)
    own = api.get("/extension/@me/call_history/")
    assert own.status_code == 200, own.text
    assert uuids(own.json()) == [calls["in101"], calls["out101"]]
    assert own.headers["x-total-count"] == "2"
    assert uuids(api.get("/extension/@me/call_history/", params={"flow": "out"}).json()) == [
        calls["out101"]
    ]
    assert api.get(f"/extension/@me/call_history/{calls['out101']}").status_code == 200
    assert_error(api.get(f"/extension/@me/call_history/{calls['internal102']}"), 404, "not_found")
    assert_error(api.get(f"/client/{world.client.id}/call_history/"), 403, "access_denied")
    assert_error(api.get("/client/@me/call_history/"), 403, "access_denied")
    assert_error(api.get(f"/extension/{world.ext102.id}/call_history/"), 403, "access_denied")
    # The client's manager may read the extension's history too.
    manager = act_as(world.manager).get(f"/extension/{world.ext102.id}/call_history/")
    assert uuids(manager.json()) == [calls["internal102"]]


def test_the_engine_service_checks_what_it_writes(services: Services, world: World) -> None:
    good = FinishedCall(
        client_id=world.client.id,
        extension_id=world.ext101.id,
        flow="out",
        init_time=at(0),
        answer_time=at(0.5),
        hangup_time=at(2),
        result="answered",
        from_screen_name="x" * 300,
        call_uuid="call-1",
    )
    bad = [
        (FinishedCall(**{**good.__dict__, "flow": "around"}), "flow"),
        (FinishedCall(**{**good.__dict__, "result": "great"}), "result"),
        (FinishedCall(**{**good.__dict__, "hangup_time": at(-1)}), "hangup_time"),
        (FinishedCall(**{**good.__dict__, "answer_time": at(3)}), "answer_time"),
        (FinishedCall(**{**good.__dict__, "init_time": at(0).replace(tzinfo=None)}), "init_time"),
        (FinishedCall(**{**good.__dict__, "extension_id": world.other_ext.id}), "extension_id"),
    ]
    for call, field in bad:
        with pytest.raises(InvalidInput) as refused:
            services.calls.record(call)
        assert field in refused.value.fields
    with services.database.read() as session:
        assert session.query(CallRecord).count() == 0

    row = services.calls.record(good)
    assert (row.duration, row.bridged_duration) == (120, 90)
    assert len(row.from_screen_name) == 100  # cut to the column, not refused
    with pytest.raises(Conflict):
        services.calls.record(good)
    generated = services.calls.record(
        FinishedCall(**{**good.__dict__, "call_uuid": None, "answer_time": None})
    )
    assert len(generated.call_uuid) == 32 and generated.bridged_duration == 0
    assert generated.init_time == at(0) and generated.init_time.tzinfo == dt.UTC
