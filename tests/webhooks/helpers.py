"""Helpers of the webhook tests: call events, handlers, and the sink and worker together."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from callgate.calls.live import CallEvent, CallStatus
from callgate.common.clock import utcnow
from callgate.config import Settings
from callgate.events.delivery import DeliveryWorker, start_delivery
from callgate.events.models import EventType, WebhookAttempt, WebhookDelivery
from callgate.events.sink import OutboxSink
from callgate.identity.models import Extension
from callgate.services import Services

_calls = itertools.count(1)

STATUS = {
    EventType.DIAL_IN: CallStatus.CALLING,
    EventType.DIAL_OUT: CallStatus.CALLING,
    EventType.ANSWER: CallStatus.ANSWER,
    EventType.HANGUP: CallStatus.ANSWER,
    EventType.VOICEMAIL: CallStatus.ANSWER,
}


def new_call_id() -> str:
    return f"call-{next(_calls)}-{utcnow().timestamp():.0f}"


def event(
    extension: Extension,
    event_type: EventType = EventType.DIAL_IN,
    call_id: str | None = None,
    **extra: Any,
) -> CallEvent:
    fields: dict[str, Any] = {
        "event_type": event_type,
        "client_id": extension.client_id,
        "extension_id": extension.id,
        "call_id": call_id or new_call_id(),
        "sub_call_id": f"leg-{extension.id}",
        "call_api_id": "api-1",
        "call_flow": "in",
        "call_status": STATUS[event_type],
        "event_time": utcnow(),
        "caller_id_num": "102",
        "caller_id_name": "Bob",
        "called_number": extension.name,
        "called_extension": extension.name,
        "called_extension_id": extension.id,
    }
    fields.update(extra)
    return CallEvent(**fields)


def fast(settings: Settings, **changes: Any) -> Settings:
    """The test settings with retries in tens of milliseconds."""
    values: dict[str, Any] = {
        "webhook_retry_base": 0.05,
        "webhook_retry_cap": 0.2,
        "webhook_timeout": 2.0,
        "webhook_connect_timeout": 1.0,
        "webhook_poll_interval": 0.2,
        "webhook_concurrency": 16,
    }
    values.update(changes)
    return settings.model_copy(update=values)


def add_handler(
    services: Services,
    url: str,
    *,
    extension: Extension | None = None,
    client_id: int | None = None,
    event_type: str = "dial-in",
    method: str = "POST",
) -> tuple[int, str]:
    """A handler on ``extension`` (or the client's phone_events): its id and secret."""
    created = services.events.create(
        client_id=extension.client_id if extension is not None else client_id or 0,
        extension_id=extension.id if extension is not None else None,
        url=url,
        method=method,
        event_type=event_type,
    )
    return created.handler.id, created.secret


@dataclass
class Running:
    sink: OutboxSink
    worker: DeliveryWorker


@asynccontextmanager
async def delivering(services: Services, settings: Settings) -> AsyncIterator[Running]:
    """The outbox sink and a delivery worker, running on this event loop."""
    sink = OutboxSink(services.database, settings)
    await sink.start()
    worker = await start_delivery(settings, services.database)
    try:
        yield Running(sink, worker)
    finally:
        await sink.stop()
        await worker.stop()


def deliveries(services: Services) -> list[WebhookDelivery]:
    with services.database.read() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def attempts(services: Services) -> list[WebhookAttempt]:
    with services.database.read() as session:
        return list(session.scalars(select(WebhookAttempt).order_by(WebhookAttempt.id)))


def since(moment: dt.datetime) -> float:
    return (utcnow() - moment).total_seconds()
