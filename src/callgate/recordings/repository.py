"""Queries on recordings; a list item carries its call's history row when there is one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from callgate.calls.models import CallRecord
from callgate.recordings.models import Recording


@dataclass(frozen=True)
class RecordingFilter:
    """Which recordings a list shows; ``end`` is exclusive."""

    client_id: int
    extension_id: int | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions = [Recording.client_id == self.client_id]
        if self.extension_id is not None:
            conditions.append(Recording.extension_id == self.extension_id)
        if self.start is not None:
            conditions.append(Recording.created_at >= self.start)
        if self.end is not None:
            conditions.append(Recording.created_at < self.end)
        return conditions


class RecordingRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def find(
        self, where: RecordingFilter, *, newest_first: bool, offset: int, limit: int
    ) -> Sequence[tuple[Recording, CallRecord | None]]:
        if newest_first:
            order = (Recording.created_at.desc(), Recording.record_uuid.desc())
        else:
            order = (Recording.created_at.asc(), Recording.record_uuid.asc())
        rows = self.session.execute(
            select(Recording, CallRecord)
            .outerjoin(CallRecord, CallRecord.call_uuid == Recording.call_uuid)
            .where(*where.conditions())
            .order_by(*order)
            .offset(offset)
            .limit(limit)
        ).all()
        return [(recording, call) for recording, call in rows]

    def count(self, where: RecordingFilter) -> int:
        count = self.session.scalar(
            select(func.count()).select_from(Recording).where(*where.conditions())
        )
        return int(count or 0)

    def get(self, record_uuid: str) -> Recording | None:
        return self.session.get(Recording, record_uuid)

    def call_of(self, recording: Recording) -> CallRecord | None:
        if recording.call_uuid is None:
            return None
        return self.session.get(CallRecord, recording.call_uuid)

    def add(self, recording: Recording) -> None:
        self.session.add(recording)
        self.session.flush()

    def delete(self, recording: Recording) -> None:
        self.session.delete(recording)
        self.session.flush()
