"""A client's phone_events through the API: the same bodies, validation and one-time secret as
extension event handlers, kept apart from them; Call API apps may manage them."""

from __future__ import annotations

from callgate.events.models import EventHandler
from callgate.services import Services
from tests.api.conftest import ActAs
from tests.api.helpers import HANDLER, assert_error
from tests.support.factories import World


def test_phone_events_lifecycle_through_a_call_api_app(
    services: Services, world: World, act_as: ActAs
) -> None:
    api = act_as(world.manager, "call_api")
    base = f"/client/{world.client.id}/phone_events/"
    created = api.post(base, json=HANDLER)
    assert created.status_code == 201, created.text
    body = created.json()
    assert {k: body[k] for k in HANDLER} == HANDLER
    assert body["extension_id"] is None and len(body["secret"]) >= 43
    one = f"{base}{body['id']}"

    fetched = api.get(one)
    assert fetched.status_code == 200 and "secret" not in fetched.json()
    listed = api.get("/client/@me/phone_events/")
    assert listed.headers["x-total-count"] == "1"
    assert [item["id"] for item in listed.json()] == [body["id"]]

    changed = api.put(one, json={"event_type": "hangup", "method": "GET"})
    assert changed.status_code == 200
    assert (changed.json()["event_type"], changed.json()["method"]) == ("hangup", "GET")
    with services.database.read() as session:
        row = session.get(EventHandler, body["id"])
        assert row is not None and row.signing_secret == body["secret"]
        assert (row.client_id, row.extension_id) == (world.client.id, None)

    assert api.delete(one).status_code == 204
    assert_error(api.get(one), 404, "not_found")
    assert_error(api.delete(one), 404, "not_found")


def test_phone_events_and_extension_handlers_are_kept_apart(world: World, act_as: ActAs) -> None:
    api = act_as(world.manager)
    on_ext = api.post(f"/extension/{world.ext101.id}/event/", json=HANDLER).json()
    on_client = api.post("/client/@me/phone_events/", json=HANDLER)
    assert on_client.status_code == 201  # the same url on an extension is no duplicate
    assert [item["id"] for item in api.get("/client/@me/phone_events/").json()] == [
        on_client.json()["id"]
    ]
    assert_error(api.get(f"/client/@me/phone_events/{on_ext['id']}"), 404, "not_found")
    assert_error(api.delete(f"/client/@me/phone_events/{on_ext['id']}"), 404, "not_found")
    assert_error(
        api.get(f"/extension/{world.ext101.id}/event/{on_client.json()['id']}"), 404, "not_found"
    )
    assert_error(api.post("/client/@me/phone_events/", json=HANDLER), 409, "conflict")
    # Another client's phone_events: its id is not found here, its realm is refused.
    theirs = act_as(world.other_manager).post("/client/@me/phone_events/", json=HANDLER).json()
    assert_error(api.get(f"/client/@me/phone_events/{theirs['id']}"), 404, "not_found")
    assert_error(
        api.get(f"/client/{world.other_client.id}/phone_events/{theirs['id']}"),
        403,
        "access_denied",
    )


def test_phone_events_validation_and_access(
    services: Services, world: World, act_as: ActAs
) -> None:
    api = act_as(world.manager)
    base = "/client/@me/phone_events/"
    cases = [
        ({**HANDLER, "url": "ftp://crm.example.com/"}, "url"),
        ({**HANDLER, "method": "PATCH"}, "method"),
        ({**HANDLER, "event_type": "ring"}, "event_type"),
        ({**HANDLER, "secret": "mine"}, "secret"),
        ({"url": HANDLER["url"]}, "event_type"),
    ]
    for body, field in cases:
        refused = assert_error(api.post(base, json=body), 422, "invalid_input")
        assert field in refused["fields"], refused
    assert_error(api.post(base, data=HANDLER), 415, "unsupported_media_type")
    reader = act_as(world.reader, "all")
    assert reader.get(base).status_code == 200
    assert_error(reader.post(base, json=HANDLER), 403, "user_access_type_deny")
    assert_error(act_as(world.ext_user).get(base), 403, "access_denied")
    with services.database.read() as session:
        assert session.query(EventHandler).count() == 0
