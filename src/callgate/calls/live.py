"""The contracts between the call engine (``callgate.pbx``) and the rest of Callgate.

No web framework and no SIP here: plain values and two protocols.

* :class:`CallEvent` — what the engine raises on every call state change (SPEC §6). The engine
  hands each one to an :class:`EventSink` (``emit`` never blocks and never raises); the webhook
  outbox (``callgate.events``) is the production sink, tests collect them in a list.
* :class:`LiveCall`, :class:`CallbackRequest` and :class:`CallControl` — what the API's
  ``callback`` and ``current_calls`` routes ask of the engine. The engine implements
  ``CallControl`` in its own process; the API reaches it directly (same process) or over the
  control channel (``callgate sip`` in a process of its own).

Identifiers (SPEC §6): ``call_id`` is the same for the whole call (every leg, every event — it is
also the ``call_uuid`` of the call-history row); ``sub_call_id`` names one leg; ``call_api_id``
names the call for ``current_calls`` (PUT/DELETE). All three are opaque strings of at most 36
characters.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from callgate.events.models import EventType


class CallStatus(enum.StrEnum):
    """SPEC §6 ``CallStatus``: CALLING on dial events, ANSWER on answer, the outcome on hangup."""

    CALLING = "CALLING"
    ANSWER = "ANSWER"
    BUSY = "BUSY"
    NOANSWER = "NOANSWER"
    CANCEL = "CANCEL"
    CONGESTION = "CONGESTION"
    CHANUNAVAIL = "CHANUNAVAIL"


def new_event_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class CallEvent:
    """One call event about one extension (the handlers of that extension and its client's
    ``phone_events`` receive it).

    ``extension_id`` is whose event this is: for ``dial-out`` the caller, for ``dial-in`` the
    callee, for ``answer``/``hangup`` one event per extension involved (each with its own
    ``sub_call_id``). Events about no extension (a trunk leg) are not raised.
    """

    event_type: EventType
    client_id: int
    extension_id: int
    call_id: str
    sub_call_id: str
    call_api_id: str
    call_flow: str  # "in" | "out" (from this extension's point of view)
    call_status: CallStatus
    event_time: dt.datetime  # aware UTC
    caller_id_num: str = ""
    caller_id_name: str = ""
    called_number: str = ""
    called_did: str = ""
    called_extension: str = ""
    called_extension_id: int | None = None
    caller_extension: str = ""
    caller_extension_id: int | None = None
    duration_us: int | None = None  # hangup only: from init to hangup
    rec_id: str | None = None  # hangup of a recorded call: the record uuid
    callback_id: str | None = None  # calls started by the callback API
    event_id: str = field(default_factory=new_event_id)

    def fields(self) -> dict[str, str]:
        """The request fields with the names and value formats of SPEC §6 (empty ones omitted
        only where the original omits them: Duration, RecID, CallBackID)."""
        out = {
            "EventType": str(self.event_type),
            "CallID": self.call_id,
            "SubCallID": self.sub_call_id,
            "CallAPIID": self.call_api_id,
            "CallerIDNum": self.caller_id_num,
            "CallerIDName": self.caller_id_name,
            "CalledDID": self.called_did,
            "CalledExtension": self.called_extension,
            "CalledExtensionID": str(self.called_extension_id or ""),
            "CallerExtension": self.caller_extension,
            "CallerExtensionID": str(self.caller_extension_id or ""),
            "CalledNumber": self.called_number,
            "CallFlow": self.call_flow,
            "CallStatus": str(self.call_status),
            "EventTime": str(_micros(self.event_time)),
        }
        if self.duration_us is not None:
            out["Duration"] = str(self.duration_us)
        if self.rec_id:
            out["RecID"] = self.rec_id
        if self.callback_id:
            out["CallBackID"] = self.callback_id
        return out


def _micros(moment: dt.datetime) -> int:
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


class EventSink(Protocol):
    def emit(self, event: CallEvent) -> None:
        """Take an event; must not block the event loop and must not raise."""
        ...


class ListSink:
    """An :class:`EventSink` that keeps events in memory (tests, and a PBX without delivery)."""

    def __init__(self) -> None:
        self.events: list[CallEvent] = []

    def emit(self, event: CallEvent) -> None:
        self.events.append(event)


@dataclass(frozen=True)
class LiveCall:
    """A call in progress as ``current_calls`` shows it (SPEC §5), seen from ``extension_id``."""

    call_api_id: str
    call_id: str
    client_id: int
    call_flow: str  # "in" | "out"
    caller_id_name: str
    caller_id_number: str
    called_number: str
    extension_id: int | None
    init_time: dt.datetime
    answer_time: dt.datetime | None = None
    record_uuid: str | None = None
    state: str = "ringing"  # "ringing" | "answered" | "held"
    # every extension taking part (the call shows in each one's current_calls)
    extension_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class CallbackRequest:
    """``POST /extension/{id}/callback/``: ring every ``src_num`` (numbers as that extension
    would dial them), first to answer wins, then dial ``dst_num`` and bridge."""

    client_id: int
    extension_id: int
    src_num: Sequence[str]
    dst_num: str
    caller_id_name: str | None = None
    caller_id_number: str | None = None
    call_duration: int | None = None  # seconds, then the PBX hangs up
    wait_for_pickup: int = 30  # seconds the src phones ring


@dataclass(frozen=True)
class Originated:
    call_api_id: str
    call_id: str


class CallAction(enum.StrEnum):
    TRANSFER = "transfer"
    HOLD = "hold"
    OFFHOLD = "offhold"


class CallControl(Protocol):
    """What the API asks of the call engine. Errors are ``callgate.common.errors`` exceptions:
    ``NotFound`` (no such live call in this scope), ``InvalidInput`` (a number that routes
    nowhere, an action not possible in the call's state), ``Conflict`` (e.g. hold while held)."""

    async def current_calls(self, client_id: int, extension_id: int | None) -> list[LiveCall]:
        """Live calls of a client, or of one extension (calls it takes part in)."""
        ...

    async def originate(self, request: CallbackRequest) -> Originated: ...

    async def act(
        self,
        client_id: int,
        extension_id: int | None,
        call_api_id: str,
        action: CallAction,
        send_dst: str | None = None,
    ) -> None:
        """``transfer`` (blind, to ``send_dst``), ``hold``, ``offhold`` on a live call."""
        ...

    async def hangup(self, client_id: int, extension_id: int | None, call_api_id: str) -> None: ...
