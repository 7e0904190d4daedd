"""SIP transactions (RFC 3261 §17, with RFC 6026's "Accepted" state) as sans-I/O state machines.

A :class:`TransactionLayer` owns every client and server transaction of one SIP endpoint. It never
touches a socket or a clock: the engine calls

* ``send_request(request, destination, now, reliable=…)`` to start a client transaction,
* ``send_response(key, response, now)`` to answer through a server transaction,
* ``handle_incoming(message, source, now, reliable=…)`` for every parsed message,
* ``handle_timeout(now)`` when ``next_deadline()`` has passed, and
* ``handle_transport_error(key, now)`` when a send failed,

and performs the returned actions in order: :class:`Send` (bytes to an address),
:class:`DeliverRequest`/:class:`DeliverResponse` (to the transaction user — the dialog/B2BUA layer),
:class:`TimedOut`, :class:`TransportFailed` and :class:`Terminated`.

States are named as in the RFC and the allowed transitions of each kind are the tables in
``TRANSITIONS``; timers A-M are kept per transaction with T1/T2/T4 from :class:`TimerConfig`. On a
reliable transport (TCP) the retransmission timers A, E, G are not started and D, I, J, K are zero.

Matching (§17.1.3, §17.2.3) is by the top Via ``branch`` with the ``z9hG4bK`` magic cookie; the
RFC 2543 fallback is *not* implemented — a request without a cookie branch gets a stateless 400.
ACK for a 2xx is not part of any INVITE transaction: the client side passes every 2xx to the TU
(which ACKs through its dialog, :meth:`callgate.sip.dialog.Dialog.create_ack`); the server side
keeps the INVITE transaction in "Accepted" for 64·T1, retransmits the 2xx at T1, 2T1… ≤ T2 on behalf
of the UAS core (§13.3.1.4) until an ACK with the same Call-ID, CSeq number and From tag arrives,
and reports ``TimedOut(key, "L")`` if none ever does (the TU should then send BYE).
"""

from __future__ import annotations

import enum
import heapq
import itertools
import secrets
from dataclasses import dataclass, field
from typing import NamedTuple

from callgate.sip.headers import HeaderError, Headers, Via
from callgate.sip.message import MAGIC_COOKIE, Request, Response
from callgate.sip.parser import make_response

Addr = tuple[str, int]


