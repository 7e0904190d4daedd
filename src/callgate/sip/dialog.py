"""SIP dialogs (RFC 3261 §12): identity, route set, remote target, CSeq, in-dialog requests.

A :class:`Dialog` is created by the UAC from a 1xx-with-To-tag or 2xx to its INVITE
(:meth:`Dialog.from_uac`) or by the UAS from the INVITE it answers (:meth:`Dialog.from_uas`). The
engine keeps dialogs in a dict keyed by :class:`DialogId` and finds the dialog of an incoming
message with :func:`dialog_id_of`. In-dialog requests (BYE, re-INVITE, REFER, NOTIFY, INFO…) come
from :meth:`Dialog.create_request`, the ACK for a 2xx from :meth:`Dialog.create_ack`; both apply the
route set (loose and strict routing, §12.2.1.1) and return the URI of the next hop
(:attr:`Dialog.next_hop`) that the engine resolves to an address. Incoming in-dialog requests go
through :meth:`Dialog.receive_request`, which enforces the remote CSeq order and refreshes the
remote target. The dialog holds no timers: the INVITE transaction and the B2BUA own those.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NamedTuple

from callgate.sip.headers import Headers, NameAddr
from callgate.sip.message import Request, Response
from callgate.sip.transaction import new_branch
from callgate.sip.uri import SipUri, Uri

# Methods whose Contact refreshes the remote target (RFC 3261 §12.2, RFC 3515, RFC 6665, RFC 3311)
TARGET_REFRESH = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})


class DialogId(NamedTuple):
    call_id: str
    local_tag: str
    remote_tag: str


class DialogState(enum.Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class DialogError(ValueError):
    """A message that cannot create or belong to the dialog (missing tag, Contact…)."""


def dialog_id_of(message: Request | Response, *, local_is_uas: bool | None = None) -> DialogId:
    """The id of the dialog a message belongs to, from our side.

    For an incoming request our tag is in To and the peer's in From; for a response to our request
    it is the other way round. ``local_is_uas`` overrides that reading.
    """
    incoming_request = isinstance(message, Request) if local_is_uas is None else local_is_uas
    from_tag = message.from_.tag or ""
    to_tag = message.to.tag or ""
    if incoming_request:
        return DialogId(message.call_id, to_tag, from_tag)
    return DialogId(message.call_id, from_tag, to_tag)


@dataclass(eq=False)
class Dialog:
    """The state of one dialog, as seen from this endpoint."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: NameAddr
    remote_uri: NameAddr
    remote_target: Uri
    local_contact: NameAddr
    route_set: list[NameAddr] = field(default_factory=list)
    local_seq: int = 0
    remote_seq: int | None = None
    secure: bool = False
    state: DialogState = DialogState.EARLY
    invite_seq: int | None = None

    @property
    def id(self) -> DialogId:
        return DialogId(self.call_id, self.local_tag, self.remote_tag)

    # ------------------------------------------------------------------ creation

    @classmethod
    def from_uac(cls, request: Request, response: Response) -> Dialog:
        """The UAC's dialog from a 1xx (with To tag) or 2xx to ``request`` (§12.1.2)."""
        to = response.to
        if to.tag is None or not 100 < response.status < 300:
            raise DialogError("a dialog needs a 101-299 response with a To tag")
        contacts = response.contacts
        if not contacts and response.success:
            raise DialogError("a 2xx creating a dialog must carry a Contact")
        local = request.from_
        if local.tag is None:
            raise DialogError("our request has no From tag")
        routes = list(reversed(response.record_routes))
        target = contacts[0].uri if contacts else request.uri
        own_contacts = request.contacts
        dialog = cls(
            call_id=request.call_id,
            local_tag=local.tag,
            remote_tag=to.tag,
            local_uri=_without_tag(local),
            remote_uri=_without_tag(to),
            remote_target=target,
            local_contact=own_contacts[0] if own_contacts else NameAddr(request.uri),
            route_set=routes,
            local_seq=request.cseq.seq,
            secure=isinstance(request.uri, SipUri) and request.uri.secure,
            state=DialogState.CONFIRMED if response.success else DialogState.EARLY,
        )
        if request.method == "INVITE":
            dialog.invite_seq = request.cseq.seq
        return dialog

    @classmethod
    def from_uas(
        cls, request: Request, local_tag: str, local_contact: NameAddr, *, confirmed: bool = False
    ) -> Dialog:
        """The UAS's dialog for ``request`` answered with To tag ``local_tag`` (§12.1.1)."""
        contacts = request.contacts
        if not contacts:
            raise DialogError("a dialog-creating request must carry a Contact")
        remote = request.from_
        if remote.tag is None:
            raise DialogError("the request has no From tag")
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote.tag,
            local_uri=_without_tag(request.to),
            remote_uri=_without_tag(remote),
            remote_target=contacts[0].uri,
            local_contact=local_contact,
            route_set=request.record_routes,
            local_seq=0,
            remote_seq=request.cseq.seq,
            secure=isinstance(request.uri, SipUri) and request.uri.secure,
            state=DialogState.CONFIRMED if confirmed else DialogState.EARLY,
            invite_seq=request.cseq.seq if request.method == "INVITE" else None,
        )

    # ------------------------------------------------------------------ updates

    def update_from_response(self, request: Request, response: Response) -> None:
        """Apply a response to a request we sent in this dialog (confirm, refresh target)."""
        if response.success:
            if self.state is DialogState.EARLY and request.method == "INVITE":
                # the 2xx fixes the route set for the life of the dialog (§12.1.2)
                self.route_set = list(reversed(response.record_routes))
                self.state = DialogState.CONFIRMED
            if request.method in TARGET_REFRESH:
                contacts = response.contacts
                if contacts:
                    self.remote_target = contacts[0].uri
        elif response.status in (408, 481) or (
            response.status >= 300
            and self.state is DialogState.EARLY
            and request.method == "INVITE"
        ):
            self.state = DialogState.TERMINATED

    def receive_request(self, request: Request) -> int | None:
        """Check an incoming in-dialog request; returns an error status to answer, else None.

        A CSeq lower than (or, except for ACK/CANCEL, equal to) the last one is out of order:
        answer 500 (§12.2.2). A target-refresh request updates the remote target.
        """
        seq = request.cseq.seq
        if request.method not in ("ACK", "CANCEL"):
            if self.remote_seq is not None and seq <= self.remote_seq:
                return 500
            self.remote_seq = seq
        if request.method in TARGET_REFRESH:
            contacts = request.contacts
            if contacts:
                self.remote_target = contacts[0].uri
        if request.method == "BYE":
            self.state = DialogState.TERMINATED
        return None

    # ------------------------------------------------------------------ requests

    @property
    def next_hop(self) -> Uri:
        """Where an in-dialog request goes first: the first route, or the remote target."""
        return self.route_set[0].uri if self.route_set else self.remote_target

    def _route(self) -> tuple[Uri, list[str]]:
        """Request-URI and Route values per §12.2.1.1 (strict routing when the first lacks lr)."""
        if not self.route_set:
            return self.remote_target, []
        first = self.route_set[0].uri
        if isinstance(first, SipUri) and first.loose_route:
            return self.remote_target, [str(r) for r in self.route_set]
        request_uri: Uri = first
        if isinstance(first, SipUri):
            request_uri = first.copy()
            request_uri.headers = []
        routes = [str(r) for r in self.route_set[1:]] + [f"<{self.remote_target}>"]
        return request_uri, routes

    def create_request(
        self,
        method: str,
        *,
        via_host: str,
        via_port: int | None = None,
        transport: str = "UDP",
        branch: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> Request:
        """A new in-dialog request with the next local CSeq (not for ACK/CANCEL)."""
        if method in ("ACK", "CANCEL"):
            raise ValueError("use create_ack (2xx ACK) or transaction.build_cancel")
        self.local_seq += 1
        request = self._build(
            method,
            self.local_seq,
            via_host,
            via_port,
            transport,
            branch or new_branch(),
            body,
            content_type,
            extra,
        )
        if method == "INVITE":
            self.invite_seq = self.local_seq
        return request

    def create_ack(
        self,
        cseq: int | None = None,
        *,
        via_host: str,
        via_port: int | None = None,
        transport: str = "UDP",
        branch: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        """The end-to-end ACK for a 2xx to the INVITE with CSeq ``cseq`` (default: the last one).

        It gets a new branch (it is its own transaction, §13.2.2.4); send it with a plain
        :class:`~callgate.sip.transaction.Send` to :attr:`next_hop` and again for every
        retransmitted 2xx.
        """
        seq = cseq if cseq is not None else self.invite_seq
        if seq is None:
            raise ValueError("no INVITE to acknowledge")
        return self._build(
            "ACK",
            seq,
            via_host,
            via_port,
            transport,
            branch or new_branch(),
            body,
            content_type,
            None,
        )

    def _build(
        self,
        method: str,
        seq: int,
        via_host: str,
        via_port: int | None,
        transport: str,
        branch: str,
        body: bytes,
        content_type: str | None,
        extra: list[tuple[str, str]] | None,
    ) -> Request:
        request_uri, routes = self._route()
        headers = Headers()
        port = f":{via_port}" if via_port else ""
        headers.add("Via", f"SIP/2.0/{transport.upper()} {via_host}{port};branch={branch};rport")
        headers.add("Max-Forwards", "70")
        for value in routes:
            headers.add("Route", value)
        headers.add("From", str(self.local_uri.with_tag(self.local_tag)))
        headers.add("To", str(self.remote_uri.with_tag(self.remote_tag)))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{seq} {method}")
        if method in TARGET_REFRESH or method == "ACK":
            headers.add("Contact", str(self.local_contact))
        for name, value in extra or []:
            headers.add(name, value)
        if content_type is not None:
            headers.add("Content-Type", content_type)
        uri = request_uri.copy() if isinstance(request_uri, SipUri) else request_uri
        return Request(method, uri, headers, body)


def _without_tag(addr: NameAddr) -> NameAddr:
    clone = addr.copy()
    clone.params.pop("tag")
    return clone
