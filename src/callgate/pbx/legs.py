"""The SIP legs of a call and the INVITE that forks to a callee's phones, for the B2BUA.

* :class:`SipLeg` — one dialog of a call, towards one phone or trunk, with its relay leg and
  its hold state; :class:`ActiveCall` — a call in progress: the pure
  :class:`~callgate.pbx.call.Call`, its legs, bridge, recorder and the ``stop`` future its task
  waits on.
* :class:`Dialing` — INVITEs to every contact of a callee (forking), sharing one relay leg: the
  first 2xx wins and the other forks get CANCEL; a 183 with SDP sets early media up; a 401/407
  from a trunk is answered once with its credentials; a 2xx that arrives too late is
  acknowledged and hung up at once.

What a :class:`Dialing` needs of the engine is the small :class:`LegHost` protocol
(:class:`~callgate.pbx.b2bua.CallEngine` implements it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from callgate.media.recorder import Recorder
from callgate.media.relay import Bridge, MediaLeg
from callgate.media.sdp import Codec, SdpError, build_offer, media_target, parse_sdp
from callgate.pbx.call import Call, Outcome, Participant, new_id
from callgate.pbx.endpoint import SipEndpoint
from callgate.pbx.routing import TrunkRouteLike, TrunkRouting
from callgate.sip.dialog import Dialog, DialogError, DialogId
from callgate.sip.headers import HeaderError, NameAddr
from callgate.sip.message import Request, Response
from callgate.sip.transaction import TransactionKey, build_cancel
from callgate.sip.uri import UriError

log = logging.getLogger("callgate.sip")

Addr = tuple[str, int]


class LegHost(Protocol):
    """What a :class:`Dialing` asks of the engine."""

    endpoint: SipEndpoint
    media_host: str

    @property
    def trunks(self) -> TrunkRouting | None: ...

    def build_invite(
        self, contact: Contact, call_id: str, body: bytes, *, max_forwards: int = 70
    ) -> Request: ...

    def send_ack(self, leg: SipLeg) -> None: ...

    def send_bye(self, leg: SipLeg) -> None: ...

    def register(self, leg: SipLeg) -> None: ...


@dataclass(eq=False)
class SipLeg:
    """One SIP dialog of a call, towards one phone or trunk, with its relay leg."""

    active: ActiveCall
    media: MediaLeg
    peer: Addr  # where requests of this dialog go (the phone's source address)
    transport: str  # "udp" | "tcp"
    uas: bool  # True: the phone called us (we answered its INVITE)
    codec: Codec
    dtmf: Codec | None
    participant: Participant | None = None
    dialog: Dialog | None = None
    invite: Request | None = None
    server_key: TransactionKey | None = None
    session_id: int = field(default_factory=lambda: random.randrange(1, 2**31))
    sdp_version: int = 0
    answer_sdp: bytes = b""
    acked: bool = False
    ack: bytes | None = None  # the ACK sent for the 2xx: re-sent unchanged for retransmissions
    holding: bool = False  # this leg's phone put the other party on hold
    detached: bool = False  # left the call (transfer) or ended: its BYE does not end the call
    gone: bool = False  # BYE sent or received


@dataclass
class Transfer:
    """A blind transfer queued for a call's task (from a REFER or the API)."""

    number: str
    transferor: SipLeg  # the leg that leaves
    refer: bool = False  # from a REFER: report progress with NOTIFY


@dataclass(eq=False)
class ActiveCall:
    """A call in progress: its state, its legs and media, and what its task waits on."""

    call: Call
    stop: asyncio.Future[Outcome]
    legs: list[SipLeg] = field(default_factory=list)
    bridge: Bridge | None = None
    recorder: Recorder | None = None
    record_started: dt.datetime | None = None
    transfers: asyncio.Queue[Transfer] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None
    dialings: list[Dialing] = field(default_factory=list)
    max_forwards: int = 70  # for our INVITEs: one less than the caller's, so loops end
    transfers_done: int = 0
    # engine index keys that point at this call, removed when it ends (no scan of every call)
    invite_keys: list[TransactionKey] = field(default_factory=list)
    dialog_ids: list[DialogId] = field(default_factory=list)

    def request_stop(self, outcome: Outcome) -> None:
        if not self.stop.done():
            self.stop.set_result(outcome)

    def live_legs(self) -> list[SipLeg]:
        return [leg for leg in self.legs if not leg.detached]

    def other(self, leg: SipLeg) -> SipLeg | None:
        return next((x for x in self.live_legs() if x is not leg), None)


@dataclass(frozen=True)
class Contact:
    """One INVITE to send: Request-URI, where to, From/To as the callee should see them."""

    uri: str
    destination: Addr
    transport: str
    from_: NameAddr
    to: NameAddr
    route: TrunkRouteLike | None = None


@dataclass(eq=False)
class Fork:
    """One INVITE client transaction of a :class:`Dialing` (a second one after a trunk's
    challenge)."""

    contact: Contact
    request: Request
    provisional: bool = False
    cancel_sent: bool = False
    final: int | None = None
    authorized: bool = False
    leg: SipLeg | None = None


