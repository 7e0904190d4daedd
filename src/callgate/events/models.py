"""Event handlers, and the webhook outbox: one row per call event and handler to deliver, and
one row per delivery attempt (docs/webhooks.md)."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callgate.common.clock import utcnow
from callgate.common.db import Base, UTCDateTime


class EventType(enum.StrEnum):
    DIAL_IN = "dial-in"
    DIAL_OUT = "dial-out"
    ANSWER = "answer"
    HANGUP = "hangup"
    VOICEMAIL = "voicemail"


class HandlerStatus(enum.StrEnum):
    ACTIVE = "active"
    # The receiver answered 410 Gone; changing the handler (PUT) makes it active again.
    DISABLED = "disabled"


class EventHandler(Base):
    """A handler on one extension, or (``extension_id`` null) a client's ``phone_events``."""

    __tablename__ = "event_handlers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    extension_id: Mapped[int | None] = mapped_column(
        ForeignKey("extensions.id", ondelete="CASCADE"), nullable=True, index=True
    )
    url: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(String(8), default="POST")
    event_type: Mapped[str] = mapped_column(String(16))
    # The signing key must be usable to compute HMACs, so it cannot be stored as a hash.
    signing_secret: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=HandlerStatus.ACTIVE)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DeliveryState(enum.StrEnum):
    PENDING = "pending"  # waiting for its first attempt or a retry
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # final: a 3xx/4xx, 410, a refused destination, or out of retries


class WebhookDelivery(Base):
    """One call event to deliver to one handler (the outbox).

    ``order_key`` is a digest of the destination URL and the call: rows with the same key are
    sent one after another in ``id`` order, so that the events of one call reach one URL in the
    order they happened. ``lease_owner``/``lease_until`` mark a row a worker is sending; another
    worker may take it only once the lease has run out (a crashed worker's lease expires).
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_order", "order_key", "state", "id"),
        Index("ix_webhook_deliveries_done", "state", "done_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64))
    handler_id: Mapped[int] = mapped_column(
        ForeignKey("event_handlers.id", ondelete="CASCADE"), index=True
    )
    event_type: Mapped[str] = mapped_column(String(16))
    call_id: Mapped[str] = mapped_column(String(36))
    order_key: Mapped[str] = mapped_column(String(64))
    # The fields, form-encoded once: the POST body or the query string, exactly as signed.
    payload: Mapped[str] = mapped_column(Text)
    raised_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(32), nullable=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class WebhookAttempt(Base):
    """One HTTP request made for a delivery (or one refused before it was made)."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_handler", "handler_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    handler_id: Mapped[int] = mapped_column(ForeignKey("event_handlers.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)  # 1 for the delivery's first attempt
    attempted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)
    next_retry_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
