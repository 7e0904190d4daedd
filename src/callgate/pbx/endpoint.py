"""The asyncio SIP endpoint: sockets → transaction layer → request handler, and back.

:class:`SipEndpoint` owns one UDP socket and one TCP listener on the same address, one
:class:`~callgate.sip.transaction.TransactionLayer` and one timer armed for its
``next_deadline()``. Every message from a transport goes to ``handle_incoming``; the actions that
come back are performed in order: ``Send`` through the transport the transaction belongs to,
``DeliverRequest`` to the application's :data:`RequestHandler` (a coroutine returning the final
response, or None to answer later with :meth:`SipEndpoint.respond`). The application's own
requests go out through :meth:`SipEndpoint.send_request`, whose callback receives every response
of that client transaction (a timeout or transport failure arrives as a synthetic 408/503, so the
callback always hears a final answer); ACKs for 2xx (outside any transaction) go to
``ack_handler``, and :meth:`SipEndpoint.send_stateless` sends an ACK for a 2xx.

Time is an injected wall clock (``clock``, default ``time.time``) for everything: digest nonces
carry timestamps other processes must read, and bindings expire in wall-clock time. The asyncio
timer converts the layer's deadline to a delay from that clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from callgate.sip.message import Request, Response
from callgate.sip.parser import make_response
from callgate.sip.transaction import (
    Action,
    DeliverRequest,
    DeliverResponse,
    Send,
    Terminated,
    TimedOut,
    TransactionKey,
    TransactionLayer,
    TransportFailed,
)
from callgate.sip.transport import Addr, TcpTransport, Transport, UdpTransport, open_udp

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Incoming:
    """A new request for the application, with where and how it arrived."""

    request: Request
    source: Addr
    transport: str  # "udp" or "tcp"
    key: TransactionKey
    cancels: TransactionKey | None = None


RequestHandler = Callable[[Incoming], Awaitable[Response | None]]
# Called once per response of a client transaction (provisional ones too, 2xx retransmissions
# while the INVITE transaction is Accepted); a timeout or transport failure arrives as a final
# 408 or 503 made locally.
ResponseCallback = Callable[[Response], None]
AckHandler = Callable[[Request, Addr], None]


class SipEndpoint:
    def __init__(
        self,
        handler: RequestHandler,
        *,
        layer: TransactionLayer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.handler = handler
        self.layer = layer or TransactionLayer()
        self.clock = clock
        self.udp: UdpTransport | None = None
        self.tcp: TcpTransport | None = None
        self.address: Addr | None = None
        self._transport_of: dict[TransactionKey, Transport] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_deadline: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._clients: dict[TransactionKey, tuple[Request, ResponseCallback]] = {}
        self.ack_handler: AckHandler | None = None

    def local_address(self, transport: str = "udp") -> Addr:
        """The address our Via and Contact name (the listening address; same port for both)."""
        assert self.address is not None, "endpoint not started"
        return self.address

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str, port: int) -> Addr:
        """Listen on UDP and TCP at ``host:port`` (port 0: a free port, the same for both).

        With port 0 the UDP socket picks a free port, whose TCP twin may be taken by another
        socket: then both are released and another port is tried, a bounded number of times.
        """
        attempts = 20 if port == 0 else 1
        for attempt in range(attempts):
            udp = await open_udp(host, port, self._on_message)
            bound = udp.local_address
            tcp = TcpTransport(self._on_message)
            try:
                await tcp.listen(host, bound[1])
            except OSError:
                udp.close()
                if attempt == attempts - 1:
                    raise
                continue
            self.udp, self.tcp, self.address = udp, tcp, bound
            return bound
        raise AssertionError("unreachable")

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.udp is not None:
            self.udp.close()
        if self.tcp is not None:
            await self.tcp.close()

    # ------------------------------------------------------------------ input

    def _on_message(self, message: Request | Response, source: Addr, transport: Transport) -> None:
        actions = self.layer.handle_incoming(
            message, source, self.clock(), reliable=transport.reliable
        )
        self._perform(actions, transport)

    def _on_timer(self) -> None:
        self._timer = None
        self._perform(self.layer.handle_timeout(self.clock()), None)

    # ------------------------------------------------------------------ output

    def respond(self, key: TransactionKey, response: Response) -> None:
        """Send a response through server transaction ``key`` (ignored if it has ended)."""
        if self.layer.get(key) is None:
            log.debug("response %s for an ended transaction dropped", response.status)
            return
        try:
            actions = self.layer.send_response(key, response, self.clock())
        except ValueError as exc:  # e.g. a second final response after a CANCEL's 487
            log.debug("response %s not sent: %s", response.status, exc)
            return
        self._perform(actions, None)

    def send_request(
        self,
        request: Request,
        destination: Addr,
        on_response: ResponseCallback,
        *,
        transport: str = "udp",
    ) -> TransactionKey:
        """Start a client transaction; ``on_response`` hears every response, always a final one.

        The request's top Via must carry a fresh ``z9hG4bK`` branch and this endpoint's sent-by.
        """
        chosen = self._transport_named(transport)
        key, actions = self.layer.send_request(
            request, destination, self.clock(), reliable=chosen.reliable
        )
        self._clients[key] = (request, on_response)
        self._transport_of[key] = chosen
        self._perform(actions, chosen)
        return key

    def send_stateless(
        self, message: Request | Response | bytes, destination: Addr, transport: str = "udp"
    ) -> None:
        """Send outside any transaction (the ACK for a 2xx, RFC 3261 §13.2.2.4)."""
        try:
            self._transport_named(transport).send(message, destination)
        except (ConnectionError, OSError) as exc:
            log.debug("SIP send to %s:%s failed: %s", *destination, exc)

    def _transport_named(self, name: str) -> Transport:
        chosen: Transport | None = self.tcp if name == "tcp" else self.udp
        if chosen is None:
            raise RuntimeError("endpoint not started")
        return chosen

    def _client_final(self, key: TransactionKey, status: int, reason: str) -> None:
        entry = self._clients.pop(key, None)
        if entry is None:
            return
        request, callback = entry
        self._call_back(callback, make_response(request, status, reason))

    @staticmethod
    def _call_back(callback: ResponseCallback, response: Response) -> None:
        try:
            callback(response)
        except Exception:  # the application's bug must not stop the endpoint
            log.exception("SIP response callback failed on %s", response.status)

    def _perform(self, actions: list[Action], arrived_on: Transport | None) -> None:
        for action in actions:
            if isinstance(action, Send):
                self._send(action, arrived_on)
            elif isinstance(action, DeliverRequest):
                if action.key is None:  # an ACK for a 2xx: for the dialog layer
                    if self.ack_handler is not None:
                        try:
                            self.ack_handler(action.request, action.source)
                        except Exception:
                            log.exception("SIP ACK handler failed")
                    continue
                if arrived_on is not None:
                    self._transport_of[action.key] = arrived_on
                self._dispatch(action, action.key, arrived_on)
            elif isinstance(action, DeliverResponse):
                entry = self._clients.get(action.key) if action.key is not None else None
                if entry is None:
                    log.debug("SIP response %s with no client here dropped", action.response.status)
                else:
                    self._call_back(entry[1], action.response)
            elif isinstance(action, Terminated):
                self._transport_of.pop(action.key, None)
                self._clients.pop(action.key, None)
            elif isinstance(action, TimedOut):
                log.debug("SIP transaction %s: %s", action.key.branch, action)
                if action.timer in ("B", "F"):
                    self._client_final(action.key, 408, "Request Timeout")
            elif isinstance(action, TransportFailed):
                log.debug("SIP transaction %s: transport failed", action.key.branch)
                self._client_final(action.key, 503, "Service Unavailable (transport failed)")
        self._arm()

    def _send(self, action: Send, arrived_on: Transport | None) -> None:
        transport = self._transport_of.get(action.key) if action.key is not None else None
        transport = transport or arrived_on or self.udp
        if transport is None:
            return
        try:
            transport.send(action.message, action.destination)
        except (ConnectionError, OSError) as exc:
            log.debug("SIP send to %s:%s failed: %s", *action.destination, exc)
            if action.key is not None:
                failed = self.layer.handle_transport_error(action.key, self.clock())
                self._perform(failed, None)

    def _dispatch(self, action: DeliverRequest, key: TransactionKey, on: Transport | None) -> None:
        name = "tcp" if on is not None and on.reliable else "udp"
        incoming = Incoming(action.request, action.source, name, key, action.cancels)
        task = asyncio.get_running_loop().create_task(self._answer(incoming))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, incoming: Incoming) -> None:
        try:
            response = await self.handler(incoming)
        except Exception:  # a bug in the application must still answer the phone
            log.exception("SIP handler failed on %s", incoming.request.method)
            response = make_response(incoming.request, 500)
        if response is not None:
            self.respond(incoming.key, response)

    def _arm(self) -> None:
        """Keep exactly one asyncio timer, set for the layer's earliest deadline."""
        deadline = self.layer.next_deadline()
        if self._timer is not None:
            if deadline == self._timer_deadline:
                return
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            # the layer counts in ``clock`` seconds, asyncio in its own monotonic time
            delay = max(0.0, deadline - self.clock())
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)
            self._timer_deadline = deadline