@dataclass(frozen=True)
class TimerConfig:
    """RFC 3261 timer base values in seconds (defaults from §17 Table 4)."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    timer_d: float = 32.0


class Kind(enum.Enum):
    INVITE_CLIENT = "INVITE client"
    NON_INVITE_CLIENT = "non-INVITE client"
    INVITE_SERVER = "INVITE server"
    NON_INVITE_SERVER = "non-INVITE server"


class State(enum.Enum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class Event(enum.Enum):
    PROVISIONAL = "1xx received"
    SUCCESS = "2xx received"
    FAILURE = "300-699 received"
    REQUEST = "request retransmission"
    ACK = "ACK"
    TU_PROVISIONAL = "TU sends 1xx"
    TU_SUCCESS = "TU sends 2xx"
    TU_FAILURE = "TU sends 300-699"
    TIMER_A = "A"
    TIMER_B = "B"
    TIMER_D = "D"
    TIMER_E = "E"
    TIMER_F = "F"
    TIMER_G = "G"
    TIMER_H = "H"
    TIMER_I = "I"
    TIMER_J = "J"
    TIMER_K = "K"
    TIMER_L = "L"
    TIMER_M = "M"
    TRANSPORT_ERROR = "transport error"


S, E = State, Event
# (state, event) -> next state. A pair missing from a table means the event is absorbed.
TRANSITIONS: dict[Kind, dict[State, dict[Event, State]]] = {
    Kind.INVITE_CLIENT: {
        S.CALLING: {
            E.PROVISIONAL: S.PROCEEDING,
            E.SUCCESS: S.ACCEPTED,
            E.FAILURE: S.COMPLETED,
            E.TIMER_A: S.CALLING,
            E.TIMER_B: S.TERMINATED,
            E.TRANSPORT_ERROR: S.TERMINATED,
        },
        S.PROCEEDING: {
            E.PROVISIONAL: S.PROCEEDING,
            E.SUCCESS: S.ACCEPTED,
            E.FAILURE: S.COMPLETED,
            E.TRANSPORT_ERROR: S.TERMINATED,
        },
        S.COMPLETED: {
            E.FAILURE: S.COMPLETED,
            E.TIMER_D: S.TERMINATED,
            E.TRANSPORT_ERROR: S.TERMINATED,
        },
        S.ACCEPTED: {E.SUCCESS: S.ACCEPTED, E.TIMER_M: S.TERMINATED},
    },
    Kind.NON_INVITE_CLIENT: {
        S.TRYING: {
            E.PROVISIONAL: S.PROCEEDING,
            E.SUCCESS: S.COMPLETED,
            E.FAILURE: S.COMPLETED,
            E.TIMER_E: S.TRYING,
            E.TIMER_F: S.TERMINATED,
            E.TRANSPORT_ERROR: S.TERMINATED,
        },
        S.PROCEEDING: {
            E.PROVISIONAL: S.PROCEEDING,
            E.SUCCESS: S.COMPLETED,
            E.FAILURE: S.COMPLETED,
            E.TIMER_E: S.PROCEEDING,
            E.TIMER_F: S.TERMINATED,
            E.TRANSPORT_ERROR: S.TERMINATED,
        },
        S.COMPLETED: {E.TIMER_K: S.TERMINATED},
    },
    Kind.INVITE_SERVER: {
        S.PROCEEDING: {
            E.REQUEST: S.PROCEEDING,
            E.TU_PROVISIONAL: S.PROCEEDING,
            E.TU_SUCCESS: S.ACCEPTED,
            E.TU_FAILURE: S.COMPLETED,
            E.TRANSPORT_ERROR: S.TERMINATED,
        },
        S.COMPLETED: {
            E.REQUEST: S.COMPLETED,
            E.ACK: S.CONFIRMED,
            E.TIMER_G: S.COMPLETED,
            E.TIMER_H: S.TERMINATED,
            E.TRANSPORT_ERROR: S.TERMINATED,
        },
        S.CONFIRMED: {E.TIMER_I: S.TERMINATED},
        S.ACCEPTED: {
            E.ACK: S.ACCEPTED,
            E.TU_SUCCESS: S.ACCEPTED,
            E.TIMER_G: S.ACCEPTED,
            E.TIMER_L: S.TERMINATED,
        },
    },
    Kind.NON_INVITE_SERVER: {
        S.TRYING: {
            E.REQUEST: S.TRYING,
            E.TU_PROVISIONAL: S.PROCEEDING,
            E.TU_SUCCESS: S.COMPLETED,
            E.TU_FAILURE: S.COMPLETED,
            E.TRANSPORT_ERROR: S.TERMINATED,
        },
        S.PROCEEDING: {
            E.REQUEST: S.PROCEEDING,
            E.TU_PROVISIONAL: S.PROCEEDING,
            E.TU_SUCCESS: S.COMPLETED,
            E.TU_FAILURE: S.COMPLETED,
            E.TRANSPORT_ERROR: S.TERMINATED,
        },
        S.COMPLETED: {
            E.REQUEST: S.COMPLETED,
            E.TIMER_J: S.TERMINATED,
            E.TRANSPORT_ERROR: S.TERMINATED,
        },
    },
}
del S, E


class TransactionKey(NamedTuple):
    """Identifies a transaction: branch, method (ACK counts as INVITE) and, server side, sent-by."""

    server: bool
    branch: str
    method: str
    sent_by: str = ""


# ---------------------------------------------------------------------- actions


@dataclass(frozen=True)
class Send:
    """Pass ``message`` to the transport for ``destination``."""

    message: Request | Response
    destination: Addr
    key: TransactionKey | None = None


@dataclass(frozen=True)
class DeliverRequest:
    """A new request for the TU. ``key`` is None for an ACK (no server transaction); for a CANCEL
    ``cancels`` is the INVITE server transaction it targets, when one exists."""

    request: Request
    source: Addr
    key: TransactionKey | None
    cancels: TransactionKey | None = None


@dataclass(frozen=True)
class DeliverResponse:
    """A response for the TU; ``key`` is None for a stray one (no client transaction matched)."""

    response: Response
    key: TransactionKey | None


@dataclass(frozen=True)
class TimedOut:
    """Timer B/F (no final response: act as 408), H (no ACK for a failure) or L (no ACK for 2xx)."""

    key: TransactionKey
    timer: str


@dataclass(frozen=True)
class TransportFailed:
    key: TransactionKey


@dataclass(frozen=True)
class Terminated:
    key: TransactionKey


Action = Send | DeliverRequest | DeliverResponse | TimedOut | TransportFailed | Terminated


@dataclass(eq=False)
class Transaction:
    """One transaction's state. ``peer`` is the destination (client) or the source (server)."""

    kind: Kind
    key: TransactionKey
    request: Request
    peer: Addr
    reliable: bool
    state: State
    timers: dict[str, float] = field(default_factory=dict)
    interval: float = 0.0
    last_response: Response | None = None
    ack: Request | None = None
    acked: bool = False
    dialog_key: tuple[str, int, str] | None = None

    @property
    def is_invite(self) -> bool:
        return self.kind in (Kind.INVITE_CLIENT, Kind.INVITE_SERVER)


