"""A two-endpoint in-memory network for transaction and dialog tests, with a fake clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from callgate.sip.headers import Headers
from callgate.sip.message import Request, Response
from callgate.sip.parser import parse
from callgate.sip.transaction import (
    Action,
    DeliverRequest,
    DeliverResponse,
    Send,
    TimerConfig,
    TransactionLayer,
    new_branch,
)
from callgate.sip.uri import parse_uri

ALICE = ("127.0.0.1", 5071)
BOB = ("127.0.0.1", 5072)


@dataclass
class Endpoint:
    name: str
    addr: tuple[str, int]
    layer: TransactionLayer
    delivered: list[Request | Response] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)


@dataclass
class Wire:
    """Carries Send actions between two layers through bytes; ``drop`` filters what is lost."""

    reliable: bool = False
    timers: TimerConfig = field(default_factory=TimerConfig)
    now: float = 0.0
    drop: Callable[[Request | Response], bool] = lambda _: False
    sent: list[tuple[float, str, Request | Response]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.alice = Endpoint("alice", ALICE, TransactionLayer(self.timers))
        self.bob = Endpoint("bob", BOB, TransactionLayer(self.timers))

    def peer(self, endpoint: Endpoint) -> Endpoint:
        return self.bob if endpoint is self.alice else self.alice

    def run(self, endpoint: Endpoint, actions: list[Action]) -> None:
        queue = [(endpoint, a) for a in actions]
        while queue:
            owner, action = queue.pop(0)
            owner.actions.append(action)
            if isinstance(action, DeliverRequest):
                owner.delivered.append(action.request)
            elif isinstance(action, DeliverResponse):
                owner.delivered.append(action.response)
            if not isinstance(action, Send):
                continue
            self.sent.append((self.now, owner.name, action.message))
            if self.drop(action.message):
                continue
            target = self.peer(owner)
            message = parse(bytes(action.message))
            more = target.layer.handle_incoming(
                message, owner.addr, self.now, reliable=self.reliable
            )
            queue += [(target, a) for a in more]

    def advance_to(self, when: float) -> None:
        """Move the clock, firing every timer of both layers in deadline order."""
        while True:
            deadlines = [
                (d, e)
                for e in (self.alice, self.bob)
                if (d := e.layer.next_deadline()) is not None and d <= when
            ]
            if not deadlines:
                break
            deadline, endpoint = min(deadlines, key=lambda pair: pair[0])
            self.now = deadline
            self.run(endpoint, endpoint.layer.handle_timeout(deadline))
        self.now = when

    def send_times(self, sender: str, label: str) -> list[float]:
        return [t for t, who, m in self.sent if who == sender and _label(m) == label]


def _label(message: Request | Response) -> str:
    if isinstance(message, Request):
        return message.method
    return f"{message.status} {message.cseq.method}"


def make_request(
    method: str,
    *,
    transport: str = "UDP",
    branch: str | None = None,
    call_id: str = "call-1",
    seq: int = 1,
) -> Request:
    headers = Headers()
    headers.add("Via", f"SIP/2.0/{transport} 127.0.0.1:5071;branch={branch or new_branch()}")
    headers.add("Max-Forwards", "70")
    headers.add("From", "<sip:101@127.0.0.1>;tag=alice-tag")
    headers.add("To", "<sip:102@127.0.0.1>")
    headers.add("Call-ID", call_id)
    headers.add("CSeq", f"{seq} {method}")
    headers.add("Contact", "<sip:101@127.0.0.1:5071>")
    return Request(method, parse_uri("sip:102@127.0.0.1:5072"), headers)
