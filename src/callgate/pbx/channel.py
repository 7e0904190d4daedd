"""The control channel: how API workers reach the call engine in another process.

The process running the PBX (``callgate sip``, or the child ``callgate serve`` starts for
several workers) serves its :class:`~callgate.calls.live.CallControl` on
``127.0.0.1:CALLGATE_SIP_CONTROL_PORT`` (loopback only, by construction: the host is not a
setting). API workers hold a :class:`RemoteCallControl`, which implements the same protocol by
forwarding each call.

Wire format, both directions: a frame is a 4-byte big-endian length, a 32-byte HMAC-SHA256 tag
and a UTF-8 JSON object (the length counts tag and body). The key is derived from
``CALLGATE_SECRET_KEY``; requests and responses are tagged under different labels, so one can
never pass for the other. A request carries a random ``id`` and a timestamp ``ts``: the server
refuses a timestamp more than :data:`MAX_SKEW_SECONDS` away from its clock and an ``id`` it has
seen within that window (no replay). The response echoes the ``id``. A refused request gets a
frame with an all-zero tag (the client cannot check a tag made with a key it does not share).

Errors travel as ``{"status", "message", "fields"}`` and come back as the same domain
exceptions (:class:`NotFound`, :class:`InvalidInput`, :class:`Conflict`); a channel that cannot
be reached, times out or answers nonsense is :class:`PbxUnavailable` (HTTP 503 at the edge).
One connection per request: loopback connects cost about 0.1 ms and nothing goes stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from callgate.calls.live import (
    CallAction,
    CallbackRequest,
    CallControl,
    LiveCall,
    Originated,
)
from callgate.common.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    PbxUnavailable,
)
from callgate.config import Settings

log = logging.getLogger("callgate.sip")

CONTROL_HOST = "127.0.0.1"
TAG_SIZE = 32
NO_TAG = bytes(TAG_SIZE)
MAX_REQUEST_BYTES = 64 * 1024
MAX_RESPONSE_BYTES = 8 * 1024 * 1024  # current_calls of a large client
MAX_SKEW_SECONDS = 30.0
MAX_SEEN_IDS = 100_000  # replay cache; past it new requests are refused until ids expire
MAX_CONNECTIONS = 64
MAX_REQUESTS_PER_CONNECTION = 1_000
IDLE_SECONDS = 30.0  # a connection with no complete request in this time is closed
CALL_SECONDS = 30.0  # the longest one CallControl method may take on the server
CONNECT_SECONDS = 2.0
REQUEST_SECONDS = 35.0  # client side: connect + send + server work + receive
_REQUEST_LABEL = b"callgate control request\n"
_RESPONSE_LABEL = b"callgate control response\n"
_ERRORS: dict[str, type[DomainError]] = {
    NotFound.status: NotFound,
    InvalidInput.status: InvalidInput,
    Conflict.status: Conflict,
    PbxUnavailable.status: PbxUnavailable,
}
METHODS = ("current_calls", "originate", "act", "hangup")


class ChannelError(Exception):
    """A frame that breaks the protocol (size, tag, JSON shape)."""


def channel_key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), b"callgate sip control channel", hashlib.sha256).digest()


def _tag(key: bytes, label: bytes, body: bytes) -> bytes:
    return hmac.new(key, label + body, hashlib.sha256).digest()


def encode_frame(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", TAG_SIZE + len(body)) + tag + body


async def read_frame(reader: asyncio.StreamReader, limit: int) -> tuple[bytes, bytes]:
    """One frame as ``(tag, body)``; :class:`ChannelError` past ``limit`` bytes.

    ``asyncio.IncompleteReadError`` means the peer closed the connection.
    """
    (length,) = struct.unpack(">I", await reader.readexactly(4))
    if length < TAG_SIZE or length > limit + TAG_SIZE:
        raise ChannelError(f"frame of {length} bytes")
    data = await reader.readexactly(length)
    return data[:TAG_SIZE], data[TAG_SIZE:]


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ChannelError("body is not JSON") from exc
    if not isinstance(value, dict):
        raise ChannelError("body is not a JSON object")
    return value


# -- values on the wire ----------------------------------------------------------------------------


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else None


def live_call_to_wire(call: LiveCall) -> dict[str, Any]:
    return {
        "call_api_id": call.call_api_id,
        "call_id": call.call_id,
        "client_id": call.client_id,
        "call_flow": call.call_flow,
        "caller_id_name": call.caller_id_name,
        "caller_id_number": call.caller_id_number,
        "called_number": call.called_number,
        "extension_id": call.extension_id,
        "init_time": _time(call.init_time),
        "answer_time": _time(call.answer_time),
        "record_uuid": call.record_uuid,
        "state": call.state,
        "extension_ids": list(call.extension_ids),
    }


def live_call_from_wire(data: dict[str, Any]) -> LiveCall:
    init_time = _parse_time(data["init_time"])
    if init_time is None:
        raise ChannelError("a live call without init_time")
    return LiveCall(
        call_api_id=str(data["call_api_id"]),
        call_id=str(data["call_id"]),
        client_id=int(data["client_id"]),
        call_flow=str(data["call_flow"]),
        caller_id_name=str(data["caller_id_name"]),
        caller_id_number=str(data["caller_id_number"]),
        called_number=str(data["called_number"]),
        extension_id=None if data["extension_id"] is None else int(data["extension_id"]),
        init_time=init_time,
        answer_time=_parse_time(data.get("answer_time")),
        record_uuid=data.get("record_uuid"),
        state=str(data.get("state", "ringing")),
        extension_ids=tuple(int(i) for i in data.get("extension_ids", ())),
    )


def callback_to_wire(request: CallbackRequest) -> dict[str, Any]:
    return {
        "client_id": request.client_id,
        "extension_id": request.extension_id,
        "src_num": list(request.src_num),
        "dst_num": request.dst_num,
        "caller_id_name": request.caller_id_name,
        "caller_id_number": request.caller_id_number,
        "call_duration": request.call_duration,
        "wait_for_pickup": request.wait_for_pickup,
    }


def callback_from_wire(data: dict[str, Any]) -> CallbackRequest:
    src_num = data["src_num"]
    if not isinstance(src_num, list):
        raise ChannelError("src_num is not a list")
    duration = data.get("call_duration")
    return CallbackRequest(
        client_id=int(data["client_id"]),
        extension_id=int(data["extension_id"]),
        src_num=tuple(str(number) for number in src_num),
        dst_num=str(data["dst_num"]),
        caller_id_name=data.get("caller_id_name"),
        caller_id_number=data.get("caller_id_number"),
        call_duration=None if duration is None else int(duration),
        wait_for_pickup=int(data.get("wait_for_pickup", 30)),
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


# -- server ----------------------------------------------------------------------------------------


class _SeenIds:
    """Request ids seen within the timestamp window, oldest first (bounded)."""

    def __init__(self, window: float, limit: int) -> None:
        self.window = window
        self.limit = limit
        self._seen: OrderedDict[str, float] = OrderedDict()

    def add(self, request_id: str, now: float) -> bool:
        """False if ``request_id`` was seen, or if the cache is full of unexpired ids."""
        while self._seen:
            oldest, seen_at = next(iter(self._seen.items()))
            if seen_at > now - 2 * self.window:
                break
            del self._seen[oldest]
        if request_id in self._seen or len(self._seen) >= self.limit:
            return False
        self._seen[request_id] = now
        return True


@dataclass
class ControlServer:
    """The listening side; :func:`start_control_server` builds it."""

    server: asyncio.Server
    address: tuple[str, int]
    handler: _Handler

    async def stop(self) -> None:
        self.server.close()
        # open connections too (Python 3.12 has close_clients; 3.11 does not)
        for writer in list(self.handler.writers):
            writer.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.server.wait_closed(), 5)


class _Handler:
    def __init__(
        self, control: CallControl, key: bytes, clock: Callable[[], float] = time.time
    ) -> None:
        self.control = control
        self.key = key
        self.clock = clock
        self.seen = _SeenIds(MAX_SKEW_SECONDS, MAX_SEEN_IDS)
        self.slots = asyncio.Semaphore(MAX_CONNECTIONS)
        self.writers: set[asyncio.StreamWriter] = set()

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.slots.locked():
            writer.close()
            return
        async with self.slots:
            self.writers.add(writer)
            try:
                for _ in range(MAX_REQUESTS_PER_CONNECTION):
                    try:
                        tag, body = await asyncio.wait_for(
                            read_frame(reader, MAX_REQUEST_BYTES), IDLE_SECONDS
                        )
                    except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                        return
                    except ChannelError as exc:
                        await self._refuse(writer, f"bad frame: {exc}")
                        return
                    if not await self._one(writer, tag, body):
                        return
            finally:
                self.writers.discard(writer)
                writer.close()
                with contextlib.suppress(OSError, ConnectionError):
                    await writer.wait_closed()

    async def _refuse(self, writer: asyncio.StreamWriter, reason: str) -> None:
        log.warning("control channel: refused a request: %s", reason)
        body = json.dumps(
            {"id": None, "ok": False, "error": {"status": "refused", "message": reason}}
        ).encode()
        with contextlib.suppress(OSError, ConnectionError):
            writer.write(encode_frame(NO_TAG, body))
            await writer.drain()

    async def _one(self, writer: asyncio.StreamWriter, tag: bytes, body: bytes) -> bool:
        """Answer one request; False when the connection must be closed."""
        if not hmac.compare_digest(tag, _tag(self.key, _REQUEST_LABEL, body)):
            await self._refuse(writer, "authentication failed")
            return False
        try:
            request = _json_object(body)
            request_id = request["id"]
            stamp = float(request["ts"])
            method = request["method"]
            params = request["params"]
        except (ChannelError, KeyError, TypeError, ValueError):
            await self._refuse(writer, "malformed request")
            return False
        now = self.clock()
        if not isinstance(request_id, str) or not 16 <= len(request_id) <= 64:
            await self._refuse(writer, "malformed request id")
            return False
        if abs(now - stamp) > MAX_SKEW_SECONDS:
            await self._refuse(writer, "timestamp outside the accepted window")
            return False
        if not self.seen.add(request_id, now):
            await self._refuse(writer, "request id already seen")
            return False
        answer = await self._call(method, params)
        out = json.dumps({"id": request_id, **answer}).encode()
        try:
            writer.write(encode_frame(_tag(self.key, _RESPONSE_LABEL, out), out))
            await writer.drain()
        except (OSError, ConnectionError):
            return False
        return True

    async def _call(self, method: Any, params: Any) -> dict[str, Any]:
        if method not in METHODS or not isinstance(params, dict):
            return _error("invalid_input", f"unknown control method {method!r}")
        try:
            result = await asyncio.wait_for(self._dispatch(method, params), CALL_SECONDS)
        except InvalidInput as exc:
            return _error(exc.status, exc.message, exc.fields)
        except DomainError as exc:
            return _error(exc.status, exc.message)
        except (ChannelError, KeyError, TypeError, ValueError):
            return _error("invalid_input", f"malformed parameters for {method}")
        except TimeoutError:
            log.error("control channel: %s took longer than %.0f s", method, CALL_SECONDS)
            return _error(PbxUnavailable.status, "The PBX did not answer in time.")
        except Exception:
            log.exception("control channel: %s failed", method)
            return _error(PbxUnavailable.status, "The PBX failed to handle the request.")
        return {"ok": True, "result": result}

    async def _dispatch(self, method: str, params: dict[str, Any]) -> Any:
        if method == "current_calls":
            calls = await self.control.current_calls(
                int(params["client_id"]), _optional_int(params.get("extension_id"))
            )
            return [live_call_to_wire(call) for call in calls]
        if method == "originate":
            started = await self.control.originate(callback_from_wire(params["request"]))
            return {"call_api_id": started.call_api_id, "call_id": started.call_id}
        if method == "act":
            send_dst = params.get("send_dst")
            await self.control.act(
                int(params["client_id"]),
                _optional_int(params.get("extension_id")),
                str(params["call_api_id"]),
                CallAction(params["action"]),
                None if send_dst is None else str(send_dst),
            )
            return None
        await self.control.hangup(
            int(params["client_id"]),
            _optional_int(params.get("extension_id")),
            str(params["call_api_id"]),
        )
        return None


def _error(status: str, message: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"status": status, "message": message}
    if fields:
        error["fields"] = fields
    return {"ok": False, "error": error}


async def start_control_server(
    control: CallControl,
    settings: Settings,
    *,
    port: int | None = None,
    clock: Callable[[], float] = time.time,
) -> ControlServer:
    """Serve ``control`` on 127.0.0.1 (``port`` defaults to ``sip_control_port``; 0 = any)."""
    handler = _Handler(control, channel_key(settings.secret_key), clock)
    server = await asyncio.start_server(
        handler.connection,
        CONTROL_HOST,
        settings.sip_control_port if port is None else port,
        limit=MAX_REQUEST_BYTES + 1024,
    )
    host, bound = server.sockets[0].getsockname()[:2]
    return ControlServer(server, (str(host), int(bound)), handler)


# -- client ----------------------------------------------------------------------------------------


class RemoteCallControl:
    """:class:`~callgate.calls.live.CallControl` over the control channel."""

    def __init__(
        self,
        settings: Settings,
        *,
        port: int | None = None,
        timeout: float = REQUEST_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = channel_key(settings.secret_key)
        self.port = settings.sip_control_port if port is None else port
        self.timeout = timeout
        self.clock = clock

    async def current_calls(self, client_id: int, extension_id: int | None) -> list[LiveCall]:
        result = await self._request(
            "current_calls", {"client_id": client_id, "extension_id": extension_id}
        )
        if not isinstance(result, list):
            raise PbxUnavailable("The PBX answered the control request with nonsense.")
        try:
            return [live_call_from_wire(item) for item in result]
        except (ChannelError, KeyError, TypeError, ValueError) as exc:
            raise PbxUnavailable("The PBX answered the control request with nonsense.") from exc

    async def originate(self, request: CallbackRequest) -> Originated:
        result = await self._request("originate", {"request": callback_to_wire(request)})
        if not isinstance(result, dict) or not {"call_api_id", "call_id"} <= result.keys():
            raise PbxUnavailable("The PBX answered the control request with nonsense.")
        return Originated(str(result["call_api_id"]), str(result["call_id"]))

    async def act(
        self,
        client_id: int,
        extension_id: int | None,
        call_api_id: str,
        action: CallAction,
        send_dst: str | None = None,
    ) -> None:
        await self._request(
            "act",
            {
                "client_id": client_id,
                "extension_id": extension_id,
                "call_api_id": call_api_id,
                "action": str(action),
                "send_dst": send_dst,
            },
        )

    async def hangup(self, client_id: int, extension_id: int | None, call_api_id: str) -> None:
        await self._request(
            "hangup",
            {"client_id": client_id, "extension_id": extension_id, "call_api_id": call_api_id},
        )

    async def _request(self, method: str, params: dict[str, Any]) -> Any:
        request_id = secrets.token_hex(16)
        body = json.dumps(
            {"id": request_id, "ts": self.clock(), "method": method, "params": params}
        ).encode()
        if len(body) > MAX_REQUEST_BYTES:
            raise InvalidInput("The request is too large for the PBX.")
        frame = encode_frame(_tag(self.key, _REQUEST_LABEL, body), body)
        try:
            tag, answer = await asyncio.wait_for(self._exchange(frame), self.timeout)
        except (OSError, ConnectionError, asyncio.IncompleteReadError) as exc:
            raise PbxUnavailable("The PBX is not running (its control channel is down).") from exc
        except TimeoutError as exc:
            raise PbxUnavailable("The PBX did not answer in time.") from exc
        except ChannelError as exc:
            raise PbxUnavailable(f"The PBX control channel broke the protocol: {exc}.") from exc
        return self._result(request_id, tag, answer)

    async def _exchange(self, frame: bytes) -> tuple[bytes, bytes]:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(CONTROL_HOST, self.port, limit=64 * 1024), CONNECT_SECONDS
        )
        try:
            writer.write(frame)
            await writer.drain()
            return await read_frame(reader, MAX_RESPONSE_BYTES)
        finally:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()

    def _result(self, request_id: str, tag: bytes, body: bytes) -> Any:
        if not hmac.compare_digest(tag, _tag(self.key, _RESPONSE_LABEL, body)):
            reason = "a response without a valid tag"
            if tag == NO_TAG:
                with contextlib.suppress(ChannelError, KeyError, TypeError):
                    reason = str(_json_object(body)["error"]["message"])
            # the usual cause: API and PBX processes with different CALLGATE_SECRET_KEY
            raise PbxUnavailable(f"The PBX refused the control request ({reason}).")
        try:
            answer = _json_object(body)
        except ChannelError as exc:
            raise PbxUnavailable("The PBX answered the control request with nonsense.") from exc
        if answer.get("id") != request_id:
            raise PbxUnavailable("The PBX answered another control request.")
        if answer.get("ok") is True:
            return answer.get("result")
        error = answer.get("error")
        if not isinstance(error, dict):
            raise PbxUnavailable("The PBX answered the control request with nonsense.")
        status, message = str(error.get("status")), str(error.get("message", ""))
        cls = _ERRORS.get(status)
        if cls is InvalidInput:
            fields = error.get("fields")
            raise InvalidInput(message, fields if isinstance(fields, dict) else None)
        if cls is not None:
            raise cls(message)
        raise PbxUnavailable(f"The PBX could not handle the request ({status}: {message}).")
