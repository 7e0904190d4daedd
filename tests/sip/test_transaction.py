"""Transactions: a client layer and a server layer talking through bytes with a fake clock."""

from __future__ import annotations

import itertools

import pytest

from callgate.sip.message import Request, Response
from callgate.sip.parser import make_response
from callgate.sip.transaction import (
    TRANSITIONS,
    DeliverRequest,
    Kind,
    Send,
    State,
    Terminated,
    TimedOut,
    TimerConfig,
    TransactionKey,
    build_cancel,
)
from tests.sip.wire import BOB, Wire, make_request


def _server_key(wire: Wire, method: str) -> TransactionKey:
    for action in wire.bob.actions:
        if isinstance(action, DeliverRequest) and action.request.method == method:
            assert action.key is not None
            return action.key
    raise AssertionError(f"no {method} delivered")


def _start(wire: Wire, method: str) -> tuple[TransactionKey, Request]:
    request = make_request(method, transport="TCP" if wire.reliable else "UDP")
    key, actions = wire.alice.layer.send_request(request, BOB, wire.now, reliable=wire.reliable)
    wire.run(wire.alice, actions)
    return key, request


def _respond(wire: Wire, method: str, status: int, to_tag: str = "bob-tag") -> None:
    key = _server_key(wire, method)
    request = wire.bob.layer.get(key)
    assert request is not None
    response = make_response(request.request, status, to_tag=to_tag)
    if 200 <= status < 300 and method == "INVITE":
        response.headers.add("Contact", "<sip:102@127.0.0.1:5072>")
    wire.run(wire.bob, wire.bob.layer.send_response(key, response, wire.now))


def test_states_are_named_as_in_the_rfc() -> None:
    assert set(TRANSITIONS[Kind.INVITE_CLIENT]) == {
        State.CALLING,
        State.PROCEEDING,
        State.COMPLETED,
        State.ACCEPTED,
    }
    assert State.CONFIRMED.value == "Confirmed" and State.TRYING.value == "Trying"


def test_non_invite_retransmits_at_t1_doubling_capped_at_t2_then_times_out_f() -> None:
    wire = Wire(drop=lambda m: isinstance(m, Request))  # the request never arrives
    key, _ = _start(wire, "OPTIONS")
    wire.advance_to(40.0)
    times = wire.send_times("alice", "OPTIONS")
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert gaps[:4] == [0.5, 1.0, 2.0, 4.0]
    assert set(gaps[4:]) == {4.0}  # capped at T2
    assert times[-1] < 32.0
    assert TimedOut(key, "F") in wire.alice.actions and Terminated(key) in wire.alice.actions
    assert wire.alice.actions.index(TimedOut(key, "F")) < wire.alice.actions.index(Terminated(key))
    assert wire.alice.layer.next_deadline() is None


def test_invite_retransmits_doubling_without_cap_and_times_out_b_at_64_t1() -> None:
    wire = Wire(drop=lambda m: isinstance(m, Request))
    key, _ = _start(wire, "INVITE")
    wire.advance_to(31.9)
    assert wire.alice.layer.state(key) is State.CALLING
    times = wire.send_times("alice", "INVITE")
    assert times == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    wire.advance_to(32.0)
    assert TimedOut(key, "B") in wire.alice.actions
    assert wire.alice.layer.state(key) is State.TERMINATED


def test_custom_timers() -> None:
    wire = Wire(timers=TimerConfig(t1=0.1, t2=0.3, t4=1.0), drop=lambda m: isinstance(m, Request))
    key, _ = _start(wire, "OPTIONS")
    wire.advance_to(6.4)
    assert TimedOut(key, "F") in wire.alice.actions
    assert wire.send_times("alice", "OPTIONS")[:4] == pytest.approx([0.0, 0.1, 0.3, 0.6])


def test_no_retransmissions_on_a_reliable_transport() -> None:
    wire = Wire(reliable=True, drop=lambda m: isinstance(m, Request))
    key, _ = _start(wire, "INVITE")
    wire.advance_to(40.0)
    assert wire.send_times("alice", "INVITE") == [0.0]
    assert TimedOut(key, "B") in wire.alice.actions


