"""Queries on the call history: one row per finished call."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from callgate.calls.models import CallRecord


@dataclass(frozen=True)
class CallFilter:
    """Which calls a list shows. ``end`` is exclusive; ``client_id`` is always set."""

    client_id: int
    extension_id: int | None = None
    flow: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions = [CallRecord.client_id == self.client_id]
        if self.extension_id is not None:
            conditions.append(CallRecord.extension_id == self.extension_id)
        if self.flow is not None:
            conditions.append(CallRecord.flow == self.flow)
        if self.start is not None:
            conditions.append(CallRecord.init_time >= self.start)
        if self.end is not None:
            conditions.append(CallRecord.init_time < self.end)
        return conditions


class CallRecordRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def find(
        self, where: CallFilter, *, newest_first: bool, offset: int, limit: int
    ) -> Sequence[CallRecord]:
        # call_uuid breaks ties so that pages never overlap when init times are equal.
        if newest_first:
            order = (CallRecord.init_time.desc(), CallRecord.call_uuid.desc())
        else:
            order = (CallRecord.init_time.asc(), CallRecord.call_uuid.asc())
        return self.session.scalars(
            select(CallRecord)
            .where(*where.conditions())
            .order_by(*order)
            .offset(offset)
            .limit(limit)
        ).all()

    def count(self, where: CallFilter) -> int:
        count = self.session.scalar(
            select(func.count()).select_from(CallRecord).where(*where.conditions())
        )
        return int(count or 0)

    def get(self, call_uuid: str) -> CallRecord | None:
        return self.session.get(CallRecord, call_uuid)

    def add(self, record: CallRecord) -> None:
        self.session.add(record)
        self.session.flush()
