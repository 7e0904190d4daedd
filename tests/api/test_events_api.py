"""Event handlers through the API: create with a one-time secret, list, read, change, delete;
body type and validation errors."""

from __future__ import annotations

import pytest

from callgate.common.errors import InvalidInput
from callgate.config import Settings
from callgate.events.service import EventHandlerService, is_private_destination, url_problem
from callgate.services import Services
from tests.api.conftest import ActAs
from tests.api.helpers import HANDLER, assert_error
from tests.support.factories import World


def test_event_handler_lifecycle(world: World, act_as: ActAs) -> None:
    api = act_as(world.manager)
    events = f"/extension/{world.ext101.id}/event/"
    created = api.post(events, json=HANDLER)
    assert created.status_code == 201, created.text
    body = created.json()
    assert {k: body[k] for k in HANDLER} == HANDLER
    assert body["extension_id"] == world.ext101.id and body["status"] == "active"
    assert len(body["secret"]) >= 43
    handler = f"{events}{body['id']}"

    fetched = api.get(handler).json()
    assert "secret" not in fetched and fetched["url"] == HANDLER["url"]
    listed = api.get(events)
    assert listed.headers["x-total-count"] == "1"
    assert [item["id"] for item in listed.json()] == [body["id"]]
    assert all("secret" not in item for item in listed.json())

    changed = api.put(handler, json={"url": "https://crm.example.com/v2", "method": "GET"})
    assert changed.status_code == 200
    assert (changed.json()["url"], changed.json()["method"]) == (
        "https://crm.example.com/v2",
        "GET",
    )
    assert changed.json()["event_type"] == "dial-in"

    deleted = api.delete(handler)
    assert deleted.status_code == 204 and deleted.content == b""
    assert_error(api.get(handler), 404, "not_found")
    assert_error(api.delete(handler), 404, "not_found")


def test_a_handler_is_found_only_under_its_own_extension(world: World, act_as: ActAs) -> None:
    api = act_as(world.manager)
    created = api.post(f"/extension/{world.ext102.id}/event/", json=HANDLER).json()
    # Both extensions are in the manager's realm; the handler is not under 101.
    assert_error(api.get(f"/extension/{world.ext101.id}/event/{created['id']}"), 404, "not_found")
    assert_error(
        api.delete(f"/extension/{world.ext101.id}/event/{created['id']}"), 404, "not_found"
    )
    assert api.get(f"/extension/{world.ext102.id}/event/{created['id']}").status_code == 200


def test_list_pages(world: World, act_as: ActAs) -> None:
    api = act_as(world.ext_user)
    for event_type in ("dial-in", "answer", "hangup"):
        assert (
            api.post(
                "/extension/@me/event/", json={**HANDLER, "event_type": event_type}
            ).status_code
            == 201
        )
    page = api.get("/extension/@me/event/", params={"page": 2, "per_page": 2})
    assert page.headers["x-total-count"] == "3"
    assert [item["event_type"] for item in page.json()] == ["hangup"]
    assert_error(api.get("/extension/@me/event/", params={"per_page": 0}), 422, "invalid_input")


def test_a_json_endpoint_refuses_other_body_types(world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    events = f"/extension/{world.ext101.id}/event/"
    assert_error(api.post(events, data=HANDLER), 415, "unsupported_media_type")
    text = api.post(events, content=b'{"url": "x"}', headers={"Content-Type": "text/plain"})
    assert_error(text, 415, "unsupported_media_type")
    untyped = api.put(f"/client/{world.client.id}/", content=b'{"name": "x"}')
    assert_error(untyped, 415, "unsupported_media_type")
    typed = api.post(
        events,
        content=b'{"url": "https://a.example/", "event_type": "answer"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert typed.status_code == 201


INVALID_BODIES = [
    ({**HANDLER, "url": "ftp://crm.example.com/"}, "url"),
    ({**HANDLER, "url": "/relative"}, "url"),
    ({**HANDLER, "url": "https://user:pw@crm.example.com/"}, "url"),
    ({**HANDLER, "event_type": "ringing"}, "event_type"),
    ({**HANDLER, "method": "PATCH"}, "method"),
    ({"url": HANDLER["url"]}, "event_type"),
    ({**HANDLER, "colour": "red"}, "colour"),
]


def test_invalid_bodies_name_the_field(world: World, act_as: ActAs) -> None:
    api = act_as(world.manager)
    for body, field in INVALID_BODIES:
        response = api.post(f"/extension/{world.ext101.id}/event/", json=body)
        assert field in assert_error(response, 422, "invalid_input")["fields"], body
    assert api.get(f"/extension/{world.ext101.id}/event/").json() == []


def test_client_update_validates(world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    path = f"/client/{world.client.id}/"
    assert (
        "prefix"
        in assert_error(api.put(path, json={"prefix": "1"}), 422, "invalid_input")["fields"]
    )
    assert (
        "name" in assert_error(api.put(path, json={"name": "   "}), 422, "invalid_input")["fields"]
    )
    assert_error(
        api.put(path, content=b"{not json", headers={"Content-Type": "application/json"}),
        422,
        "invalid_input",
    )


def test_duplicate_handler_is_a_conflict(world: World, act_as: ActAs) -> None:
    api = act_as(world.manager)
    events = f"/extension/{world.ext101.id}/event/"
    assert api.post(events, json=HANDLER).status_code == 201
    assert_error(api.post(events, json=HANDLER), 409, "conflict")


def test_private_destinations_are_refused_unless_allowed(services: Services, world: World) -> None:
    strict = EventHandlerService(services.database, Settings(webhook_allow_private=False))
    for url in (
        "http://127.0.0.1:8080/",
        "http://10.1.2.3/",
        "http://localhost/x",
        "http://[::1]/",
    ):
        with pytest.raises(InvalidInput) as refused:
            strict.create(
                client_id=world.client.id,
                extension_id=world.ext101.id,
                url=url,
                method="POST",
                event_type="answer",
            )
        assert refused.value.fields == {"url": "private address"}
    created = strict.create(
        client_id=world.client.id,
        extension_id=world.ext101.id,
        url="https://93.184.216.34/",
        method="POST",
        event_type="answer",
    )
    assert created.handler.id is not None


def test_destination_rules() -> None:
    assert url_problem("https://crm.example.com/hook?x=1") is None
    assert url_problem("https://crm.example.com:99999/") is not None
    assert url_problem("https://crm.example.com/a b") is not None
    assert url_problem("https://crm.example.com/#frag") is not None
    assert is_private_destination("http://192.168.0.10/")
    assert is_private_destination("http://169.254.169.254/latest/meta-data")
    assert is_private_destination("http://[::ffff:127.0.0.1]/")
    assert is_private_destination("http://app.localhost/")
    assert not is_private_destination("https://crm.example.com/")
    assert not is_private_destination("https://8.8.8.8/")