def test_non_invite_exchange_and_server_absorbs_retransmissions() -> None:
    wire = Wire()
    key, _ = _start(wire, "OPTIONS")
    server_key = _server_key(wire, "OPTIONS")
    wire.advance_to(0.5)  # client retransmits before the TU answered: absorbed in Trying
    assert wire.send_times("alice", "OPTIONS") == [0.0, 0.5]
    assert [m for m in wire.bob.delivered if isinstance(m, Request)].__len__() == 1
    _respond(wire, "OPTIONS", 200)
    assert wire.alice.layer.state(key) is State.COMPLETED
    assert wire.bob.layer.state(server_key) is State.COMPLETED
    assert [m.status for m in wire.alice.delivered if isinstance(m, Response)] == [200]
    wire.advance_to(5.5)  # Timer K = T4 after the 200 at 0.5
    assert wire.alice.layer.state(key) is State.TERMINATED
    wire.advance_to(32.5)  # Timer J = 64*T1
    assert wire.bob.layer.state(server_key) is State.TERMINATED
    assert wire.alice.layer.next_deadline() is None and wire.bob.layer.next_deadline() is None


def test_lost_final_response_is_retransmitted_on_request_retransmission() -> None:
    lost: list[int] = []

    def drop(message: Request | Response) -> bool:
        if isinstance(message, Response) and not lost:
            lost.append(message.status)
            return True
        return False

    wire = Wire(drop=drop)
    key, _ = _start(wire, "OPTIONS")
    _respond(wire, "OPTIONS", 200)
    assert wire.alice.layer.state(key) is State.TRYING
    wire.advance_to(0.5)
    assert wire.alice.layer.state(key) is State.COMPLETED
    assert wire.send_times("bob", "200 OPTIONS") == [0.0, 0.5]


def test_invite_failure_is_acked_by_the_transaction_and_g_h_i_timers() -> None:
    acks: list[int] = []
    wire = Wire(
        drop=lambda m: (
            isinstance(m, Request) and m.method == "ACK" and len(acks) < 2 and not acks.append(1)
        )
    )
    key, _ = _start(wire, "INVITE")
    server_key = _server_key(wire, "INVITE")
    assert [m.status for m in wire.alice.delivered if isinstance(m, Response)] == [100]
    assert wire.alice.layer.state(key) is State.PROCEEDING
    _respond(wire, "INVITE", 486)
    assert wire.alice.layer.state(key) is State.COMPLETED
    assert wire.bob.layer.state(server_key) is State.COMPLETED
    wire.advance_to(1.6)  # two ACKs lost: 486 retransmitted at T1 and 2T1 (Timer G)
    assert wire.send_times("bob", "486 INVITE") == [0.0, 0.5, 1.5]
    assert wire.bob.layer.state(server_key) is State.CONFIRMED
    ack = [m for m in wire.sent if isinstance(m[2], Request) and m[2].method == "ACK"][-1][2]
    assert ack.to.tag == "bob-tag" and ack.cseq.method == "ACK" and ack.cseq.seq == 1
    assert ack.top_via.branch == key.branch
    # the failure was delivered to the TU once
    assert [m.status for m in wire.alice.delivered if isinstance(m, Response)] == [100, 486]
    wire.advance_to(1.5 + 5.0)  # Timer I = T4
    assert wire.bob.layer.state(server_key) is State.TERMINATED
    wire.advance_to(32.0)  # Timer D
    assert wire.alice.layer.state(key) is State.TERMINATED


def test_timer_h_when_the_ack_never_comes() -> None:
    wire = Wire(drop=lambda m: isinstance(m, Request) and m.method == "ACK")
    _start(wire, "INVITE")
    server_key = _server_key(wire, "INVITE")
    _respond(wire, "INVITE", 603)
    wire.advance_to(32.0)
    assert TimedOut(server_key, "H") in wire.bob.actions
    gaps = wire.send_times("bob", "603 INVITE")
    assert gaps[:5] == [0.0, 0.5, 1.5, 3.5, 7.5] and gaps[5] == 11.5  # capped at T2


def test_2xx_moves_both_sides_to_accepted_rfc6026() -> None:
    wire = Wire(drop=lambda m: isinstance(m, Request) and m.method == "ACK")
    key, _ = _start(wire, "INVITE")
    server_key = _server_key(wire, "INVITE")
    _respond(wire, "INVITE", 180)
    _respond(wire, "INVITE", 200)
    assert wire.alice.layer.state(key) is State.ACCEPTED
    assert wire.bob.layer.state(server_key) is State.ACCEPTED
    # no ACK from the transaction: the TU (dialog) sends it; the server keeps retransmitting 2xx
    assert not any(isinstance(m, Request) and m.method == "ACK" for _, _, m in wire.sent)
    wire.advance_to(2.0)
    assert wire.send_times("bob", "200 INVITE") == [0.0, 0.5, 1.5]
    # every 2xx (first and retransmissions) reaches the client TU while in Accepted
    assert [m.status for m in wire.alice.delivered if isinstance(m, Response)] == [
        100,
        180,
        200,
        200,
        200,
    ]
    wire.advance_to(32.0)
    assert wire.alice.layer.state(key) is State.TERMINATED  # Timer M
    assert TimedOut(server_key, "L") in wire.bob.actions  # never ACKed: the TU should BYE


