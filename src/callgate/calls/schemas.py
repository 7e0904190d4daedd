"""Wire shapes of the call history, and the query parameters that lists of calls and their
artefacts (recordings, voicemail) share: a time window, paging and order.

A row has the original API's field names (``call_uuid``, ``init_time_gmt``,
``bridged_duration``, …); ``answer_time_gmt`` is SPEC's name for the moment the call was
answered, and ``bridged_time_gmt`` (the original's name for it) carries the same value.

Also the shapes of live calls: the ``callback`` body and the ``current_calls`` items and actions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from callgate.api.schemas import MAX_PER_PAGE, TIME_FORMAT, format_optional_time, format_time
from callgate.calls.live import LiveCall
from callgate.calls.models import CallRecord
from callgate.common.errors import InvalidInput

Order = Literal["asc", "desc"]
FlowName = Literal["in", "out", "internal"]
# Ids are 32-bit integer columns; a larger number in a filter would be a database error.
MAX_ID = 2**31 - 1
TIME_HELP = "UTC, YYYY-MM-DD HH:MM:SS (ISO 8601 is accepted too; an offset is converted to UTC)"


def parse_time(name: str, value: str) -> dt.datetime:
    """A query-string time as an aware UTC datetime; ``InvalidInput`` naming ``name`` if bad."""
    text = value.strip()
    try:
        parsed = dt.datetime.strptime(text, TIME_FORMAT)
    except ValueError:
        try:
            parsed = dt.datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise InvalidInput(
                f"{name} must be a UTC time as YYYY-MM-DD HH:MM:SS or ISO 8601.",
                {name: "is not a valid time"},
            ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


@dataclass(frozen=True)
class TimeWindow:
    """``start`` inclusive, ``end`` exclusive (either may be open)."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None


def time_window(
    start_datetime: Annotated[
        str | None, Query(description=f"Calls from this time on; {TIME_HELP}.")
    ] = None,
    end_datetime: Annotated[
        str | None,
        Query(description=f"Calls up to this time, inclusive to the second; {TIME_HELP}."),
    ] = None,
) -> TimeWindow:
    start = None if start_datetime is None else parse_time("start_datetime", start_datetime)
    end = None if end_datetime is None else parse_time("end_datetime", end_datetime)
    if end is not None:
        # "up to 23:59:59" means the whole of that second, as integrations page by day.
        step = dt.timedelta(seconds=1) if end.microsecond == 0 else dt.timedelta(microseconds=1)
        end = end + step
    if start is not None and end is not None and start >= end:
        raise InvalidInput(
            "start_datetime must be before end_datetime.",
            {"start_datetime": "is after end_datetime", "end_datetime": "is before start_datetime"},
        )
    return TimeWindow(start, end)


@dataclass(frozen=True)
class PageRequest:
    page: int
    per_page: int
    order: Order

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def newest_first(self) -> bool:
        return self.order == "desc"


def page_request(
    page: Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1.")] = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE, description="Items per page.")] = 50,
    order: Annotated[Order, Query(description="By time: desc (newest first) or asc.")] = "desc",
) -> PageRequest:
    return PageRequest(page, per_page, order)


TimeWindowDep = Annotated[TimeWindow, Depends(time_window)]
PageRequestDep = Annotated[PageRequest, Depends(page_request)]


class CallOut(BaseModel):
    """One finished call."""

    call_uuid: str
    flow: str = Field(description="in | out | internal")
    init_time_gmt: str = Field(description="UTC time the call started")
    answer_time_gmt: str | None = Field(description="UTC time it was answered; null if never")
    bridged_time_gmt: str | None = Field(description="The same as answer_time_gmt")
    hangup_time_gmt: str
    duration: int = Field(description="Seconds from start to hang-up")
    bridged_duration: int = Field(description="Seconds from answer to hang-up (talk time)")
    from_username: str
    from_screen_name: str
    to_username: str
    bridged_username: str
    did_number: str | None
    result: str = Field(description="answered | busy | not answered | failed | voicemail")
    hangup_cause: str
    record_uuid: str | None
    extension_id: int | None
    client_owner_id: int
    callback_id: str | None

    @classmethod
    def of(cls, call: CallRecord) -> CallOut:
        answered = format_optional_time(call.answer_time)
        return cls(
            call_uuid=call.call_uuid,
            flow=call.flow,
            init_time_gmt=format_time(call.init_time),
            answer_time_gmt=answered,
            bridged_time_gmt=answered,
            hangup_time_gmt=format_time(call.hangup_time),
            duration=call.duration,
            bridged_duration=call.bridged_duration,
            from_username=call.from_username,
            from_screen_name=call.from_screen_name,
            to_username=call.to_username,
            bridged_username=call.bridged_username,
            did_number=call.did_number or None,
            result=call.result,
            hangup_cause=call.hangup_cause,
            record_uuid=call.record_uuid,
            extension_id=call.extension_id,
            client_owner_id=call.client_id,
            callback_id=call.callback_id,
        )


