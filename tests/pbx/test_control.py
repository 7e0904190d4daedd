"""LocalCallControl's own rules — scope, state checks, error translation, log lines — over a
small in-memory engine (the engine itself is tested with real phones in test_call_control)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any, TypeVar

import pytest

from callgate.calls.live import CallAction, CallbackRequest, CallControl, LiveCall, Originated
from callgate.common.errors import Conflict, InvalidInput, NotFound
from callgate.pbx.call import InvalidTransition
from callgate.pbx.control import LocalCallControl

T = TypeVar("T")
NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def live(call_api_id: str, *, client_id: int = 7, state: str = "answered") -> LiveCall:
    return LiveCall(
        call_api_id=call_api_id,
        call_id=f"id-{call_api_id}",
        client_id=client_id,
        call_flow="out",
        caller_id_name="Alice",
        caller_id_number="101",
        called_number="102",
        extension_id=11,
        init_time=NOW,
        answer_time=NOW if state != "ringing" else None,
        state=state,
        extension_ids=(11, 12),
    )


class FakeEngine:
    """Keeps calls in a dict and records what it was asked; ``fail`` makes the next action
    raise that exception."""

    def __init__(self, *calls: LiveCall) -> None:
        self.calls = {call.call_api_id: call for call in calls}
        self.done: list[tuple[str, ...]] = []
        self.fail: Exception | None = None

    def live_calls(self) -> list[LiveCall]:
        return list(self.calls.values())

    def _check(self, call_api_id: str) -> None:
        if self.fail is not None:
            raise self.fail
        if call_api_id not in self.calls:
            raise KeyError(call_api_id)

    async def originate(self, request: CallbackRequest) -> Originated:
        if self.fail is not None:
            raise self.fail
        self.done.append(("originate", request.dst_num))
        return Originated("api-new", "id-new")

    async def transfer(
        self, call_api_id: str, number: str, *, by_extension_id: int | None = None
    ) -> None:
        self._check(call_api_id)
        self.done.append(("transfer", call_api_id, number, str(by_extension_id)))

    async def hold(self, call_api_id: str, *, by_extension_id: int | None = None) -> None:
        self._check(call_api_id)
        self.calls[call_api_id] = replace(self.calls[call_api_id], state="held")
        self.done.append(("hold", call_api_id, str(by_extension_id)))

    async def offhold(self, call_api_id: str, *, by_extension_id: int | None = None) -> None:
        self._check(call_api_id)
        self.calls[call_api_id] = replace(self.calls[call_api_id], state="answered")
        self.done.append(("offhold", call_api_id, str(by_extension_id)))

    async def hangup(self, call_api_id: str) -> None:
        self._check(call_api_id)
        del self.calls[call_api_id]
        self.done.append(("hangup", call_api_id))


def run(step: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(step)


def test_it_is_a_call_control() -> None:
    control: CallControl = LocalCallControl(FakeEngine())
    assert run(control.current_calls(7, None)) == []


def test_current_calls_are_filtered_by_client_and_extension() -> None:
    engine = FakeEngine(live("a"), live("b", client_id=8), replace(live("c"), extension_ids=(13,)))
    control = LocalCallControl(engine)
    assert [c.call_api_id for c in run(control.current_calls(7, None))] == ["a", "c"]
    assert [c.call_api_id for c in run(control.current_calls(7, 12))] == ["a"]
    assert [c.call_api_id for c in run(control.current_calls(7, 13))] == ["c"]
    assert run(control.current_calls(8, 11)) == [live("b", client_id=8)]
    assert run(control.current_calls(9, None)) == []


@pytest.mark.parametrize(("client_id", "extension_id"), [(8, None), (7, 99), (8, 11)])
def test_a_call_out_of_scope_is_not_found_and_untouched(
    client_id: int, extension_id: int | None
) -> None:
    engine = FakeEngine(live("a"))
    control = LocalCallControl(engine)
    with pytest.raises(NotFound, match="no call a in progress"):
        run(control.hangup(client_id, extension_id, "a"))
    for action in CallAction:
        with pytest.raises(NotFound):
            run(control.act(client_id, extension_id, "a", action, "103"))
    assert engine.done == [] and "a" in engine.calls


def test_actions_reach_the_engine_and_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    engine = FakeEngine(live("a"))
    control = LocalCallControl(engine)
    with caplog.at_level(logging.INFO, logger="callgate.sip"):
        run(control.act(7, 12, "a", CallAction.HOLD))
        run(control.act(7, None, "a", CallAction.OFFHOLD))
        run(control.act(7, 11, "a", CallAction.TRANSFER, " 103 "))
        run(control.hangup(7, 11, "a"))
    assert engine.done == [
        ("hold", "a", "12"),
        ("offhold", "a", "None"),
        ("transfer", "a", "103", "11"),
        ("hangup", "a"),
    ]
    lines = [r.getMessage() for r in caplog.records if r.name == "callgate.sip"]
    assert lines == [
        "call control hold a by client 7 ext 12: ok",
        "call control offhold a by client 7 ext -: ok",
        "call control transfer a by client 7 ext 11: ok",
        "call control hangup a by client 7 ext 11: ok",
    ]


def test_state_rules(caplog: pytest.LogCaptureFixture) -> None:
    engine = FakeEngine(live("a"), live("r", state="ringing"), live("h", state="held"))
    control = LocalCallControl(engine)
    with caplog.at_level(logging.INFO, logger="callgate.sip"):
        with pytest.raises(Conflict, match="already on hold"):
            run(control.act(7, None, "h", CallAction.HOLD))
        with pytest.raises(Conflict, match="not on hold"):
            run(control.act(7, None, "a", CallAction.OFFHOLD))
        with pytest.raises(InvalidInput, match="is ringing"):
            run(control.act(7, None, "r", CallAction.TRANSFER, "103"))
        with pytest.raises(InvalidInput, match="needs send_dst") as missing:
            run(control.act(7, None, "a", CallAction.TRANSFER, "  "))
    assert missing.value.fields == {"send_dst": "missing"}
    run(control.hangup(7, None, "r"))  # a ringing call can be hung up
    assert engine.done == [("hangup", "r")]
    lines = [r.getMessage() for r in caplog.records if r.name == "callgate.sip"]
    assert lines[0] == "call control hold h by client 7 ext -: The call h is already on hold."


def test_engine_errors_are_translated() -> None:
    engine = FakeEngine(live("a"))
    control = LocalCallControl(engine)
    engine.fail = KeyError("a")  # the call ended meanwhile
    with pytest.raises(NotFound, match="no call a in progress for extension 12"):
        run(control.hangup(7, 12, "a"))
    engine.fail = InvalidTransition("transfer is not possible in state ringing")
    with pytest.raises(InvalidInput, match="Not possible on call a now: transfer is not"):
        run(control.act(7, None, "a", CallAction.TRANSFER, "103"))
    engine.fail = Conflict("busy with another transfer")
    with pytest.raises(Conflict, match="busy with another"):
        run(control.act(7, None, "a", CallAction.TRANSFER, "103"))
    engine.fail = RuntimeError("a bug")  # not hidden behind a domain error
    with pytest.raises(RuntimeError, match="a bug"):
        run(control.hangup(7, None, "a"))


def test_originate(caplog: pytest.LogCaptureFixture) -> None:
    engine = FakeEngine()
    control = LocalCallControl(engine)
    request = CallbackRequest(client_id=7, extension_id=11, src_num=["101"], dst_num="102")
    with caplog.at_level(logging.INFO, logger="callgate.sip"):
        assert run(control.originate(request)) == Originated("api-new", "id-new")
        with pytest.raises(InvalidInput, match="at least one number"):
            run(control.originate(replace(request, src_num=[])))
        engine.fail = ValueError("555 routes nowhere")
        with pytest.raises(InvalidInput, match="cannot be started: 555 routes nowhere"):
            run(control.originate(request))
    lines = [r.getMessage() for r in caplog.records if r.name == "callgate.sip"]
    assert lines[0] == "call control callback api-new by client 7 ext 11: ok"
    assert lines[2].startswith("call control callback - by client 7 ext 11: The callback")
