"""Wire shapes of event handlers: ``{id, url, method, event_type}`` as in the original API,
plus the extension, the handler's state and its creation time."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from callgate.api.schemas import format_optional_time, format_time
from callgate.events.models import EventHandler, WebhookAttempt, WebhookDelivery
from callgate.events.service import url_problem

HandlerMethod = Literal["GET", "POST"]
HandlerEventType = Literal["dial-in", "dial-out", "answer", "hangup", "voicemail"]


def _valid_url(value: str | None) -> str | None:
    if value is not None:
        problem = url_problem(value)
        if problem is not None:
            raise ValueError(problem)
    return value


class EventHandlerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="Absolute http:// or https:// URL the PBX calls.")
    method: HandlerMethod = "POST"
    event_type: HandlerEventType

    _url = field_validator("url")(_valid_url)


class EventHandlerUpdate(BaseModel):
    """The fields to change; those left out keep their values."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    method: HandlerMethod | None = None
    event_type: HandlerEventType | None = None

    _url = field_validator("url")(_valid_url)


class EventHandlerOut(BaseModel):
    id: int
    extension_id: int | None
    url: str
    method: str
    event_type: str
    status: str
    created: str = Field(description="UTC, YYYY-MM-DD HH:MM:SS")

    @classmethod
    def of(cls, handler: EventHandler) -> EventHandlerOut:
        return cls(
            id=handler.id,
            extension_id=handler.extension_id,
            url=handler.url,
            method=handler.method,
            event_type=handler.event_type,
            status=handler.status,
            created=format_time(handler.created_at),
        )


class EventHandlerCreated(EventHandlerOut):
    secret: str = Field(
        description="Key of the X-Callgate-Signature HMAC; shown only in this response."
    )


class DeliveryAttemptOut(BaseModel):
    """One request made to a handler for one call event (or one refused before it was made)."""

    event_id: str = Field(description="The X-Callgate-Event-Id of the event.")
    event_type: str
    call_id: str
    attempt: int = Field(description="1 for the first request of this event to this handler.")
    time: str = Field(description="When the request was made, UTC, YYYY-MM-DD HH:MM:SS")
    status_code: int | None = Field(description="The receiver's HTTP status; null on an error.")
    error: str | None = Field(
        description="timeout, connection failed, refused: …, or null when there was an answer."
    )
    duration_ms: int
    next_retry: str | None = Field(
        description="When this attempt scheduled the next one, UTC; null when it was the last."
    )
    delivery_state: str = Field(description="The event's delivery now: pending, delivered, failed.")

    @classmethod
    def of(cls, attempt: WebhookAttempt, delivery: WebhookDelivery) -> DeliveryAttemptOut:
        return cls(
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            call_id=delivery.call_id,
            attempt=attempt.number,
            time=format_time(attempt.attempted_at),
            status_code=attempt.status_code,
            error=attempt.error,
            duration_ms=attempt.duration_ms,
            next_retry=format_optional_time(attempt.next_retry_at),
            delivery_state=delivery.state,
        )