def new_branch() -> str:
    """A fresh RFC 3261 branch (magic cookie + 64 random bits)."""
    return MAGIC_COOKIE + secrets.token_hex(8)


def build_ack_for_failure(invite: Request, response: Response) -> Request:
    """The ACK a client INVITE transaction sends for a 300-699 (RFC 3261 §17.1.1.3)."""
    headers = Headers()
    headers.add("Via", invite.headers.values("Via")[0])
    for value in invite.headers.get_all("Route"):
        headers.add("Route", value)
    headers.add("Max-Forwards", "70")
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", response.headers.get("To") or "")
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq.seq} ACK")
    return Request("ACK", invite.uri, headers)


def build_cancel(invite: Request) -> Request:
    """A CANCEL for a pending INVITE (RFC 3261 §9.1): same branch, Request-URI, tags, CSeq number.

    Send it with :meth:`TransactionLayer.send_request` only after a provisional response arrived.
    """
    headers = Headers()
    headers.add("Via", invite.headers.values("Via")[0])
    for value in invite.headers.get_all("Route"):
        headers.add("Route", value)
    headers.add("Max-Forwards", "70")
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", invite.headers.get("To") or "")
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq.seq} CANCEL")
    return Request("CANCEL", invite.uri, headers)


def _has_cookie(branch: str | None) -> bool:
    return (
        bool(branch)
        and branch is not None
        and branch.startswith(MAGIC_COOKIE)
        and len(branch) > len(MAGIC_COOKIE)
    )


