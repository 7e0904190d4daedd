"""The state machine of an outgoing fax job, as one transition table.

::

    queued ──dial──▶ dialing ──connect──▶ sending ──succeed──▶ sent
      │                 │                    │
      │                 └──────fail──────────┴──▶ failed ──requeue (sender, attempts left)──▶ queued
      └──────────────── cancel (queued, dialing, sending) ──▶ cancelled
    failed | cancelled ──retry (API)──▶ queued

Nothing else moves a job: the service applies ``next_state`` and stores what it returns, and an
event the table does not list for the current state is ``IllegalTransition`` (409 at the API),
whose sentence says which states allow it. A job may also fail while still queued (a document
the sender cannot convert never dials).
"""

from __future__ import annotations

import enum

from callgate.common.errors import Conflict


class FaxState(enum.StrEnum):
    QUEUED = "queued"
    DIALING = "dialing"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class FaxEvent(enum.StrEnum):
    DIAL = "dial"  # the sender takes the job and places the call
    CONNECT = "connect"  # the far end answered as a fax; pages are being sent
    SUCCEED = "succeed"  # every page went through
    FAIL = "fail"  # the attempt ended without success (with a reason)
    CANCEL = "cancel"  # the API cancels the job
    RETRY = "retry"  # the API queues a failed or cancelled job again, attempts reset
    REQUEUE = "requeue"  # the sender queues a failed job again while it has attempts left


TRANSITIONS: dict[tuple[FaxState, FaxEvent], FaxState] = {
    (FaxState.QUEUED, FaxEvent.DIAL): FaxState.DIALING,
    (FaxState.DIALING, FaxEvent.CONNECT): FaxState.SENDING,
    (FaxState.SENDING, FaxEvent.SUCCEED): FaxState.SENT,
    (FaxState.QUEUED, FaxEvent.FAIL): FaxState.FAILED,
    (FaxState.DIALING, FaxEvent.FAIL): FaxState.FAILED,
    (FaxState.SENDING, FaxEvent.FAIL): FaxState.FAILED,
    (FaxState.QUEUED, FaxEvent.CANCEL): FaxState.CANCELLED,
    (FaxState.DIALING, FaxEvent.CANCEL): FaxState.CANCELLED,
    (FaxState.SENDING, FaxEvent.CANCEL): FaxState.CANCELLED,
    (FaxState.FAILED, FaxEvent.RETRY): FaxState.QUEUED,
    (FaxState.CANCELLED, FaxEvent.RETRY): FaxState.QUEUED,
    (FaxState.FAILED, FaxEvent.REQUEUE): FaxState.QUEUED,
}

_DOING = {
    FaxEvent.DIAL: "dialed",
    FaxEvent.CONNECT: "start sending",
    FaxEvent.SUCCEED: "be marked sent",
    FaxEvent.FAIL: "be marked failed",
    FaxEvent.CANCEL: "be cancelled",
    FaxEvent.RETRY: "be retried",
    FaxEvent.REQUEUE: "be queued again",
}


class IllegalTransition(Conflict):
    """An event the table does not allow in the job's current state."""

    def __init__(self, state: FaxState, event: FaxEvent) -> None:
        allowed = states_allowing(event)
        listed = " or ".join([", ".join(allowed[:-1]), allowed[-1]] if allowed[:-1] else allowed)
        super().__init__(f"A {state} fax job cannot {_DOING[event]}; only a {listed} job can.")
        self.state = state
        self.event = event


def states_allowing(event: FaxEvent) -> list[str]:
    return [str(state) for (state, on), _ in TRANSITIONS.items() if on is event]


def next_state(state: str, event: FaxEvent) -> FaxState:
    """The state after ``event``; ``IllegalTransition`` when the table has no such move."""
    current = FaxState(state)
    try:
        return TRANSITIONS[(current, event)]
    except KeyError:
        raise IllegalTransition(current, event) from None


def is_active(state: str) -> bool:
    """A job the sender is (or will be) working on: it can still be cancelled."""
    return (FaxState(state), FaxEvent.CANCEL) in TRANSITIONS
