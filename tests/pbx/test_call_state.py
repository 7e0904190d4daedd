"""The pure call state of ``callgate.pbx.call``: transitions, outcomes, events, views."""

from __future__ import annotations

import datetime as dt

import pytest

from callgate.calls.live import CallStatus
from callgate.calls.models import CallFlow, CallResult
from callgate.events.models import EventType
from callgate.pbx.call import (
    OUTCOMES,
    TRANSITIONS,
    Call,
    CallState,
    InvalidTransition,
    Outcome,
    Party,
    Step,
    outcome_of_status,
)

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
CALLER = Party(7, "101", "Alice", extension_id=1, username="00012*101")
CALLEE = Party(7, "102", "Bob", extension_id=2, username="00012*102")
OTHER = Party(7, "103", "", extension_id=3, username="00012*103")
OUTSIDE = Party(7, "+4930123456")


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def new_call(flow: CallFlow = CallFlow.INTERNAL, caller: Party = CALLER) -> Call:
    return Call(client_id=7, flow=flow, caller=caller, called_number="102", init_time=T0)


def test_transition_table_is_closed_and_ended_is_final() -> None:
    for state, steps in TRANSITIONS.items():
        assert set(steps.values()) <= set(CallState), state
    assert TRANSITIONS[CallState.ENDED] == {}
    call = new_call()
    for step in (Step.RING, Step.ANSWER, Step.TRANSFER, Step.RING, Step.ANSWER, Step.HANGUP):
        call.step(step)
    assert call.ended
    for step in Step:
        assert not call.can(step)
        with pytest.raises(InvalidTransition):
            call.step(step)


@pytest.mark.parametrize(
    ("state", "step"),
    [
        (CallState.ROUTING, Step.ANSWER),  # nobody rang yet
        (CallState.RINGING, Step.TRANSFER),  # only answered calls are transferred
        (CallState.ANSWERED, Step.FAIL),  # an answered call ends with a hangup
        (CallState.ANSWERED, Step.RING),
    ],
)
def test_steps_a_state_does_not_allow(state: CallState, step: Step) -> None:
    call = new_call()
    call.state = state
    with pytest.raises(InvalidTransition, match=step.value):
        call.step(step)
    assert call.state is state


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (486, Outcome.BUSY),
        (600, Outcome.BUSY),
        (603, Outcome.BUSY),
        (480, Outcome.NOANSWER),
        (408, Outcome.NOANSWER),
        (487, Outcome.CANCEL),
        (404, Outcome.NOT_FOUND),
        (500, Outcome.CONGESTION),
        (503, Outcome.CONGESTION),
        (488, Outcome.CONGESTION),
    ],
)
def test_callee_failures_map_to_outcomes(status: int, outcome: Outcome) -> None:
    assert outcome_of_status(status) is outcome


def test_every_outcome_has_a_sip_answer_status_and_history_result() -> None:
    assert set(OUTCOMES) == set(Outcome)
    assert OUTCOMES[Outcome.BUSY].sip_status == 486
    assert OUTCOMES[Outcome.CANCEL].sip_status == 487
    assert OUTCOMES[Outcome.UNAVAILABLE].status is CallStatus.CHANUNAVAIL
    for info in OUTCOMES.values():
        assert info.result in set(CallResult) and info.cause and len(info.cause) <= 40


def test_answered_call_events_in_order_with_fields() -> None:
    call = new_call()
    assert [e.event_type for e in call.dial_out(at(0))] == [EventType.DIAL_OUT]
    assert call.dial_out(at(0)) == []  # once only
    callee = call.add_callee(CALLEE)
    call.step(Step.RING)
    (dial_in,) = call.dial_in(callee, at(0.1))
    call.answer_time = at(2)
    call.step(Step.ANSWER)
    answers = call.answer_events(at(2))
    call.end(Outcome.ANSWERED, at(12))
    call.step(Step.HANGUP)
    hangups = call.hangup_events(at(12))
    events = [*answers, *hangups]
    assert [(e.event_type, e.extension_id) for e in events] == [
        (EventType.ANSWER, 1),
        (EventType.ANSWER, 2),
        (EventType.HANGUP, 1),
        (EventType.HANGUP, 2),
    ]
    assert dial_in.call_flow == "in" and answers[0].call_flow == "out"
    assert {e.call_id for e in [dial_in, *events]} == {call.call_id}
    assert answers[0].sub_call_id != answers[1].sub_call_id
    fields = hangups[1].fields()
    assert fields["Duration"] == str(12_000_000) and fields["CallStatus"] == "ANSWER"
    assert fields["CallerIDNum"] == "101" and fields["CallerIDName"] == "Alice"
    assert fields["CalledExtension"] == "102" and fields["CalledExtensionID"] == "2"
    assert call.hangup_events(at(13)) == []  # everyone has left


