"""A small HTTP/1.1 client for webhook requests: asyncio streams, h11, keep-alive per origin.

Why not httpx: measured at 64 requests in flight, httpx's connection pool (httpcore) polls every
pooled socket on every request, and without ``sniffio`` installed it re-runs a failing import on
each one; together about 3 ms of CPU per webhook, a tenth of the goal (docs/benchmarks.md). A
webhook needs little of a general client, and owning the connection step is what the safety
rules want anyway:

* the host is resolved here and every address is checked before connecting; the connection goes
  to the checked address (a DNS answer cannot change in between); loopback, private, link-local
  and other non-public addresses are refused unless allowed;
* no proxies from the environment, no redirects (a 3xx is returned as it is), no cookies;
* at most ``body_limit`` bytes of an answer are read; a connection whose answer was not read to
  its end is closed, not reused;
* timeouts are the caller's (``asyncio.timeout`` around ``request``); connecting has its own.

A request that fails on a reused keep-alive connection before any byte of an answer arrived (the
server closed it while idle) is sent once more on a new connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import h11

USER_AGENT = "Callgate-Webhooks/1"
MAX_ADDRESSES = 4  # resolved addresses tried per connection
IDLE_EXPIRY = 30.0  # seconds an idle keep-alive connection is kept
READ_CHUNK = 65536
# Characters kept as they are when a target has non-ASCII ones to percent-encode.
_SAFE = "/?&=%:@!$'()*+,;~-._[]#"


class RequestError(Exception):
    """A webhook request that got no HTTP answer; ``str()`` is a short reason for the log."""


class DestinationRefused(RequestError):
    """The host resolves to an address this PBX does not call."""


class ConnectFailed(RequestError):
    pass


class ProtocolFailure(RequestError):
    pass


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class Target:
    """Where a URL's request goes and what its request line carries."""

    scheme: str
    host: str  # ASCII (IDNA) host name or address, no brackets
    port: int
    target: str  # path and query as sent (ASCII)

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    @classmethod
    def of(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an absolute http(s) URL")
        host = parts.hostname.encode("idna").decode("ascii")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if url.endswith("?") and not parts.query:
            target += "?"
        if not target.isascii():
            target = quote(target, safe=_SAFE)
        return cls(parts.scheme, host, port, target)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names; the last value of a repeated header
    body: bytes  # at most body_limit bytes


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = time.monotonic()
        self.reused = False

    def usable(self) -> bool:
        return (
            time.monotonic() - self.idle_since < IDLE_EXPIRY
            and not self.reader.at_eof()
            and not self.writer.is_closing()
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class WebhookClient:
    def __init__(
        self,
        *,
        allow_private: bool,
        connect_timeout: float,
        body_limit: int = 4096,
        max_idle: int = 256,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.connect_timeout = connect_timeout
        self.body_limit = body_limit
        self.max_idle = max_idle
        self.ssl_context = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._idle_count = 0

    async def request(
        self, method: str, target: Target, headers: list[tuple[str, str]], body: bytes = b""
    ) -> Answer:
        connection = self._checkout(target)
        if connection is not None:
            try:
                return await self._exchange(connection, method, target, headers, body)
            except _StaleConnection:
                pass  # closed by the server while idle: once more on a new connection
        connection = await self._connect(target)
        try:
            return await self._exchange(connection, method, target, headers, body)
        except _StaleConnection as exc:
            raise ProtocolFailure("connection closed without an answer") from exc

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()
        self._idle_count = 0

    # -- connections -----------------------------------------------------------------------------

    def _checkout(self, target: Target) -> _Connection | None:
        connections = self._idle.get(target.origin)
        while connections:
            connection = connections.pop()
            self._idle_count -= 1
            if connection.usable():
                connection.reused = True
                return connection
            connection.close()
        return None

    def _checkin(self, target: Target, connection: _Connection) -> None:
        if self._idle_count >= self.max_idle:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.setdefault(target.origin, []).append(connection)
        self._idle_count += 1

    async def _connect(self, target: Target) -> _Connection:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout
        try:
            async with asyncio.timeout_at(deadline):
                infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except TimeoutError:
            raise
        except OSError as exc:
            raise ConnectFailed(f"cannot resolve {target.host}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not self.allow_private:
            refused = [address for address in addresses if not is_public_address(address)]
            if refused:
                raise DestinationRefused(f"{refused[0]} is a loopback or private address")
        tls = None
        if target.scheme == "https":
            tls = self.ssl_context or ssl.create_default_context()
        failure: Exception = ConnectFailed(f"{target.host} has no address")
        for address in addresses[:MAX_ADDRESSES]:
            try:
                async with asyncio.timeout_at(deadline):
                    reader, writer = await asyncio.open_connection(
                        address,
                        target.port,
                        ssl=tls,
                        server_hostname=target.host if tls is not None else None,
                    )
                return _Connection(reader, writer)
            except ssl.SSLError as exc:
                failure = ConnectFailed(f"TLS: {exc.reason or type(exc).__name__}")
            except OSError as exc:
                failure = ConnectFailed(_reason(exc))
        raise failure

    # -- one exchange ----------------------------------------------------------------------------

    async def _exchange(
        self,
        connection: _Connection,
        method: str,
        target: Target,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> Answer:
        keep = False
        answered = False
        try:
            request_headers = [
                ("Host", target.host_header),
                ("User-Agent", USER_AGENT),
                ("Accept", "*/*"),
                *headers,
            ]
            if method != "GET" or body:
                request_headers.append(("Content-Length", str(len(body))))
            conn = connection.h11
            data = conn.send(
                h11.Request(method=method, target=target.target, headers=request_headers)
            )
            if body:
                data = (data or b"") + (conn.send(h11.Data(data=body)) or b"")
            data = (data or b"") + (conn.send(h11.EndOfMessage()) or b"")
            connection.writer.write(data)
            await connection.writer.drain()
            status = 0
            answer_headers: dict[str, str] = {}
            chunks: list[bytes] = []
            size = 0
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    chunk = await connection.reader.read(READ_CHUNK)
                    if not chunk and not answered and connection.reused:
                        raise _StaleConnection
                    conn.receive_data(chunk)
                    continue
                answered = True
                if isinstance(event, h11.Response):
                    status = event.status_code
                    answer_headers = {
                        name.decode("latin-1"): value.decode("latin-1")
                        for name, value in event.headers
                    }
                elif isinstance(event, h11.Data):
                    chunks.append(bytes(event.data))
                    size += len(event.data)
                    if size >= self.body_limit:
                        break  # enough: the connection is dropped below
                elif isinstance(event, h11.EndOfMessage):
                    keep = conn.our_state is h11.DONE and conn.their_state is h11.DONE
                    if keep:
                        conn.start_next_cycle()
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    if status == 0:
                        raise ProtocolFailure("connection closed without an answer")
                    break
                # h11.InformationalResponse (1xx): wait for the final answer
            return Answer(status, answer_headers, b"".join(chunks)[: self.body_limit])
        except (ConnectionError, OSError) as exc:
            if not answered and connection.reused:
                raise _StaleConnection from exc
            raise ProtocolFailure(_reason(exc)) from exc
        except h11.ProtocolError as exc:
            raise ProtocolFailure(f"bad answer ({type(exc).__name__})") from exc
        finally:
            if keep:
                self._checkin(target, connection)
            else:
                connection.close()


class _StaleConnection(Exception):
    pass


def _reason(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else type(exc).__name__
