"""The call history (SPEC §5): one row per finished call, written by the SIP engine when a call
ends (``record``) and read through the API with filters and paging.

A call belongs to one client and, usually, one extension: the one that placed it (``out``,
``internal``) or that it reached (``in``). An extension's history is the calls whose
``extension_id`` is that extension.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from callgate.api.schemas import Page
from callgate.calls.models import CallFlow, CallRecord, CallResult
from callgate.calls.repository import CallFilter, CallRecordRepository
from callgate.common.db import Database
from callgate.common.errors import Conflict, InvalidInput, NotFound
from callgate.identity.models import Extension

# Free-text fields come from SIP headers the PBX does not control; a history row is worth more
# than the tail of an over-long display name, so they are cut to the column, not refused.
_TEXT_LIMITS = {
    "from_username": 64,
    "from_screen_name": 100,
    "to_username": 64,
    "bridged_username": 64,
    "did_number": 32,
    "hangup_cause": 40,
}


def _seconds(start: dt.datetime, end: dt.datetime) -> int:
    return max(0, round((end - start).total_seconds()))


@dataclass(frozen=True)
class FinishedCall:
    """What the engine knows when a call ends."""

    client_id: int
    flow: str
    init_time: dt.datetime
    hangup_time: dt.datetime
    result: str
    answer_time: dt.datetime | None = None
    extension_id: int | None = None
    from_username: str = ""
    from_screen_name: str = ""
    to_username: str = ""
    bridged_username: str = ""
    did_number: str = ""
    hangup_cause: str = ""
    record_uuid: str | None = None
    callback_id: str | None = None
    call_uuid: str | None = None


def _check(call: FinishedCall) -> None:
    if call.flow not in set(CallFlow):
        raise InvalidInput(f"flow must be one of {', '.join(CallFlow)}.", {"flow": call.flow})
    if call.result not in set(CallResult):
        raise InvalidInput(
            f"result must be one of {', '.join(CallResult)}.", {"result": call.result}
        )
    times = {"init_time": call.init_time, "hangup_time": call.hangup_time}
    if call.answer_time is not None:
        times["answer_time"] = call.answer_time
    for name, value in times.items():
        if value.tzinfo is None:
            raise InvalidInput(f"{name} must be an aware datetime.", {name: "naive datetime"})
    if call.hangup_time < call.init_time:
        raise InvalidInput("hangup_time is before init_time.", {"hangup_time": "before init"})
    if call.answer_time is not None and not (
        call.init_time <= call.answer_time <= call.hangup_time
    ):
        raise InvalidInput(
            "answer_time must lie between init_time and hangup_time.",
            {"answer_time": "outside the call"},
        )
    if call.call_uuid is not None and not 0 < len(call.call_uuid) <= 36:
        raise InvalidInput("call_uuid must be 1 to 36 characters.", {"call_uuid": "length"})


def _values(call: FinishedCall) -> dict[str, Any]:
    """The history row of a finished call (checked; free texts cut to their columns)."""
    _check(call)
    texts = {name: getattr(call, name)[:limit] for name, limit in _TEXT_LIMITS.items()}
    return {
        "call_uuid": call.call_uuid or uuid.uuid4().hex,
        "client_id": call.client_id,
        "extension_id": call.extension_id,
        "flow": call.flow,
        "init_time": call.init_time,
        "answer_time": call.answer_time,
        "hangup_time": call.hangup_time,
        "duration": _seconds(call.init_time, call.hangup_time),
        "bridged_duration": (
            0 if call.answer_time is None else _seconds(call.answer_time, call.hangup_time)
        ),
        "result": call.result,
        "record_uuid": call.record_uuid,
        "callback_id": call.callback_id,
        **texts,
    }


class CallHistoryService:
    def __init__(self, database: Database) -> None:
        self.database = database

    def record(self, call: FinishedCall) -> CallRecord:
        """Write the history row of a finished call; ``Conflict`` if its uuid is taken."""
        row = CallRecord(**_values(call))
        try:
            with self.database.write() as session:
                if call.extension_id is not None:
                    extension = session.get(Extension, call.extension_id)
                    if extension is None or extension.client_id != call.client_id:
                        raise InvalidInput(
                            f"Extension {call.extension_id} is not an extension of client "
                            f"{call.client_id}.",
                            {"extension_id": "not in this client"},
                        )
                repo = CallRecordRepository(session)
                if repo.get(row.call_uuid) is not None:
                    raise Conflict(f"Call {row.call_uuid} is already in the history.")
                repo.add(row)
        except IntegrityError:
            # Two writers of one uuid at once (or a client deleted meanwhile).
            raise Conflict(f"Call {row.call_uuid} could not be stored.") from None
        return row

    def record_many(self, calls: list[FinishedCall]) -> None:
        """Write the rows of several finished calls in one transaction: all or none (a bad or
        duplicate one fails the lot; ``common/batch.py`` then writes them one by one)."""
        rows = [_values(call) for call in calls]
        if not rows:
            return
        extension_ids = {call.extension_id for call in calls if call.extension_id is not None}
        with self.database.write_connection() as connection:
            owners: dict[int, int] = {}
            if extension_ids:
                found = connection.execute(
                    select(Extension.id, Extension.client_id).where(Extension.id.in_(extension_ids))
                )
                owners = {ext_id: client_id for ext_id, client_id in found}
            for call in calls:
                if call.extension_id is not None and owners.get(call.extension_id) != (
                    call.client_id
                ):
                    raise InvalidInput(
                        f"Extension {call.extension_id} is not an extension of client "
                        f"{call.client_id}.",
                        {"extension_id": "not in this client"},
                    )
            connection.execute(insert(CallRecord), rows)

    def list(
        self, where: CallFilter, *, page: int, per_page: int, newest_first: bool = True
    ) -> Page[CallRecord]:
        with self.database.read() as session:
            repo = CallRecordRepository(session)
            items = repo.find(
                where, newest_first=newest_first, offset=(page - 1) * per_page, limit=per_page
            )
            total = repo.count(where)
        return Page(items, total, page, per_page)

    def get(self, client_id: int, call_uuid: str, extension_id: int | None = None) -> CallRecord:
        """A call of this client (and, if given, of this extension); ``NotFound`` otherwise."""
        with self.database.read() as session:
            call = CallRecordRepository(session).get(call_uuid)
        if (
            call is None
            or call.client_id != client_id
            or (extension_id is not None and call.extension_id != extension_id)
        ):
            raise NotFound(f"There is no call {call_uuid} here.")
        return call
