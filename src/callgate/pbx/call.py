"""The state of one call, with no I/O: who takes part, where the call is, how it ended.

The B2BUA (:mod:`callgate.pbx.b2bua`) owns the SIP dialogs and media legs; this module holds what
the rest of Callgate sees of a call and derives it from plain values:

* :class:`CallState` and the :data:`TRANSITIONS` table — the only ways a call moves
  (``ROUTING`` → ``RINGING`` → ``ANSWERED`` ⇄ ``TRANSFERRING`` → ``ENDED``);
* :class:`Outcome` — how a call ended, and :data:`OUTCOMES`, what each one means for the SIP
  answer to the caller, the ``CallStatus`` of the hangup events, the history ``result`` and its
  ``hangup_cause``;
* :class:`Call` with its :class:`Participant` list — builds the call events of SPEC §6
  (:meth:`Call.dial_out`, :meth:`Call.dial_in`, :meth:`Call.answer_events`,
  :meth:`Call.hangup_events`), the ``current_calls`` view (:meth:`Call.live`) and the
  call-history row (:meth:`Call.finished`).

Time is always passed in (``now``, an aware UTC datetime).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass, field

from callgate.calls.live import CallEvent, CallStatus, LiveCall
from callgate.calls.models import CallFlow, CallResult
from callgate.calls.service import FinishedCall
from callgate.events.models import EventType


class CallState(enum.Enum):
    ROUTING = "routing"  # the caller's INVITE is being authenticated and routed
    RINGING = "ringing"  # a callee is being called
    ANSWERED = "answered"  # two parties are bridged
    TRANSFERRING = "transferring"  # one party left, the other waits for a new callee
    ENDED = "ended"


class Step(enum.Enum):
    RING = "ring"
    ANSWER = "answer"
    TRANSFER = "transfer"
    FAIL = "fail"  # ended before any answer (busy, no answer, cancel, unavailable…)
    HANGUP = "hangup"  # a party hung up, or the PBX ended the call


TRANSITIONS: dict[CallState, dict[Step, CallState]] = {
    CallState.ROUTING: {
        Step.RING: CallState.RINGING,
        Step.FAIL: CallState.ENDED,
        Step.HANGUP: CallState.ENDED,
    },
    CallState.RINGING: {
        Step.RING: CallState.RINGING,  # forwarded to another number
        Step.ANSWER: CallState.ANSWERED,
        Step.FAIL: CallState.ENDED,
        Step.HANGUP: CallState.ENDED,
    },
    CallState.ANSWERED: {
        Step.TRANSFER: CallState.TRANSFERRING,
        Step.HANGUP: CallState.ENDED,
    },
    CallState.TRANSFERRING: {
        Step.RING: CallState.TRANSFERRING,
        Step.ANSWER: CallState.ANSWERED,
        Step.FAIL: CallState.ENDED,
        Step.HANGUP: CallState.ENDED,
    },
    CallState.ENDED: {},
}


class InvalidTransition(ValueError):
    """A step the call's state does not allow (a bug in the caller, or a race it must absorb)."""


class Outcome(enum.Enum):
    ANSWERED = "answered"
    BUSY = "busy"
    NOANSWER = "noanswer"
    CANCEL = "cancel"
    UNAVAILABLE = "unavailable"  # the callee has no registered phone
    NOT_FOUND = "not_found"  # the number routes nowhere
    CONGESTION = "congestion"  # the callee side failed (5xx/6xx, timeout, no codec)
    ERROR = "error"  # the PBX failed while handling the call


@dataclass(frozen=True)
class OutcomeInfo:
    status: CallStatus  # CallStatus of the hangup events
    result: CallResult  # call-history result
    cause: str  # call-history hangup_cause
    sip_status: int  # the final answer to a caller still waiting (not used for ANSWERED)
    sip_reason: str


OUTCOMES: dict[Outcome, OutcomeInfo] = {
    Outcome.ANSWERED: OutcomeInfo(
        CallStatus.ANSWER, CallResult.ANSWERED, "normal_clearing", 200, "OK"
    ),
    Outcome.BUSY: OutcomeInfo(CallStatus.BUSY, CallResult.BUSY, "user_busy", 486, "Busy Here"),
    Outcome.NOANSWER: OutcomeInfo(
        CallStatus.NOANSWER,
        CallResult.NOT_ANSWERED,
        "no_answer",
        480,
        "Temporarily Unavailable (No Answer)",
    ),
    Outcome.CANCEL: OutcomeInfo(
        CallStatus.CANCEL, CallResult.NOT_ANSWERED, "originator_cancel", 487, "Request Terminated"
    ),
    Outcome.UNAVAILABLE: OutcomeInfo(
        CallStatus.CHANUNAVAIL,
        CallResult.FAILED,
        "unregistered",
        480,
        "Temporarily Unavailable (Not Registered)",
    ),
    Outcome.NOT_FOUND: OutcomeInfo(
        CallStatus.CHANUNAVAIL, CallResult.FAILED, "unallocated_number", 404, "Not Found"
    ),
    Outcome.CONGESTION: OutcomeInfo(
        CallStatus.CONGESTION,
        CallResult.FAILED,
        "normal_temporary_failure",
        503,
        "Service Unavailable",
    ),
    Outcome.ERROR: OutcomeInfo(
        CallStatus.CONGESTION, CallResult.FAILED, "system_error", 500, "Server Internal Error"
    ),
}


