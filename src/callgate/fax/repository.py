"""Storage of received faxes and outgoing fax jobs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callgate.fax.models import FaxJob, ReceivedFax
from callgate.fax.states import FaxState


class FaxRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- received faxes --------------------------------------------------------------------------

    def received(
        self, extension_id: int, offset: int, limit: int, newest_first: bool
    ) -> Sequence[ReceivedFax]:
        if newest_first:
            order = (ReceivedFax.created_at.desc(), ReceivedFax.uuid.desc())
        else:
            order = (ReceivedFax.created_at.asc(), ReceivedFax.uuid.asc())
        return self.session.scalars(
            select(ReceivedFax)
            .where(ReceivedFax.extension_id == extension_id)
            .order_by(*order)
            .offset(offset)
            .limit(limit)
        ).all()

    def count_received(self, extension_id: int) -> int:
        count = self.session.scalar(
            select(func.count())
            .select_from(ReceivedFax)
            .where(ReceivedFax.extension_id == extension_id)
        )
        return int(count or 0)

    def received_one(self, extension_id: int, fax_uuid: str) -> ReceivedFax | None:
        return self.session.scalar(
            select(ReceivedFax).where(
                ReceivedFax.uuid == fax_uuid, ReceivedFax.extension_id == extension_id
            )
        )

    # -- outgoing jobs ---------------------------------------------------------------------------

    def jobs(
        self, extension_id: int, offset: int, limit: int, newest_first: bool
    ) -> Sequence[FaxJob]:
        order = FaxJob.id.desc() if newest_first else FaxJob.id.asc()
        return self.session.scalars(
            select(FaxJob)
            .where(FaxJob.extension_id == extension_id)
            .order_by(order)
            .offset(offset)
            .limit(limit)
        ).all()

    def count_jobs(self, extension_id: int) -> int:
        count = self.session.scalar(
            select(func.count()).select_from(FaxJob).where(FaxJob.extension_id == extension_id)
        )
        return int(count or 0)

    def job(
        self, job_id: int, extension_id: int | None = None, *, lock: bool = False
    ) -> FaxJob | None:
        """A job, locked against other writers with ``lock`` (the sender and the API race)."""
        query = select(FaxJob).where(FaxJob.id == job_id)
        if extension_id is not None:
            query = query.where(FaxJob.extension_id == extension_id)
        if lock:
            query = query.with_for_update()
        return self.session.scalar(query)

    def due_for_requeue(self, now: dt.datetime) -> Sequence[FaxJob]:
        """Failed jobs with attempts left whose retry time has come."""
        return self.session.scalars(
            select(FaxJob)
            .where(
                FaxJob.state == FaxState.FAILED,
                FaxJob.attempts < FaxJob.max_attempts,
                FaxJob.next_attempt_at.is_not(None),
                FaxJob.next_attempt_at <= now,
            )
            .order_by(FaxJob.id)
            .with_for_update()
        ).all()

    def oldest_queued(self) -> FaxJob | None:
        return self.session.scalar(
            select(FaxJob).where(FaxJob.state == FaxState.QUEUED).order_by(FaxJob.id).limit(1)
        )

    def add(self, row: FaxJob | ReceivedFax) -> None:
        self.session.add(row)
        self.session.flush()

    def delete(self, row: FaxJob | ReceivedFax) -> None:
        self.session.delete(row)
        self.session.flush()
