"""A real HTTP receiver of webhooks on 127.0.0.1 for the tests: uvicorn in a thread, a raw ASGI
app that records every request and answers what the test's ``respond`` says."""

from __future__ import annotations

import asyncio
import inspect
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import uvicorn

HANG = -1  # a reply that never answers (until the receiver stops, at most HANG_SECONDS)
HANG_SECONDS = 30.0


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when the request was complete
    index: int  # how many requests to this path came before

    @property
    def event_id(self) -> str:
        return self.headers.get("x-callgate-event-id", "")

    @property
    def fields(self) -> dict[str, str]:
        raw = self.body.decode() if self.method == "POST" else self.query
        return dict(parse_qsl(raw, keep_blank_values=True))


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0  # seconds before answering


Respond = Callable[[Received], "Reply | int | Awaitable[Reply | int]"]


def always_ok(_: Received) -> int:
    return 200


class Receiver:
    def __init__(
        self,
        respond: Respond = always_ok,
        *,
        certfile: str | None = None,
        keyfile: str | None = None,
    ) -> None:
        self.respond = respond
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._per_path: dict[str, int] = {}
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            lifespan="off",
            interface="asgi3",
            timeout_graceful_shutdown=1,
            access_log=False,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=lambda: self.server.run(sockets=[self._sock]), daemon=True
        )

        self.scheme = "https" if certfile else "http"

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def __enter__(self) -> Receiver:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the receiver did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self._sock.close()

    def requests(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.received if path is None or r.path == path]

    def event_ids(self) -> set[str]:
        with self._lock:
            return {r.event_id for r in self.received}

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        with self._lock:
            index = self._per_path.get(scope["path"], 0)
            self._per_path[scope["path"]] = index + 1
            request = Received(
                scope["method"],
                scope["path"],
                scope["query_string"].decode("latin-1"),
                headers,
                body,
                time.time(),
                index,
            )
            self.received.append(request)
        answer = self.respond(request)
        if inspect.isawaitable(answer):
            answer = await answer
        reply = answer if isinstance(answer, Reply) else Reply(status=int(answer))
        if reply.status == HANG:
            await asyncio.sleep(HANG_SECONDS)
            reply = Reply(status=200)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        raw_headers = [(k.encode(), v.encode()) for k, v in reply.headers.items()]
        raw_headers.append((b"content-length", str(len(reply.body)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": reply.body})


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


async def wait_until_async(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