def test_unanswered_call_history_and_statuses() -> None:
    call = new_call()
    call.dial_out(at(0))
    callee = call.add_callee(CALLEE)
    call.step(Step.RING)
    call.dial_in(callee, at(0))
    call.end(Outcome.BUSY, at(3))
    call.end(Outcome.CANCEL, at(4))  # the first outcome and time stay
    call.step(Step.FAIL)
    assert [e.call_status for e in call.hangup_events(at(3))] == [CallStatus.BUSY] * 2
    row = call.finished()
    assert (row.result, row.hangup_cause, row.answer_time) == ("busy", "user_busy", None)
    assert (row.flow, row.extension_id, row.to_username) == ("internal", 1, "102")
    assert row.hangup_time == at(3) and row.call_uuid == call.call_id


def test_unregistered_callee_gets_no_events() -> None:
    call = new_call()
    call.dial_out(at(0))
    call.add_callee(CALLEE)  # never dialled: its phones were not there
    call.end(Outcome.UNAVAILABLE, at(0.1))
    (only,) = call.hangup_events(at(0.1))
    assert (only.extension_id, only.call_status) == (1, CallStatus.CHANUNAVAIL)


def test_transfer_keeps_the_call_and_names_who_was_bridged() -> None:
    call = new_call()
    call.dial_out(at(0))
    first = call.add_callee(CALLEE)
    call.step(Step.RING)
    call.dial_in(first, at(0))
    call.answer_time = at(1)
    call.step(Step.ANSWER)
    call.answer_events(at(1))
    call.step(Step.TRANSFER)
    (left,) = call.leave(first, at(5))
    assert (left.event_type, left.extension_id, left.call_status) == (
        EventType.HANGUP,
        2,
        CallStatus.ANSWER,
    )
    second = call.add_callee(OTHER)
    call.step(Step.RING)
    assert call.state is CallState.TRANSFERRING
    call.dial_in(second, at(5))
    call.step(Step.ANSWER)
    assert [e.extension_id for e in call.answer_events(at(6))] == [3]
    assert call.extension_ids == (1, 3)
    live = call.live()
    assert (live.state, live.extension_id, live.call_flow) == ("answered", 1, "out")
    call.end(Outcome.ANSWERED, at(9))
    assert [e.extension_id for e in call.hangup_events(at(9))] == [1, 3]
    row = call.finished()
    assert (row.to_username, row.bridged_username, row.result) == ("102", "103", "answered")


def test_incoming_call_from_a_trunk_is_seen_from_the_callee() -> None:
    call = new_call(CallFlow.IN, caller=OUTSIDE)
    call.did_number = "4930999"
    assert call.dial_out(at(0)) == []  # an outside caller raises no events
    callee = call.add_callee(CALLEE)
    (dial_in,) = call.dial_in(callee, at(0))
    assert dial_in.called_did == "4930999" and dial_in.caller_extension_id is None
    assert dial_in.caller_id_num == "+4930123456"
    live = call.live()
    assert (live.call_flow, live.extension_id, live.state) == ("in", 2, "ringing")
    call.end(Outcome.NOANSWER, at(30))
    row = call.finished()
    assert (row.flow, row.extension_id, row.did_number) == ("in", 2, "4930999")
    assert row.result == "not answered"


def test_held_and_recorded_calls_in_the_live_view() -> None:
    call = new_call()
    call.add_callee(CALLEE)
    call.step(Step.RING)
    call.step(Step.ANSWER)
    call.held = True
    call.record_uuid = "r1"
    live = call.live()
    assert (live.state, live.record_uuid) == ("held", "r1")
    call.end(Outcome.ANSWERED, at(1))
    assert all(e.rec_id == "r1" for e in call.hangup_events(at(1)))