class CallHistoryPage(BaseModel):
    """A page of calls, in the original API's shape (the total is in X-Total-Count)."""

    page: int
    per_page: int
    order: Order
    call_history: list[CallOut]


# -- live calls: callback and current_calls ------------------------------------------------------

DIAL_PATTERN = r"^\+?[0-9]{1,32}$"
# A display name goes into a SIP From header: no control characters (CR/LF would inject
# headers), and none of the characters that would need quoting there.
NAME_PATTERN = r'^[^\x00-\x1f\x7f"\\<>]{1,64}$'
MAX_SOURCES = 10

DialNumber = Annotated[
    str,
    Field(
        min_length=1,
        max_length=33,
        pattern=DIAL_PATTERN,
        description="A number as the extension would dial it: 1-32 digits, optionally after +.",
    ),
]


def _one_or_many(value: object) -> object:
    # The original API took src_num as a list or as one number.
    return [value] if isinstance(value, str) else value


_DIAL_SCHEMA: dict[str, Any] = {"type": "string", "pattern": DIAL_PATTERN, "maxLength": 33}

SourceNumbers = Annotated[
    list[DialNumber],
    BeforeValidator(_one_or_many),
    Field(min_length=1, max_length=MAX_SOURCES),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "array",
                    "items": _DIAL_SCHEMA,
                    "minItems": 1,
                    "maxItems": MAX_SOURCES,
                },
                _DIAL_SCHEMA,
            ],
            "description": (
                f"The numbers to ring first (1-{MAX_SOURCES}; one number may be given as a "
                "string): all ring at once, the first to answer is connected to dst_num."
            ),
        }
    ),
]


class CallbackCreate(BaseModel):
    """``POST /extension/{id}/callback/``."""

    model_config = ConfigDict(extra="forbid")

    src_num: SourceNumbers
    dst_num: DialNumber
    caller_id_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=NAME_PATTERN,
        description="Caller name shown to dst_num (1-64 characters, no quotes, \\ < > or "
        "control characters); default: the extension's.",
    )
    caller_id_number: DialNumber | None = Field(
        default=None, description="Caller number shown to dst_num; default: the extension's."
    )
    call_duration: int | None = Field(
        default=None, ge=1, le=86_400, description="Seconds after which the PBX hangs up."
    )
    wait_for_pickup: int = Field(
        default=30, ge=1, le=600, description="Seconds the src_num phones ring."
    )

    @property
    def sources(self) -> list[str]:
        """src_num without repeats, in the order given."""
        return list(dict.fromkeys(self.src_num))


class CallbackCreated(BaseModel):
    call_api_id: str = Field(description="Use it with current_calls (PUT, DELETE).")
    call_id: str = Field(description="The call's id in events and its call_history call_uuid.")


class LiveCallOut(BaseModel):
    """A call in progress."""

    call_api_id: str
    call_id: str
    call_flow: str = Field(description="in | out, from the extension's point of view")
    caller_id_name: str
    caller_id_number: str
    called_number: str
    extension_id: int | None
    init_time_gmt: str = Field(description="UTC time the call started")
    answer_time_gmt: str | None = Field(description="UTC time it was answered; null if not yet")
    record_uuid: str | None
    state: str = Field(description="ringing | answered | held")

    @classmethod
    def of(cls, call: LiveCall) -> LiveCallOut:
        return cls(
            call_api_id=call.call_api_id,
            call_id=call.call_id,
            call_flow=call.call_flow,
            caller_id_name=call.caller_id_name,
            caller_id_number=call.caller_id_number,
            called_number=call.called_number,
            extension_id=call.extension_id,
            init_time_gmt=format_time(call.init_time),
            answer_time_gmt=format_optional_time(call.answer_time),
            record_uuid=call.record_uuid,
            state=call.state,
        )


class CallActionBody(BaseModel):
    """``PUT …/current_calls/{call_api_id}``."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(
        min_length=1,
        max_length=32,
        description="transfer (blind, to send_dst), hold or offhold. The original's other "
        "actions (attended_transfer, eavesdrop, whisper, conference, park, pickup, …) are "
        "answered 422: not supported yet.",
    )
    send_dst: DialNumber | None = Field(
        default=None, description="Where transfer sends the call; required for transfer."
    )


class ActionDone(BaseModel):
    status: Literal["success"] = "success"