class TransactionLayer:
    """All transactions of one endpoint, driven by messages, timeouts and an injected ``now``."""

    def __init__(self, timers: TimerConfig | None = None, *, auto_trying: bool = True) -> None:
        self.timers = timers or TimerConfig()
        self.auto_trying = auto_trying
        self._transactions: dict[TransactionKey, Transaction] = {}
        self._accepted: dict[tuple[str, int, str], TransactionKey] = {}
        self._heap: list[tuple[float, int, TransactionKey, str]] = []
        self._seq = itertools.count()

    # ------------------------------------------------------------------ queries

    def get(self, key: TransactionKey) -> Transaction | None:
        return self._transactions.get(key)

    def state(self, key: TransactionKey) -> State:
        txn = self._transactions.get(key)
        return txn.state if txn else State.TERMINATED

    def __len__(self) -> int:
        return len(self._transactions)

    def next_deadline(self) -> float | None:
        """When ``handle_timeout`` must next be called (None: no timer running)."""
        while self._heap:
            deadline, _, key, name = self._heap[0]
            txn = self._transactions.get(key)
            if txn is not None and txn.timers.get(name) == deadline:
                return deadline
            heapq.heappop(self._heap)
        return None

    # ------------------------------------------------------------------ client side

    def send_request(
        self, request: Request, destination: Addr, now: float, *, reliable: bool = False
    ) -> tuple[TransactionKey, list[Action]]:
        """Start a client transaction for ``request`` (its top Via needs a cookie branch)."""
        if request.method == "ACK":
            raise ValueError("an ACK for a 2xx is sent with Send, outside any transaction")
        branch = request.top_via.branch
        if not _has_cookie(branch):
            raise ValueError("the top Via needs an RFC 3261 branch (new_branch())")
        assert branch is not None
        key = TransactionKey(False, branch, request.method)
        if key in self._transactions:
            raise ValueError("a client transaction with this branch exists")
        invite = request.method == "INVITE"
        txn = Transaction(
            Kind.INVITE_CLIENT if invite else Kind.NON_INVITE_CLIENT,
            key,
            request,
            destination,
            reliable,
            State.CALLING if invite else State.TRYING,
        )
        self._transactions[key] = txn
        t1 = self.timers.t1
        if not reliable:
            txn.interval = t1
            self._start(txn, "A" if invite else "E", now + t1)
        self._start(txn, "B" if invite else "F", now + 64 * t1)
        return key, [Send(request, destination, key)]

    def _client_response(self, txn: Transaction, response: Response, now: float) -> list[Action]:
        if response.provisional:
            event = Event.PROVISIONAL
        elif response.success:
            event = Event.SUCCESS
        else:
            event = Event.FAILURE
        prior = txn.state
        target = self._transition(txn, event)
        if target is None:
            return []  # absorbed (e.g. a 1xx after the 2xx, a retransmitted final)
        out: list[Action] = []
        if txn.kind is Kind.INVITE_CLIENT:
            if event is Event.FAILURE:
                if prior is State.COMPLETED:
                    assert txn.ack is not None
                    return [Send(txn.ack, txn.peer, txn.key)]  # retransmitted final: re-ACK
                txn.ack = build_ack_for_failure(txn.request, response)
                out.append(Send(txn.ack, txn.peer, txn.key))
            self._stop(txn, "A")
            if target is not State.CALLING:
                self._stop(txn, "B")
            out.append(DeliverResponse(response, txn.key))
            if target is State.COMPLETED:
                out += self._after(txn, "D", 0.0 if txn.reliable else self.timers.timer_d, now)
            elif target is State.ACCEPTED and prior is not State.ACCEPTED:
                self._start(txn, "M", now + 64 * self.timers.t1)
            return out
        if prior is State.COMPLETED:
            return []
        out.append(DeliverResponse(response, txn.key))
        if target is State.COMPLETED:
            self._stop(txn, "E")
            self._stop(txn, "F")
            out += self._after(txn, "K", 0.0 if txn.reliable else self.timers.t4, now)
        return out

    # ------------------------------------------------------------------ server side

    def send_response(self, key: TransactionKey, response: Response, now: float) -> list[Action]:
        """Send ``response`` through the server transaction ``key``."""
        txn = self._transactions.get(key)
        if txn is None or not key.server:
            raise KeyError(f"no server transaction {key}")
        if response.provisional:
            event = Event.TU_PROVISIONAL
        elif response.success:
            event = Event.TU_SUCCESS
        else:
            event = Event.TU_FAILURE
        prior = txn.state
        target = self._transition(txn, event)
        if target is None:
            raise ValueError(f"cannot send {response.status} in state {txn.state.value}")
        txn.last_response = response
        out: list[Action] = [Send(response, txn.peer, key)]
        t1 = self.timers.t1
        if target is State.ACCEPTED and prior is not State.ACCEPTED:
            self._start(txn, "L", now + 64 * t1)
            # 2xx retransmission is end-to-end (§13.3.1.4), so it runs on reliable transports too
            txn.interval = t1
            self._start(txn, "G", now + t1)
            request = txn.request
            txn.dialog_key = (request.call_id, request.cseq.seq, request.from_.tag or "")
            self._accepted[txn.dialog_key] = key
        elif target is State.COMPLETED and txn.kind is Kind.INVITE_SERVER:
            if not txn.reliable:
                txn.interval = t1
                self._start(txn, "G", now + t1)
            self._start(txn, "H", now + 64 * t1)
        elif target is State.COMPLETED:
            out += self._after(txn, "J", 0.0 if txn.reliable else 64 * t1, now)
        return out

    def _stamp_via(self, request: Request, source: Addr) -> Via:
        """Add received/rport to the top Via (RFC 3261 §18.2.1, RFC 3581)."""
        values = request.headers.values("Via")
        via = Via.parse(values[0])
        changed = False
        if via.host.strip("[]").lower() != source[0].lower() or via.wants_rport:
            via.params["received"] = source[0]
            changed = True
        if via.wants_rport and via.rport is None:
            via.params["rport"] = str(source[1])
            changed = True
        if changed:
            request.headers.remove("Via")
            request.headers.add("Via", str(via))
            for value in values[1:]:
                request.headers.add("Via", value)
        return via

    def _server_request(
        self, request: Request, source: Addr, now: float, reliable: bool
    ) -> list[Action]:
        try:
            via = self._stamp_via(request, source)
        except HeaderError:
            return []
        branch = via.branch
        if not _has_cookie(branch):
            if request.method == "ACK":
                return []
            reject = make_response(request, 400, "Missing RFC 3261 Branch")
            return [Send(reject, source, None)]
        assert branch is not None
        host, port = via.sent_by
        sent_by = f"{host}:{port or ''}"
        method = "INVITE" if request.method == "ACK" else request.method
        key = TransactionKey(True, branch, method, sent_by)
        txn = self._transactions.get(key)
        if request.method == "ACK":
            return self._server_ack(txn, request, source, now)
        if txn is not None:
            target = self._transition(txn, Event.REQUEST)
            if target is not None and txn.last_response is not None:
                return [Send(txn.last_response, txn.peer, key)]
            return []
        invite = request.method == "INVITE"
        txn = Transaction(
            Kind.INVITE_SERVER if invite else Kind.NON_INVITE_SERVER,
            key,
            request,
            source,
            reliable,
            State.PROCEEDING if invite else State.TRYING,
        )
        self._transactions[key] = txn
        out: list[Action] = []
        if invite and self.auto_trying:
            trying = make_response(request, 100)
            txn.last_response = trying
            out.append(Send(trying, source, key))
        cancels = None
        if request.method == "CANCEL":
            invite_key = key._replace(method="INVITE")
            cancels = invite_key if invite_key in self._transactions else None
        out.append(DeliverRequest(request, source, key, cancels))
        return out

    def _server_ack(
        self, txn: Transaction | None, ack: Request, source: Addr, now: float
    ) -> list[Action]:
        if txn is not None and txn.state in (State.COMPLETED, State.CONFIRMED):
            if self._transition(txn, Event.ACK) is State.CONFIRMED:
                self._stop(txn, "G")
                self._stop(txn, "H")
                return self._after(txn, "I", 0.0 if txn.reliable else self.timers.t4, now)
            return []
        try:
            dialog_key = (ack.call_id, ack.cseq.seq, ack.from_.tag or "")
        except HeaderError:
            return []
        accepted = self._accepted.get(dialog_key)
        if accepted is not None:
            invite_txn = self._transactions[accepted]
            invite_txn.acked = True
            self._stop(invite_txn, "G")
        return [DeliverRequest(ack, source, None)]

    # ------------------------------------------------------------------ entry points

    def handle_incoming(
        self, message: Request | Response, source: Addr, now: float, *, reliable: bool = False
    ) -> list[Action]:
        """Match a parsed message to a transaction (or create a server one) and act on it."""
        if isinstance(message, Request):
            return self._server_request(message, source, now, reliable)
        try:
            branch = message.top_via.branch or ""
            key = TransactionKey(False, branch, message.cseq.method)
        except HeaderError:
            return []
        txn = self._transactions.get(key)
        if txn is None:
            return [DeliverResponse(message, None)]
        return self._client_response(txn, message, now)

    def handle_timeout(self, now: float) -> list[Action]:
        """Fire every timer due at ``now``."""
        out: list[Action] = []
        while self._heap and self._heap[0][0] <= now:
            deadline, _, key, name = heapq.heappop(self._heap)
            txn = self._transactions.get(key)
            if txn is None or txn.timers.get(name) != deadline:
                continue
            del txn.timers[name]
            out += self._fire(txn, name, deadline)
        return out

    def handle_transport_error(self, key: TransactionKey, now: float) -> list[Action]:
        txn = self._transactions.get(key)
        if txn is None or self._transition(txn, Event.TRANSPORT_ERROR) is None:
            return []
        return [TransportFailed(key), *self._terminate(txn)]

    # ------------------------------------------------------------------ timers

    def _fire(self, txn: Transaction, name: str, deadline: float) -> list[Action]:
        event = Event[f"TIMER_{name}"]
        prior = txn.state
        target = self._transition(txn, event)
        if target is None:
            return []
        key = txn.key
        if target is State.TERMINATED:
            out: list[Action] = []
            if name in ("B", "F", "H") or (name == "L" and not txn.acked):
                out.append(TimedOut(key, name))
            return out + self._terminate(txn)
        t2 = self.timers.t2
        if name == "A":
            txn.interval *= 2  # INVITE retransmissions double without the T2 cap (§17.1.1.2)
            self._start(txn, "A", deadline + txn.interval)
            return [Send(txn.request, txn.peer, key)]
        if name == "E":
            txn.interval = t2 if prior is State.PROCEEDING else min(2 * txn.interval, t2)
            self._start(txn, "E", deadline + txn.interval)
            return [Send(txn.request, txn.peer, key)]
        if name == "G":
            txn.interval = min(2 * txn.interval, t2)
            self._start(txn, "G", deadline + txn.interval)
            assert txn.last_response is not None
            return [Send(txn.last_response, txn.peer, key)]
        return []

    def _after(self, txn: Transaction, name: str, delay: float, now: float) -> list[Action]:
        """Start a wait timer, or terminate at once when it is zero (reliable transports)."""
        if delay <= 0:
            return self._terminate(txn)
        self._start(txn, name, now + delay)
        return []

    def _start(self, txn: Transaction, name: str, deadline: float) -> None:
        txn.timers[name] = deadline
        heapq.heappush(self._heap, (deadline, next(self._seq), txn.key, name))

    def _stop(self, txn: Transaction, name: str) -> None:
        txn.timers.pop(name, None)

    # ------------------------------------------------------------------ machinery

    def _transition(self, txn: Transaction, event: Event) -> State | None:
        target = TRANSITIONS[txn.kind].get(txn.state, {}).get(event)
        if target is not None:
            txn.state = target
        return target

    def _terminate(self, txn: Transaction) -> list[Action]:
        txn.state = State.TERMINATED
        txn.timers.clear()
        self._transactions.pop(txn.key, None)
        if txn.dialog_key is not None and self._accepted.get(txn.dialog_key) == txn.key:
            del self._accepted[txn.dialog_key]
        return [Terminated(txn.key)]
