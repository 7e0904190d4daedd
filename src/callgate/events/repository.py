"""Storage of event handlers: those of one extension, or a client's ``phone_events``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from callgate.events.models import EventHandler


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