class Dialing:
    """INVITEs to one or more contacts sharing one relay leg: the first 2xx wins.

    ``won`` resolves with the winning :class:`SipLeg`, or None once every fork failed. After
    :meth:`close` (a winner, no answer in time, the caller gave up) pending forks are cancelled and
    a late 2xx is acknowledged and hung up at once.
    """

    def __init__(
        self,
        engine: LegHost,
        active: ActiveCall,
        media: MediaLeg,
        codecs: list[Codec],
        dtmf: Codec | None,
        participant: Participant | None,
        on_ringing: Callable[[bool], None] | None = None,
    ) -> None:
        self.engine = engine
        self.active = active
        self.media = media
        self.codecs = codecs
        self.dtmf = dtmf
        self.participant = participant
        self.on_ringing = on_ringing
        self.forks: list[Fork] = []
        self.statuses: list[int] = []
        self.ringing = False
        self.early = False  # a 183 with usable SDP set the relay leg up for early media
        self.closed = False
        self.won: asyncio.Future[SipLeg | None] = asyncio.get_running_loop().create_future()
        self.session_id = random.randrange(1, 2**31)
        self.offer = build_offer(
            engine.media_host,
            media.local[1],
            codecs=codecs,
            dtmf=dtmf,
            session_id=self.session_id,
        ).to_bytes()

    def start(self, contacts: list[Contact]) -> None:
        for contact in contacts:
            request = self.engine.build_invite(
                contact,
                f"{new_id()}@callgate",
                self.offer,
                max_forwards=self.active.max_forwards,
            )
            self._send(Fork(contact, request))

    def _send(self, fork: Fork) -> None:
        self.forks.append(fork)
        self.engine.endpoint.send_request(
            fork.request,
            fork.contact.destination,
            lambda response: self._on_response(fork, response),
            transport=fork.contact.transport,
        )

    def close(self) -> None:
        """Stop ringing: cancel every fork still pending."""
        self.closed = True
        for fork in self.forks:
            if fork.final is None and fork.provisional and not fork.cancel_sent:
                self._cancel(fork)
        self._settle()

    def _cancel(self, fork: Fork) -> None:
        fork.cancel_sent = True
        self.engine.endpoint.send_request(
            build_cancel(fork.request),
            fork.contact.destination,
            ignore,
            transport=fork.contact.transport,
        )

    def _settle(self) -> None:
        if not self.won.done() and (self.closed or all(f.final is not None for f in self.forks)):
            self.won.set_result(None)

    def _on_response(self, fork: Fork, response: Response) -> None:
        if response.provisional:
            fork.provisional = True
            if self.closed and fork.final is None and not fork.cancel_sent:
                self._cancel(fork)
            elif response.status in (180, 183) and not self.closed:
                early = response.status == 183 and self._early_media(response)
                if early or not self.ringing:
                    self.ringing = True
                    if self.on_ringing is not None:
                        self.on_ringing(early)
            return
        if response.success:
            self._on_success(fork, response)
            return
        if fork.final is not None:
            return
        fork.final = response.status
        route = fork.contact.route
        trunks = self.engine.trunks
        if (
            response.status in (401, 407)
            and route is not None
            and trunks is not None
            and not fork.authorized
            and not self.closed
        ):
            retry = trunks.authorize(fork.request, response, route)
            if retry is not None:
                again = Fork(fork.contact, retry, authorized=True)
                self._send(again)
                return
        self.statuses.append(response.status)
        self._settle()

    def _early_media(self, response: Response) -> bool:
        """Take the first usable SDP of a 183 (ringback or announcements from the far end)."""
        if self.early or not response.body:
            return False
        try:
            target = media_target(parse_sdp(response.body))
        except SdpError:
            return False
        theirs = target.codec
        if theirs is None or not any(c.same_format(theirs) for c in self.codecs):
            return False
        self.media.expect(target.address, target.port, payload_type=theirs.payload_type)
        self.early = True
        return True

    def _on_success(self, fork: Fork, response: Response) -> None:
        engine = self.engine
        if fork.leg is not None:  # a retransmitted 2xx: our ACK was lost
            engine.send_ack(fork.leg)
            return
        fork.final = response.status
        try:
            dialog = Dialog.from_uac(fork.request, response)
        except (DialogError, HeaderError, UriError):
            log.info("call %s: unusable 2xx from %s", self.active.call.call_id, fork.contact.uri)
            self.statuses.append(502)
            self._settle()
            return
        codec = self.codecs[0]
        leg = SipLeg(
            self.active,
            self.media,
            fork.contact.destination,
            fork.contact.transport,
            uas=False,
            codec=codec,
            dtmf=self.dtmf,
            participant=self.participant,
            dialog=dialog,
            invite=fork.request,
            session_id=self.session_id,
        )
        fork.leg = leg
        engine.send_ack(leg)
        if self.closed or self.won.done():
            engine.send_bye(leg)  # lost the race, or nobody waits for it any more
            return
        try:
            target = media_target(parse_sdp(response.body))
        except SdpError:
            target = None
        chosen = None
        if target is not None and target.codec is not None:
            theirs = target.codec
            chosen = next((c for c in self.codecs if c.same_format(theirs)), None)
        if target is None or target.codec is None or chosen is None:
            log.info("call %s: callee answered without a usable SDP", self.active.call.call_id)
            engine.send_bye(leg)
            self.statuses.append(488)
            self._settle()
            return
        leg.codec = Codec(target.codec.payload_type, chosen.name, chosen.rate, chosen.channels)
        self.media.expect(target.address, target.port, payload_type=target.codec.payload_type)
        engine.register(leg)
        self.closed = True
        for other in self.forks:
            if other is not fork and other.final is None and other.provisional:
                self._cancel(other)
        self.won.set_result(leg)


def ignore(response: Response) -> None:
    pass
