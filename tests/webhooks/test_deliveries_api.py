"""``GET …/event/{id}/deliveries/`` and ``…/phone_events/{id}/deliveries/``: a handler's recent
attempts with time, status code or error, duration and next retry, through the live API."""

from __future__ import annotations

import asyncio

from callgate.events.models import EventType
from callgate.services import Services
from tests.api.conftest import ActAs
from tests.api.helpers import assert_error
from tests.support.factories import World
from tests.webhooks.helpers import delivering, event, fast
from tests.webhooks.receiver import Receiver, wait_until_async


def test_the_delivery_log_of_an_extension_handler_and_of_a_phone_events_handler(
    services: Services, world: World, act_as: ActAs
) -> None:
    manager = act_as(world.manager)
    settings = fast(services.settings)
    with Receiver(lambda r: 500 if r.index == 0 else 200) as receiver:
        ext_handler = manager.post(
            f"/extension/{world.ext101.id}/event/",
            json={"url": receiver.url("/ext"), "method": "POST", "event_type": "dial-in"},
        ).json()
        phones_handler = manager.post(
            f"/client/{world.client.id}/phone_events/",
            json={"url": receiver.url("/phones"), "method": "GET", "event_type": "hangup"},
        ).json()
        dial_in = event(world.ext101, EventType.DIAL_IN)
        hangup = event(world.ext101, EventType.HANGUP, duration_us=1_000_000)

        async def main() -> None:
            async with delivering(services, settings) as running:
                running.sink.emit(dial_in)
                running.sink.emit(hangup)
                # Each path answers its first request with 500: four attempts in all.
                await wait_until_async(lambda: running.worker.attempts == 4, 10, "4 attempts")

        asyncio.run(asyncio.wait_for(main(), 30))

    path = f"/extension/{world.ext101.id}/event/{ext_handler['id']}/deliveries/"
    answer = manager.get(path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-total-count"] == "2"
    log = answer.json()
    # Newest first.
    assert {item["event_id"] for item in log} == {dial_in.event_id}
    assert [item["attempt"] for item in log] == [2, 1]
    latest, first = log
    assert latest["status_code"] == 200 and latest["next_retry"] is None
    assert (first["status_code"], first["error"]) == (500, None)
    assert first["next_retry"] is not None and first["next_retry"] >= first["time"]
    assert latest["delivery_state"] == "delivered" and first["delivery_state"] == "delivered"
    for item in log:
        assert item["event_type"] == "dial-in" and item["call_id"] == dial_in.call_id
        assert item["error"] is None and item["duration_ms"] >= 0
        assert len(item["time"]) == len("2026-01-01 00:00:00")

    phones = f"/client/{world.client.id}/phone_events/{phones_handler['id']}/deliveries/"
    phone_log = manager.get(phones).json()
    assert [item["event_id"] for item in phone_log] == [hangup.event_id] * 2
    assert [item["status_code"] for item in phone_log] == [200, 500]

    # Paging, and a read-only user may read the log.
    page = act_as(world.reader, level="all").get(path, params={"per_page": 1, "page": 2})
    assert page.status_code == 200 and [i["attempt"] for i in page.json()] == [1]


def test_the_delivery_log_is_found_only_under_the_handlers_owner(
    services: Services, world: World, act_as: ActAs
) -> None:
    manager = act_as(world.manager)
    created = manager.post(
        f"/extension/{world.ext102.id}/event/",
        json={"url": "http://127.0.0.1:9/x", "method": "POST", "event_type": "answer"},
    ).json()
    assert (
        manager.get(f"/extension/{world.ext102.id}/event/{created['id']}/deliveries/").json() == []
    )
    assert_error(
        manager.get(f"/extension/{world.ext101.id}/event/{created['id']}/deliveries/"),
        404,
        "not_found",
    )
    assert_error(
        manager.get(f"/client/{world.client.id}/phone_events/{created['id']}/deliveries/"),
        404,
        "not_found",
    )
    assert_error(
        act_as(world.other_manager).get(
            f"/extension/{world.ext102.id}/event/{created['id']}/deliveries/"
        ),
        403,
        "access_denied",
    )
