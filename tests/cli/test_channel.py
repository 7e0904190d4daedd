"""The control channel: the real server and the real client over 127.0.0.1, a fake engine behind.

The fake stands in for the call engine only; framing, HMAC, timestamps, replay and the error
mapping are the code under test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import secrets
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from callgate.calls.live import CallAction, CallbackRequest, LiveCall, Originated
from callgate.common.errors import Conflict, InvalidInput, NotFound, PbxUnavailable
from callgate.config import Settings
from callgate.pbx.channel import (
    MAX_REQUEST_BYTES,
    RemoteCallControl,
    channel_key,
    encode_frame,
    read_frame,
    start_control_server,
)
from tests.conftest import free_port

KEY = "channel-test-secret-key-0123456789abcdef"
T0 = dt.datetime(2026, 11, 28, 10, 0, 0, 123456, tzinfo=dt.UTC)
CALL = LiveCall(
    call_api_id="api-1",
    call_id="call-1",
    client_id=7,
    call_flow="out",
    caller_id_name="Alice",
    caller_id_number="101",
    called_number="102",
    extension_id=11,
    init_time=T0,
    answer_time=T0 + dt.timedelta(seconds=3),
    record_uuid=None,
    state="answered",
    extension_ids=(11, 12),
)


class FakeEngine:
    """A CallControl that records what it was asked and fails on chosen call ids."""

    def __init__(self) -> None:
        self.asked: list[tuple[Any, ...]] = []

    async def current_calls(self, client_id: int, extension_id: int | None) -> list[LiveCall]:
        self.asked.append(("current_calls", client_id, extension_id))
        return [CALL] if client_id == 7 else []

    async def originate(self, request: CallbackRequest) -> Originated:
        self.asked.append(("originate", request))
        if request.dst_num == "000":
            raise InvalidInput("The number routes nowhere.", {"dst_num": "no route"})
        return Originated("api-9", "call-9")

    async def act(
        self,
        client_id: int,
        extension_id: int | None,
        call_api_id: str,
        action: CallAction,
        send_dst: str | None = None,
    ) -> None:
        self.asked.append(("act", client_id, extension_id, call_api_id, action, send_dst))
        if call_api_id == "held":
            raise Conflict("The call is already on hold.")
        if call_api_id == "boom":
            raise RuntimeError("engine bug")

    async def hangup(self, client_id: int, extension_id: int | None, call_api_id: str) -> None:
        self.asked.append(("hangup", client_id, extension_id, call_api_id))
        if call_api_id != "api-1":
            raise NotFound(f"There is no live call {call_api_id}.")


def _settings(secret_key: str = KEY) -> Settings:
    return Settings(secret_key=secret_key)


def _run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), timeout=20))


def test_each_method_round_trips_and_errors_come_back_as_domain_errors() -> None:
    engine = FakeEngine()

    async def body() -> None:
        server = await start_control_server(engine, _settings(), port=0)
        assert server.address[0] == "127.0.0.1"
        remote = RemoteCallControl(_settings(), port=server.address[1])
        try:
            assert await remote.current_calls(7, None) == [CALL]
            assert await remote.current_calls(8, 3) == []
            request = CallbackRequest(7, 11, ["101", "+15550100"], "102", "Desk", None, 60, 20)
            assert await remote.originate(request) == Originated("api-9", "call-9")
            await remote.act(7, 11, "api-1", CallAction.TRANSFER, "103")
            await remote.hangup(7, None, "api-1")

            with pytest.raises(InvalidInput) as invalid:
                await remote.originate(CallbackRequest(7, 11, ["101"], "000"))
            assert invalid.value.fields == {"dst_num": "no route"}
            with pytest.raises(Conflict, match="already on hold"):
                await remote.act(7, 11, "held", CallAction.HOLD)
            with pytest.raises(NotFound, match="no live call gone"):
                await remote.hangup(7, 11, "gone")
            # an engine bug is not a crash of the channel: the caller sees "unavailable"
            with pytest.raises(PbxUnavailable, match="failed to handle"):
                await remote.act(7, 11, "boom", CallAction.OFFHOLD)
            assert await remote.current_calls(7, 11) == [CALL]  # the server is still up
        finally:
            await server.stop()

    _run(body)
    assert engine.asked[:5] == [
        ("current_calls", 7, None),
        ("current_calls", 8, 3),
        ("originate", CallbackRequest(7, 11, ("101", "+15550100"), "102", "Desk", None, 60, 20)),
        ("act", 7, 11, "api-1", CallAction.TRANSFER, "103"),
        ("hangup", 7, None, "api-1"),
    ]


def test_a_wrong_key_is_refused_and_the_engine_is_not_asked() -> None:
    engine = FakeEngine()

    async def body() -> None:
        server = await start_control_server(engine, _settings(), port=0)
        other_key = _settings("another-secret-key-0123456789abcdef")
        other = RemoteCallControl(other_key, port=server.address[1])
        try:
            with pytest.raises(PbxUnavailable, match="authentication failed"):
                await other.hangup(7, None, "api-1")
        finally:
            await server.stop()

    _run(body)
    assert engine.asked == []


async def _raw(port: int, frame: bytes) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(frame)
        await writer.drain()
        _, body = await read_frame(reader, 1 << 20)
        return dict(json.loads(body))
    finally:
        writer.close()
        await writer.wait_closed()


def _signed(body: dict[str, Any]) -> bytes:
    raw = json.dumps(body).encode()
    tag = hmac.new(channel_key(KEY), b"callgate control request\n" + raw, hashlib.sha256).digest()
    return encode_frame(tag, raw)


def test_replays_stale_timestamps_and_oversized_frames_are_refused() -> None:
    engine = FakeEngine()

    async def body() -> None:
        server = await start_control_server(engine, _settings(), port=0)
        port = server.address[1]
        loop_now = time.time()
        request = {
            "id": secrets.token_hex(16),
            "ts": loop_now,
            "method": "hangup",
            "params": {"client_id": 7, "extension_id": None, "call_api_id": "api-1"},
        }
        try:
            assert (await _raw(port, _signed(request)))["ok"] is True
            replay = await _raw(port, _signed(request))
            assert replay["error"] == {"status": "refused", "message": "request id already seen"}
            stale = {**request, "id": secrets.token_hex(16), "ts": loop_now - 120}
            assert "timestamp" in (await _raw(port, _signed(stale)))["error"]["message"]
            huge = struct.pack(">I", MAX_REQUEST_BYTES * 4) + b"x" * 64
            assert "bad frame" in (await _raw(port, huge))["error"]["message"]
            unknown = {**request, "id": secrets.token_hex(16), "method": "reboot"}
            answer = await _raw(port, _signed(unknown))
            assert answer["error"]["status"] == "invalid_input"
        finally:
            await server.stop()

    _run(body)
    assert engine.asked == [("hangup", 7, None, "api-1")]


def test_server_down_is_pbx_unavailable() -> None:
    async def body() -> None:
        remote = RemoteCallControl(_settings(), port=free_port())
        with pytest.raises(PbxUnavailable, match="not running"):
            await remote.current_calls(7, None)

    _run(body)


def test_the_server_binds_loopback_only_and_the_configured_port() -> None:
    port = free_port()

    async def body() -> None:
        settings = Settings(secret_key=KEY, sip_control_port=port)
        server = await start_control_server(FakeEngine(), settings)
        try:
            assert server.address == ("127.0.0.1", port)
            assert await RemoteCallControl(settings).current_calls(7, None) == [CALL]
        finally:
            await server.stop()

    _run(body)
