"""Queries on voicemail messages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from callgate.voicemail.models import Voicemail


@dataclass(frozen=True)
class VoicemailFilter:
    """Which messages a list shows; ``end`` is exclusive."""

    client_id: int
    extension_id: int | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions = [Voicemail.client_id == self.client_id]
        if self.extension_id is not None:
            conditions.append(Voicemail.extension_id == self.extension_id)
        if self.start is not None:
            conditions.append(Voicemail.created_at >= self.start)
        if self.end is not None:
            conditions.append(Voicemail.created_at < self.end)
        return conditions


class VoicemailRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def find(
        self, where: VoicemailFilter, *, newest_first: bool, offset: int, limit: int
    ) -> Sequence[Voicemail]:
        if newest_first:
            order = (Voicemail.created_at.desc(), Voicemail.uuid.desc())
        else:
            order = (Voicemail.created_at.asc(), Voicemail.uuid.asc())
        return self.session.scalars(
            select(Voicemail)
            .where(*where.conditions())
            .order_by(*order)
            .offset(offset)
            .limit(limit)
        ).all()

    def count(self, where: VoicemailFilter) -> int:
        count = self.session.scalar(
            select(func.count()).select_from(Voicemail).where(*where.conditions())
        )
        return int(count or 0)

    def get(self, uuid: str) -> Voicemail | None:
        return self.session.get(Voicemail, uuid)

    def add(self, message: Voicemail) -> None:
        self.session.add(message)
        self.session.flush()

    def delete(self, message: Voicemail) -> None:
        self.session.delete(message)
        self.session.flush()