def test_a_late_180_after_the_200_is_absorbed() -> None:
    wire = Wire()
    key, _ = _start(wire, "INVITE")
    _respond(wire, "INVITE", 200)
    late = make_response(
        wire.bob.layer.get(_server_key(wire, "INVITE")).request,  # type: ignore[union-attr]
        180,
        to_tag="bob-tag",
    )
    before = len(wire.alice.delivered)
    wire.run(wire.alice, wire.alice.layer.handle_incoming(late, BOB, wire.now))
    assert len(wire.alice.delivered) == before
    assert wire.alice.layer.state(key) is State.ACCEPTED


def test_ack_for_2xx_stops_the_server_retransmissions() -> None:
    wire = Wire()
    _start(wire, "INVITE")
    server_key = _server_key(wire, "INVITE")
    _respond(wire, "INVITE", 200)
    ack = make_request("ACK", seq=1)
    ack.headers.set("To", "<sip:102@127.0.0.1>;tag=bob-tag")
    wire.run(wire.alice, [Send(ack, BOB)])
    assert any(
        isinstance(a, DeliverRequest) and a.request.method == "ACK" and a.key is None
        for a in wire.bob.actions
    )
    wire.advance_to(40.0)
    assert wire.send_times("bob", "200 INVITE") == [0.0]
    assert wire.bob.layer.state(server_key) is State.TERMINATED
    assert not any(isinstance(a, TimedOut) for a in wire.bob.actions)


def test_cancel_then_487() -> None:
    wire = Wire()
    invite_key, invite = _start(wire, "INVITE")
    invite_server_key = _server_key(wire, "INVITE")
    _respond(wire, "INVITE", 180)
    cancel = build_cancel(invite)
    cancel_key, actions = wire.alice.layer.send_request(cancel, BOB, wire.now)
    wire.run(wire.alice, actions)
    delivered = [
        a
        for a in wire.bob.actions
        if isinstance(a, DeliverRequest) and a.request.method == "CANCEL"
    ]
    assert delivered[0].cancels == invite_server_key
    _respond(wire, "CANCEL", 200)
    _respond(wire, "INVITE", 487)
    statuses = [(m.status, m.cseq.method) for m in wire.alice.delivered if isinstance(m, Response)]
    assert statuses == [(100, "INVITE"), (180, "INVITE"), (200, "CANCEL"), (487, "INVITE")]
    assert wire.alice.layer.state(invite_key) is State.COMPLETED
    assert wire.bob.layer.state(invite_server_key) is State.CONFIRMED
    assert wire.alice.layer.state(cancel_key) is State.COMPLETED


def test_reliable_transport_terminates_without_wait_timers() -> None:
    wire = Wire(reliable=True)
    key, _ = _start(wire, "INVITE")
    server_key = _server_key(wire, "INVITE")
    _respond(wire, "INVITE", 486)
    assert wire.alice.layer.state(key) is State.TERMINATED  # D = 0
    assert wire.bob.layer.state(server_key) is State.TERMINATED  # I = 0 after the ACK
    okey, _ = _start(wire, "OPTIONS")
    _respond(wire, "OPTIONS", 200)
    assert wire.alice.layer.state(okey) is State.TERMINATED  # K = 0


def test_requests_without_a_cookie_branch_get_400_and_via_is_stamped() -> None:
    wire = Wire()
    request = make_request("OPTIONS", branch="z9hG4bK")
    actions = wire.bob.layer.handle_incoming(request, ("10.0.0.9", 6000), 0.0)
    assert isinstance(actions[0], Send) and isinstance(actions[0].message, Response)
    assert actions[0].message.status == 400
    stamped = make_request("OPTIONS")
    stamped.headers.set("Via", "SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bKabc;rport")
    wire.bob.layer.handle_incoming(stamped, ("10.0.0.9", 6000), 0.0)
    assert stamped.top_via.received == "10.0.0.9" and stamped.top_via.rport == 6000


def test_transport_error_terminates() -> None:
    wire = Wire()
    key, _ = _start(wire, "OPTIONS")
    actions = wire.alice.layer.handle_transport_error(key, 0.1)
    assert [type(a).__name__ for a in actions] == ["TransportFailed", "Terminated"]
