"""A stand-in for the call engine behind ``services.call_control``: it keeps live calls in a
dict, records every request, and answers with the contract's domain errors.

The engine is not what these tests are about (tests/pbx covers it with real phones); the HTTP
edge is, and it talks to whatever implements ``callgate.calls.live.CallControl``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import itertools
from typing import Any

from callgate.calls.live import CallAction, CallbackRequest, LiveCall, Originated
from callgate.common.errors import Conflict, InvalidInput, NotFound

T0 = dt.datetime(2024, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
NOWHERE = "000"  # a number the fake engine cannot route
_ids = itertools.count(1)


def live_call(client_id: int, extension_id: int, minutes: int = 0, **fields: Any) -> LiveCall:
    number = next(_ids)
    values: dict[str, Any] = {
        "call_api_id": f"api{number:04d}",
        "call_id": f"call{number:04d}",
        "client_id": client_id,
        "call_flow": "out",
        "caller_id_name": "Reception",
        "caller_id_number": "101",
        "called_number": "74951234567",
        "extension_id": extension_id,
        "init_time": T0 + dt.timedelta(minutes=minutes),
        "extension_ids": (extension_id,),
    }
    values.update(fields)
    return LiveCall(**values)


class FakeCallControl:
    def __init__(self) -> None:
        self.calls: dict[str, LiveCall] = {}
        self.requests: list[tuple[Any, ...]] = []
        self.stall = False  # answer nothing, as a stuck engine would

    def add(self, call: LiveCall) -> LiveCall:
        self.calls[call.call_api_id] = call
        return call

    async def _maybe_stall(self) -> None:
        if self.stall:
            await asyncio.sleep(30)

    def _find(self, client_id: int, extension_id: int | None, call_api_id: str) -> LiveCall:
        call = self.calls.get(call_api_id)
        if (
            call is None
            or call.client_id != client_id
            or (extension_id is not None and extension_id not in call.extension_ids)
        ):
            raise NotFound(f"There is no call {call_api_id} in progress here.")
        return call

    async def current_calls(self, client_id: int, extension_id: int | None) -> list[LiveCall]:
        await self._maybe_stall()
        self.requests.append(("current_calls", client_id, extension_id))
        return [
            call
            for call in self.calls.values()
            if call.client_id == client_id
            and (extension_id is None or extension_id in call.extension_ids)
        ]

    async def originate(self, request: CallbackRequest) -> Originated:
        await self._maybe_stall()
        self.requests.append(("originate", request))
        if request.dst_num == NOWHERE:
            raise InvalidInput(f"{NOWHERE} routes nowhere.", {"dst_num": "routes nowhere"})
        call = self.add(
            live_call(
                request.client_id,
                request.extension_id,
                called_number=request.dst_num,
                caller_id_number=request.src_num[0],
            )
        )
        return Originated(call.call_api_id, call.call_id)

    async def act(
        self,
        client_id: int,
        extension_id: int | None,
        call_api_id: str,
        action: CallAction,
        send_dst: str | None = None,
    ) -> None:
        await self._maybe_stall()
        self.requests.append(("act", client_id, extension_id, call_api_id, action, send_dst))
        call = self._find(client_id, extension_id, call_api_id)
        if action is CallAction.HOLD:
            if call.state == "held":
                raise Conflict(f"Call {call_api_id} is already on hold.")
            self.calls[call_api_id] = dataclasses.replace(call, state="held")
        elif action is CallAction.OFFHOLD:
            if call.state != "held":
                raise Conflict(f"Call {call_api_id} is not on hold.")
            self.calls[call_api_id] = dataclasses.replace(call, state="answered")
        elif send_dst == NOWHERE:
            raise InvalidInput(f"{NOWHERE} routes nowhere.", {"send_dst": "routes nowhere"})

    async def hangup(self, client_id: int, extension_id: int | None, call_api_id: str) -> None:
        await self._maybe_stall()
        self.requests.append(("hangup", client_id, extension_id, call_api_id))
        self._find(client_id, extension_id, call_api_id)
        del self.calls[call_api_id]
