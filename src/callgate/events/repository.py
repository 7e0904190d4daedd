"""Storage of event handlers."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callgate.events.models import EventHandler


class EventHandlerRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def for_extension(self, extension_id: int, offset: int, limit: int) -> Sequence[EventHandler]:
        return self.session.scalars(
            select(EventHandler)
            .where(EventHandler.extension_id == extension_id)
            .order_by(EventHandler.id)
            .offset(offset)
            .limit(limit)
        ).all()

    def count_for_extension(self, extension_id: int) -> int:
        count = self.session.scalar(
            select(func.count())
            .select_from(EventHandler)
            .where(EventHandler.extension_id == extension_id)
        )
        return int(count or 0)

    def get(self, extension_id: int, handler_id: int) -> EventHandler | None:
        return self.session.scalar(
            select(EventHandler).where(
                EventHandler.id == handler_id, EventHandler.extension_id == extension_id
            )
        )

    def same_as(
        self, extension_id: int, url: str, method: str, event_type: str
    ) -> EventHandler | None:
        return self.session.scalar(
            select(EventHandler)
            .where(
                EventHandler.extension_id == extension_id,
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
