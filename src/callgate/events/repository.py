"""Storage of event handlers (those of one extension, or a client's ``phone_events``) and of the
webhook outbox (deliveries and their attempts)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from callgate.events.models import (
    DeliveryState,
    EventHandler,
    HandlerStatus,
    WebhookAttempt,
    WebhookDelivery,
)
from callgate.identity.models import Extension, ExtensionType


@dataclass(frozen=True)
class HandlerOwner:
    """Where handlers hang: one extension, or (``extension_id`` None) a client's phone_events."""

    client_id: int
    extension_id: int | None = None

    def owns(self) -> ColumnElement[bool]:
        if self.extension_id is None:
            return and_(
                EventHandler.client_id == self.client_id, EventHandler.extension_id.is_(None)
            )
        return EventHandler.extension_id == self.extension_id

    def __str__(self) -> str:
        if self.extension_id is None:
            return f"Client {self.client_id}'s phone_events"
        return f"Extension {self.extension_id}"


class EventHandlerRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def of(self, owner: HandlerOwner, offset: int, limit: int) -> Sequence[EventHandler]:
        return self.session.scalars(
            select(EventHandler)
            .where(owner.owns())
            .order_by(EventHandler.id)
            .offset(offset)
            .limit(limit)
        ).all()

    def count(self, owner: HandlerOwner) -> int:
        count = self.session.scalar(
            select(func.count()).select_from(EventHandler).where(owner.owns())
        )
        return int(count or 0)

    def get(self, owner: HandlerOwner, handler_id: int) -> EventHandler | None:
        return self.session.scalar(
            select(EventHandler).where(EventHandler.id == handler_id, owner.owns())
        )

    def same_as(
        self, owner: HandlerOwner, url: str, method: str, event_type: str
    ) -> EventHandler | None:
        return self.session.scalar(
            select(EventHandler)
            .where(
                owner.owns(),
                EventHandler.url == url,
                EventHandler.method == method,
                EventHandler.event_type == event_type,
            )
            .limit(1)
        )

    def add(self, handler: EventHandler) -> None:
        self.session.add(handler)
        self.session.flush()

    def delete(self, handler: EventHandler) -> None:
        self.session.delete(handler)
        self.session.flush()


# -- the webhook outbox ----------------------------------------------------------------------------
# SQLAlchemy Core on a connection: these run for every event and every attempt, in batches.

_deliveries = cast(Table, WebhookDelivery.__table__)
_attempts = cast(Table, WebhookAttempt.__table__)
_handlers = cast(Table, EventHandler.__table__)
_extensions = cast(Table, Extension.__table__)


@dataclass(frozen=True)
class MatchingHandler:
    id: int
    client_id: int
    extension_id: int | None
    event_type: str
    url: str


@dataclass(frozen=True)
class Claimed:
    """A delivery a worker holds the lease of, with what it needs to send it."""

    id: int
    lease: str
    event_id: str
    handler_id: int
    event_type: str
    payload: str
    raised_at: dt.datetime
    attempts: int  # made before this one
    url: str
    method: str
    secret: str
    handler_status: str


@dataclass(frozen=True)
class Recorded:
    """The outcome of one attempt, as the worker writes it back."""

    delivery_id: int
    lease: str
    handler_id: int
    number: int  # 1 for the delivery's first attempt
    attempted_at: dt.datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    state: DeliveryState
    next_attempt_at: dt.datetime | None  # when state is PENDING
    disable_handler: bool = False


class OutboxRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def matching_handlers(
        self, client_ids: Collection[int], event_types: Collection[str]
    ) -> list[MatchingHandler]:
        """Active handlers of these clients (their extensions' and their phone_events)."""
        rows = self.connection.execute(
            select(
                _handlers.c.id,
                _handlers.c.client_id,
                _handlers.c.extension_id,
                _handlers.c.event_type,
                _handlers.c.url,
            )
            .where(
                _handlers.c.client_id.in_(sorted(client_ids)),
                _handlers.c.event_type.in_(sorted(event_types)),
                _handlers.c.status == HandlerStatus.ACTIVE,
            )
            .order_by(_handlers.c.id)
        )
        return [MatchingHandler(*row) for row in rows]

    def phone_extensions(self, extension_ids: Collection[int]) -> set[int]:
        rows = self.connection.execute(
            select(_extensions.c.id).where(
                _extensions.c.id.in_(sorted(extension_ids)),
                _extensions.c.type == ExtensionType.PHONE,
            )
        )
        return {row[0] for row in rows}

    def add(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.connection.execute(insert(_deliveries), list(rows))

    def claim(
        self, lease: str, limit: int, now: dt.datetime, lease_until: dt.datetime
    ) -> list[Claimed]:
        """Take the lease of up to ``limit`` due deliveries, each the oldest pending one of its
        order key, and return them with their handlers.

        The conditional UPDATE is what makes this safe with several workers: a row whose lease
        another worker took in the meantime no longer matches and is not taken again.
        """
        candidate = _deliveries.alias("candidate")
        earlier = _deliveries.alias("earlier")
        due = (
            select(candidate.c.id)
            .where(
                candidate.c.state == DeliveryState.PENDING,
                candidate.c.next_attempt_at <= now,
                or_(candidate.c.lease_until.is_(None), candidate.c.lease_until < now),
                ~exists().where(
                    earlier.c.order_key == candidate.c.order_key,
                    earlier.c.state == DeliveryState.PENDING,
                    earlier.c.id < candidate.c.id,
                ),
            )
            .order_by(candidate.c.id)
            .limit(limit)
        )
        taken = self.connection.execute(
            update(_deliveries)
            .where(
                _deliveries.c.id.in_(due.scalar_subquery()),
                _deliveries.c.state == DeliveryState.PENDING,
                or_(_deliveries.c.lease_until.is_(None), _deliveries.c.lease_until < now),
            )
            .values(lease_owner=lease, lease_until=lease_until)
            .returning(
                _deliveries.c.id,
                _deliveries.c.event_id,
                _deliveries.c.handler_id,
                _deliveries.c.event_type,
                _deliveries.c.payload,
                _deliveries.c.raised_at,
                _deliveries.c.attempts,
            )
        ).all()
        if not taken:
            return []
        handlers = {
            row.id: row
            for row in self.connection.execute(
                select(
                    _handlers.c.id,
                    _handlers.c.url,
                    _handlers.c.method,
                    _handlers.c.signing_secret,
                    _handlers.c.status,
                ).where(_handlers.c.id.in_(sorted({row.handler_id for row in taken})))
            )
        }
        return [
            Claimed(
                id=row.id,
                lease=lease,
                event_id=row.event_id,
                handler_id=row.handler_id,
                event_type=row.event_type,
                payload=row.payload,
                raised_at=row.raised_at,
                attempts=row.attempts,
                url=handlers[row.handler_id].url,
                method=handlers[row.handler_id].method,
                secret=handlers[row.handler_id].signing_secret,
                handler_status=handlers[row.handler_id].status,
            )
            for row in sorted(taken, key=lambda row: row.id)
        ]

    def next_due(self, now: dt.datetime) -> dt.datetime | None:
        """When the next delivery may be claimed: the earliest due time of the oldest pending
        delivery of each order key, or the end of its lease while one is held."""
        earlier = _deliveries.alias("earlier")
        leased = and_(_deliveries.c.lease_until.is_not(None), _deliveries.c.lease_until > now)
        when = case((leased, _deliveries.c.lease_until), else_=_deliveries.c.next_attempt_at)
        earliest: dt.datetime | None = self.connection.scalar(
            select(func.min(when)).where(
                _deliveries.c.state == DeliveryState.PENDING,
                ~exists().where(
                    earlier.c.order_key == _deliveries.c.order_key,
                    earlier.c.state == DeliveryState.PENDING,
                    earlier.c.id < _deliveries.c.id,
                ),
            )
        )
        return earliest

    def record(self, outcomes: Sequence[Recorded], now: dt.datetime) -> None:
        """Write back attempts: the delivery's new state (only while the lease is still ours)
        and one attempt row each; 410 answers disable their handler and end its pending rows."""
        if not outcomes:
            return
        self.connection.execute(
            update(_deliveries)
            .where(
                _deliveries.c.id == bindparam("b_id"),
                _deliveries.c.lease_owner == bindparam("b_lease"),
                _deliveries.c.state == DeliveryState.PENDING,
            )
            .values(
                state=bindparam("b_state"),
                attempts=_deliveries.c.attempts + 1,
                next_attempt_at=bindparam("b_next"),
                lease_owner=None,
                lease_until=None,
                last_status=bindparam("b_status"),
                last_error=bindparam("b_error"),
                done_at=bindparam("b_done"),
            ),
            [
                {
                    "b_id": o.delivery_id,
                    "b_lease": o.lease,
                    "b_state": str(o.state),
                    "b_next": o.next_attempt_at or o.attempted_at,
                    "b_status": o.status_code,
                    "b_error": o.error,
                    "b_done": None if o.state == DeliveryState.PENDING else now,
                }
                for o in outcomes
            ],
        )
        # A delivery deleted meanwhile (its handler or extension was) keeps no log.
        still_there = set(
            self.connection.scalars(
                select(_deliveries.c.id).where(
                    _deliveries.c.id.in_(sorted({o.delivery_id for o in outcomes}))
                )
            )
        )
        outcomes = [o for o in outcomes if o.delivery_id in still_there]
        if not outcomes:
            return
        self.connection.execute(
            insert(_attempts),
            [
                {
                    "delivery_id": o.delivery_id,
                    "handler_id": o.handler_id,
                    "number": o.number,
                    "attempted_at": o.attempted_at,
                    "status_code": o.status_code,
                    "error": o.error,
                    "duration_ms": o.duration_ms,
                    "next_retry_at": o.next_attempt_at,
                }
                for o in outcomes
            ],
        )
        gone = sorted({o.handler_id for o in outcomes if o.disable_handler})
        if gone:
            self.connection.execute(
                update(_handlers)
                .where(_handlers.c.id.in_(gone))
                .values(status=HandlerStatus.DISABLED)
            )
            self.connection.execute(
                update(_deliveries)
                .where(
                    _deliveries.c.handler_id.in_(gone),
                    _deliveries.c.state == DeliveryState.PENDING,
                )
                .values(
                    state=DeliveryState.FAILED,
                    lease_owner=None,
                    lease_until=None,
                    last_error="handler disabled (410 Gone)",
                    done_at=now,
                )
            )

    def release(self, leases: Collection[str]) -> None:
        """Give back leases of deliveries not sent (a worker stopping), so they go out at once."""
        if leases:
            self.connection.execute(
                update(_deliveries)
                .where(
                    _deliveries.c.lease_owner.in_(sorted(leases)),
                    _deliveries.c.state == DeliveryState.PENDING,
                )
                .values(lease_owner=None, lease_until=None)
            )

    def prune(self, before: dt.datetime, limit: int) -> int:
        """Delete up to ``limit`` deliveries (and attempts) finished before ``before``."""
        ids = list(
            self.connection.scalars(
                select(_deliveries.c.id)
                .where(
                    _deliveries.c.state != DeliveryState.PENDING,
                    _deliveries.c.done_at < before,
                )
                .order_by(_deliveries.c.id)
                .limit(limit)
            )
        )
        if ids:
            self.connection.execute(delete(_attempts).where(_attempts.c.delivery_id.in_(ids)))
            self.connection.execute(delete(_deliveries).where(_deliveries.c.id.in_(ids)))
        return len(ids)


class AttemptRepository:
    """The delivery log of one handler, newest first (the deliveries API)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def of(
        self, handler_id: int, offset: int, limit: int
    ) -> Sequence[tuple[WebhookAttempt, WebhookDelivery]]:
        rows = self.session.execute(
            select(WebhookAttempt, WebhookDelivery)
            .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
            .where(WebhookAttempt.handler_id == handler_id)
            .order_by(WebhookAttempt.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [(attempt, delivery) for attempt, delivery in rows]

    def count(self, handler_id: int) -> int:
        count = self.session.scalar(
            select(func.count())
            .select_from(WebhookAttempt)
            .where(WebhookAttempt.handler_id == handler_id)
        )
        return int(count or 0)