def outcome_of_status(status: int) -> Outcome:
    """What a callee's final failure response means for the call."""
    if status in (486, 600, 603):
        return Outcome.BUSY
    if status in (408, 480):
        return Outcome.NOANSWER
    if status == 487:
        return Outcome.CANCEL
    if status in (404, 484, 604):
        return Outcome.NOT_FOUND
    return Outcome.CONGESTION


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Party:
    """One side of a call: an extension of the client, or an outside number (trunk)."""

    client_id: int
    number: str  # the extension's short number, or the outside number
    name: str = ""  # display name (extension label, or the caller's display name)
    extension_id: int | None = None
    username: str = ""  # SIP user name "00012*101" of a phone extension
    record_enabled: bool = False
    codecs: tuple[str, ...] = ("PCMU", "PCMA")  # the phone's allowed codecs, preferred first

    @property
    def is_extension(self) -> bool:
        return self.extension_id is not None


@dataclass(eq=False)
class Participant:
    party: Party
    caller: bool  # the party that placed the call (flow "out" from its point of view)
    sub_call_id: str = field(default_factory=new_id)
    dialled: bool = False  # its dial event was raised: it gets answer/hangup events
    answered: bool = False
    left: bool = False  # hung up or transferred away: its hangup event is out


@dataclass(eq=False)
class Call:
    """One call from the first INVITE (or callback request) to the last BYE."""

    client_id: int
    flow: CallFlow
    caller: Party
    called_number: str
    init_time: dt.datetime
    did_number: str = ""
    callback_id: str | None = None
    call_id: str = field(default_factory=new_id)
    call_api_id: str = field(default_factory=new_id)
    state: CallState = CallState.ROUTING
    answer_time: dt.datetime | None = None
    hangup_time: dt.datetime | None = None
    outcome: Outcome | None = None
    record_uuid: str | None = None
    held: bool = False
    participants: list[Participant] = field(default_factory=list)
    first_callee: Party | None = None  # for the history row's to_username

    def __post_init__(self) -> None:
        if not self.participants:
            self.participants.append(Participant(self.caller, caller=True))

    # ------------------------------------------------------------------ state

    def step(self, step: Step) -> CallState:
        target = TRANSITIONS[self.state].get(step)
        if target is None:
            raise InvalidTransition(f"{step.value} is not possible in state {self.state.value}")
        self.state = target
        return target

    def can(self, step: Step) -> bool:
        return step in TRANSITIONS[self.state]

    @property
    def ended(self) -> bool:
        return self.state is CallState.ENDED

    # ------------------------------------------------------------------ parties

    @property
    def caller_participant(self) -> Participant:
        return self.participants[0]

    def add_callee(self, party: Party) -> Participant:
        participant = Participant(party, caller=False)
        self.participants.append(participant)
        if self.first_callee is None:
            self.first_callee = party
        return participant

    def participant(self, party: Party) -> Participant | None:
        for participant in self.participants:
            if participant.party == party and not participant.left:
                return participant
        return None

    @property
    def current_callee(self) -> Participant | None:
        for participant in reversed(self.participants):
            if not participant.caller and not participant.left:
                return participant
        return None

    @property
    def extension_ids(self) -> tuple[int, ...]:
        seen: list[int] = []
        for p in self.participants:
            ext = p.party.extension_id
            if ext is not None and ext not in seen and not p.left:
                seen.append(ext)
        return tuple(seen)

    # ------------------------------------------------------------------ events

    def _event(
        self,
        participant: Participant,
        event_type: EventType,
        status: CallStatus,
        now: dt.datetime,
        duration_us: int | None = None,
    ) -> CallEvent:
        assert participant.party.extension_id is not None
        callee = self.current_callee or next(
            (p for p in reversed(self.participants) if not p.caller), None
        )
        if not participant.caller:
            callee = participant
        called = callee.party if callee is not None else None
        caller = self.caller
        return CallEvent(
            event_type=event_type,
            client_id=self.client_id,
            extension_id=participant.party.extension_id,
            call_id=self.call_id,
            sub_call_id=participant.sub_call_id,
            call_api_id=self.call_api_id,
            call_flow="out" if participant.caller else "in",
            call_status=status,
            event_time=now,
            caller_id_num=caller.number,
            caller_id_name=caller.name,
            called_number=self.called_number,
            called_did=self.did_number,
            called_extension=called.number if called and called.is_extension else "",
            called_extension_id=called.extension_id if called else None,
            caller_extension=caller.number if caller.is_extension else "",
            caller_extension_id=caller.extension_id,
            duration_us=duration_us,
            rec_id=self.record_uuid if event_type is EventType.HANGUP else None,
            callback_id=self.callback_id,
        )

    def dial_out(self, now: dt.datetime) -> list[CallEvent]:
        """``dial-out`` for the caller, when the call starts (none for an outside caller)."""
        participant = self.caller_participant
        if not participant.party.is_extension or participant.dialled:
            return []
        participant.dialled = True
        return [self._event(participant, EventType.DIAL_OUT, CallStatus.CALLING, now)]

    def dial_in(self, participant: Participant, now: dt.datetime) -> list[CallEvent]:
        """``dial-in`` for a callee extension when its phones start ringing."""
        if not participant.party.is_extension or participant.dialled:
            return []
        participant.dialled = True
        return [self._event(participant, EventType.DIAL_IN, CallStatus.CALLING, now)]

    def answer_events(self, now: dt.datetime) -> list[CallEvent]:
        """``answer`` for every dialled participant not yet answered: the caller first."""
        out = []
        for participant in self.participants:
            if participant.left or participant.answered:
                continue
            participant.answered = True
            if participant.dialled:
                out.append(self._event(participant, EventType.ANSWER, CallStatus.ANSWER, now))
        return out

    def leave(
        self, participant: Participant, now: dt.datetime, status: CallStatus = CallStatus.ANSWER
    ) -> list[CallEvent]:
        """``hangup`` for one participant leaving a call that goes on (transfer, forward)."""
        if participant.left:
            return []
        participant.left = True
        if not participant.dialled:
            return []
        duration = _micros(now - self.init_time)
        return [self._event(participant, EventType.HANGUP, status, now, duration)]

    def hangup_events(self, now: dt.datetime) -> list[CallEvent]:
        """``hangup`` for every dialled participant still in the call, the caller first."""
        info = OUTCOMES[self.outcome or Outcome.ERROR]
        duration = _micros(now - self.init_time)
        out = []
        for participant in self.participants:
            if participant.left:
                continue
            participant.left = True
            if participant.dialled:
                out.append(self._event(participant, EventType.HANGUP, info.status, now, duration))
        return out

    # ------------------------------------------------------------------ views

    def end(self, outcome: Outcome, now: dt.datetime) -> None:
        """Fix the outcome (the first one wins) and the hangup time."""
        if self.outcome is None:
            self.outcome = outcome
        if self.hangup_time is None:
            self.hangup_time = now

    def live(self) -> LiveCall:
        """The ``current_calls`` view, seen from the caller (or, for flow ``in``, the callee)."""
        caller_view = self.flow is not CallFlow.IN
        extension_id = self.caller.extension_id
        if not caller_view:
            callee = self.current_callee
            extension_id = callee.party.extension_id if callee else None
        if self.state is CallState.ANSWERED:
            state = "held" if self.held else "answered"
        elif self.state is CallState.TRANSFERRING:
            state = "held"  # the party that stays hears music while the new number rings
        else:
            state = "ringing"
        return LiveCall(
            call_api_id=self.call_api_id,
            call_id=self.call_id,
            client_id=self.client_id,
            call_flow="out" if caller_view else "in",
            caller_id_name=self.caller.name,
            caller_id_number=self.caller.number,
            called_number=self.called_number,
            extension_id=extension_id,
            init_time=self.init_time,
            answer_time=self.answer_time,
            record_uuid=self.record_uuid,
            state=state,
            extension_ids=self.extension_ids,
        )

    def finished(self) -> FinishedCall:
        """The call-history row (call it once the call has ended)."""
        assert self.hangup_time is not None
        info = OUTCOMES[self.outcome or Outcome.ERROR]
        first = self.first_callee
        last = next((p.party for p in reversed(self.participants) if not p.caller), None)
        if self.flow is CallFlow.IN:
            extension_id = first.extension_id if first else None
        else:
            extension_id = self.caller.extension_id
        bridged = last.number if last is not None and last != first and self.answer_time else ""
        return FinishedCall(
            client_id=self.client_id,
            flow=str(self.flow),
            init_time=self.init_time,
            answer_time=self.answer_time,
            hangup_time=self.hangup_time,
            result=str(info.result),
            extension_id=extension_id,
            from_username=self.caller.number,
            from_screen_name=self.caller.name,
            to_username=first.number if first else self.called_number,
            bridged_username=bridged,
            did_number=self.did_number,
            hangup_cause=info.cause,
            record_uuid=self.record_uuid,
            callback_id=self.callback_id,
            call_uuid=self.call_id,
        )


def _micros(delta: dt.timedelta) -> int:
    return max(0, (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)
