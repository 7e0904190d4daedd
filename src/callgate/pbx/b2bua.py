"""The back-to-back user agent: calls between phones (and trunks) with media anchored here.

:class:`CallEngine` sits behind :class:`~callgate.pbx.service.PbxService`. For an INVITE from a
phone it authenticates the caller (407 digest, like REGISTER's 401), routes the dialled number
(:mod:`callgate.pbx.routing`), answers the caller's SDP with a port of the media relay and calls
every registered contact of the callee with an offer of the caller's codec only (first 2xx wins,
the others get CANCEL). When the callee answers, the two relay legs are bridged and the caller gets
its 200 (legs and forking: :mod:`callgate.pbx.legs`; call state: :mod:`callgate.pbx.call`).
Every call runs in one asyncio task (``_run_inbound``/``_run_callback``) that owns its timers;
SIP requests arriving in its dialogs (BYE, re-INVITE, REFER, CANCEL) and the API's control
methods only set its ``stop`` future or queue a transfer, so the call's state changes in one
place.

Identifiers: a call's ``call_id`` (also the call-history ``call_uuid``) and ``call_api_id`` are
uuid hex strings made here, never a SIP Call-ID; each participant has a ``sub_call_id``. Events
(:class:`~callgate.calls.live.CallEvent`) go to the :class:`~callgate.calls.live.EventSink`;
the call-history row is written when the call ends (in batches when ``history`` is a
:class:`~callgate.common.batch.BatchWriter`: one transaction for the calls that ended meanwhile).

Any exception while handling one call ends that call (500 to a caller still waiting, BYE to
answered legs); the engine and the other calls go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from callgate.calls.live import CallbackRequest, CallEvent, EventSink, LiveCall, Originated
from callgate.calls.models import CallFlow
from callgate.calls.service import FinishedCall
from callgate.common.batch import BatchWriter
from callgate.common.errors import Conflict, InvalidInput
from callgate.media.g711 import ULAW_SILENCE
from callgate.media.recorder import Recorder
from callgate.media.relay import MediaRelay
from callgate.media.sdp import (
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    Codec,
    SdpError,
    SessionDescription,
    build_answer,
    build_offer,
    media_target,
    parse_sdp,
)
from callgate.media.wav import G711Audio
from callgate.pbx.call import (
    OUTCOMES,
    Call,
    CallState,
    Outcome,
    Party,
    Step,
    new_id,
    outcome_of_status,
)
from callgate.pbx.directory import DirectoryCache
from callgate.pbx.endpoint import Incoming, SipEndpoint
from callgate.pbx.legs import ActiveCall, Contact, Dialing, SipLeg, Transfer, ignore
from callgate.pbx.registrar import Bindings, digest_challenge
from callgate.pbx.repository import Directory, SipAccount
from callgate.pbx.routing import (
    ExternalTarget,
    InboundCallLike,
    InternalTarget,
    Router,
    Target,
    TrunkRouting,
)
from callgate.phones.models import NoAnswerAction
from callgate.sip.dialog import Dialog, DialogError, DialogId, DialogState, dialog_id_of
from callgate.sip.digest import DigestServer, Ha1Pair
from callgate.sip.digest import Outcome as DigestOutcome
from callgate.sip.headers import AuthHeader, HeaderError, Headers, NameAddr
from callgate.sip.message import Request, Response
from callgate.sip.parser import make_response, new_tag
from callgate.sip.transaction import State, TransactionKey, new_branch
from callgate.sip.uri import SipUri, UriError, parse_uri

log = logging.getLogger("callgate.sip")

Addr = tuple[str, int]

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, REFER, NOTIFY"
SDP = "application/sdp"
CODECS = (PCMU, PCMA)
CODEC_BY_NAME = {codec.name: codec for codec in CODECS}
MAX_FORWARDS = 3  # forwards (incom_rule) followed per call: a loop of rules ends here
MAX_TRANSFERS = 10  # transfers per call (REFER or API): a ping-pong of transfers ends here
MAX_CALL_SECONDS = 6 * 3600  # an answered call is hung up after this, whatever happens
EXTERNAL_RING_SECONDS = 60  # ring time towards a trunk (no incom_rule there)
STOP_GRACE = 5.0  # seconds given to calls to hang up and write history when the engine stops


class HistoryWriter(Protocol):
    def record(self, call: FinishedCall) -> object: ...


class RecordingStore(Protocol):
    def add(
        self,
        *,
        client_id: int,
        audio: Iterable[bytes],
        extension_id: int | None = None,
        call_uuid: str | None = None,
        started_at: dt.datetime | None = None,
        record_uuid: str | None = None,
    ) -> object: ...


def _allowed_codecs(caller: Party, target: Target | None) -> list[Codec]:
    """What the caller may use: its phone's codecs (preferred first) that the callee's phone
    allows too, since nothing is transcoded. An outside caller or callee allows both."""
    names = list(caller.codecs) if caller.is_extension else [c.name for c in CODECS]
    if isinstance(target, InternalTarget):
        names = [name for name in names if name in target.party.codecs]
    return [CODEC_BY_NAME[name] for name in names if name in CODEC_BY_NAME]


def _failure(statuses: list[int], *, stopped: bool) -> Outcome:
    """Why ringing ended without an answer: the caller gave up (or the call was stopped), no
    final answer in time (we cancelled), or the callee's answers, busy first."""
    if stopped:
        return Outcome.CANCEL
    if not statuses:
        return Outcome.NOANSWER
    outcomes = [outcome_of_status(s) for s in statuses]
    for preferred in (Outcome.BUSY, Outcome.NOANSWER, Outcome.NOT_FOUND):
        if preferred in outcomes:
            return preferred
    return outcomes[0]


def _either(*futures: asyncio.Future[Any]) -> list[asyncio.Future[Any]]:
    """Futures of different result types, for one ``asyncio.wait``."""
    return list(futures)


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _name_addr(user: str, host: str, display: str | None = None) -> NameAddr:
    """``"display" <sip:user@host>`` with the display name quoted and escaped."""
    uri = parse_uri(f"sip:{user.replace('#', '%23')}@{host}")
    return NameAddr(uri, display or None)


def _user_of(uri_text: str) -> str | None:
    try:
        uri = parse_uri(uri_text)
    except UriError:
        return None
    return uri.user_unescaped if isinstance(uri, SipUri) else None


# ---------------------------------------------------------------------- the engine


class CallEngine:
    def __init__(
        self,
        endpoint: SipEndpoint,
        relay: MediaRelay,
        router: Router,
        digest: DigestServer,
        bindings: Bindings,
        directory: Directory,
        events: EventSink,
        *,
        history: HistoryWriter | BatchWriter[FinishedCall] | None = None,
        recordings: RecordingStore | None = None,
        lookups: DirectoryCache | None = None,
        media_host: str | None = None,
        moh_tone_hz: int = 425,
        ring_seconds: int = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoint = endpoint
        self.relay = relay
        self.router = router
        self.digest = digest
        self.bindings = bindings
        self.directory = directory
        # the per-call reads (accounts, extensions, numbers, trunk sources): from memory when a
        # cache is given, else each in a worker thread
        self.lookups = lookups or DirectoryCache(directory, router, router.trunks, ttl=0)
        self.events = events
        self.history = history
        self.recordings = recordings
        self.media_host = media_host or relay.host
        self.moh = G711Audio.tone(moh_tone_hz, seconds=1.0) if moh_tone_hz else None
        # ringback for a callback's first phone while the destination rings: 425 Hz, 1 s on,
        # 4 s off (ETSI ES 201 970)
        tone = G711Audio.tone(425, seconds=1.0)
        self.ringback = G711Audio(tone.law, tone.data + bytes([ULAW_SILENCE]) * 4 * 8000)
        self.ring_seconds = ring_seconds
        self.clock = clock
        self.calls: dict[str, ActiveCall] = {}  # by call_id
        self._by_api: dict[str, ActiveCall] = {}
        self._dialogs: dict[DialogId, SipLeg] = {}
        self._invites: dict[TransactionKey, ActiveCall] = {}
        self._stopping = False
        endpoint.ack_handler = self.on_ack

    # ------------------------------------------------------------------ helpers

    @property
    def trunks(self) -> TrunkRouting | None:
        return self.router.trunks

    def now(self) -> dt.datetime:
        return _utc(self.clock())

    def emit(self, events: list[CallEvent]) -> None:
        for event in events:
            try:
                self.events.emit(event)
            except Exception:  # a sink must not raise; if it does, the call goes on
                log.exception("event sink failed on %s", event.event_type)

    def _contact(self, transport: str) -> NameAddr:
        host, port = self.endpoint.local_address()
        suffix = ";transport=tcp" if transport == "tcp" else ""
        return NameAddr.parse(f"<sip:callgate@{host}:{port}{suffix}>")

    def register(self, leg: SipLeg) -> None:
        assert leg.dialog is not None
        self._dialogs[leg.dialog.id] = leg
        leg.active.dialog_ids.append(leg.dialog.id)
        if leg not in leg.active.legs:
            leg.active.legs.append(leg)

    def _leg_of(self, request: Request) -> SipLeg | None:
        try:
            key = dialog_id_of(request, local_is_uas=True)
        except (HeaderError, UriError):
            return None
        return self._dialogs.get(key)

    def build_invite(
        self, contact: Contact, call_id: str, body: bytes, *, max_forwards: int = 70
    ) -> Request:
        host, port = self.endpoint.local_address()
        headers = Headers()
        via = f"SIP/2.0/{contact.transport.upper()} {host}:{port};branch={new_branch()};rport"
        headers.add("Via", via)
        headers.add("Max-Forwards", str(max_forwards))
        headers.add("From", str(contact.from_.with_tag(new_tag())))
        headers.add("To", str(contact.to))
        headers.add("Call-ID", call_id)
        headers.add("CSeq", "1 INVITE")
        headers.add("Contact", str(self._contact(contact.transport)))
        headers.add("Allow", ALLOW)
        headers.add("Content-Type", SDP)
        return Request("INVITE", parse_uri(contact.uri), headers, body)

    def send_ack(self, leg: SipLeg) -> None:
        assert leg.dialog is not None
        if leg.ack is None:  # a retransmitted 2xx gets the same ACK (RFC 3261 §13.2.2.4)
            host, port = self.endpoint.local_address()
            ack = leg.dialog.create_ack(
                via_host=host, via_port=port, transport=leg.transport.upper()
            )
            leg.ack = bytes(ack)
        self.endpoint.send_stateless(leg.ack, leg.peer, leg.transport)

    def send_in_dialog(
        self,
        leg: SipLeg,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        dialog = leg.dialog
        if dialog is None or dialog.state is DialogState.TERMINATED:
            return
        host, port = self.endpoint.local_address()
        request = dialog.create_request(
            method,
            via_host=host,
            via_port=port,
            transport=leg.transport.upper(),
            body=body,
            content_type=content_type,
            extra=extra,
        )
        try:
            self.endpoint.send_request(request, leg.peer, ignore, transport=leg.transport)
        except (OSError, RuntimeError, ValueError) as exc:
            log.debug("%s to %s:%d not sent: %s", method, *leg.peer, exc)

    def send_bye(self, leg: SipLeg) -> None:
        if leg.gone:
            return
        leg.gone = True
        self.send_in_dialog(leg, "BYE")
        if leg.dialog is not None:
            leg.dialog.state = DialogState.TERMINATED

    def _respond(
        self, leg: SipLeg, status: int, reason: str | None = None, *, body: bytes = b""
    ) -> None:
        """A final (or provisional) answer to the caller's INVITE, while it is pending."""
        if leg.invite is None or leg.server_key is None or leg.dialog is None:
            return
        txn = self.endpoint.layer.get(leg.server_key)
        if txn is None or txn.state is not State.PROCEEDING:
            return
        response = make_response(
            leg.invite,
            status,
            reason,
            to_tag=leg.dialog.local_tag,
            body=body,
            content_type=SDP if body else None,
        )
        if body:
            response.headers.add("Contact", str(leg.dialog.local_contact))
        self.endpoint.respond(leg.server_key, response)

    # ------------------------------------------------------------------ SIP entry points

    async def handle_invite(self, incoming: Incoming) -> Response | None:
        request = incoming.request
        if request.to.tag is not None:
            return self._reinvite(incoming)
        hops = request.max_forwards
        if hops is not None and hops <= 0:  # a loop (through us or a proxy) ends here
            return make_response(request, 483)
        if self._stopping:
            return make_response(request, 503, "Service Unavailable (shutting down)")
        trunks = self.router.trunks
        if trunks is not None:
            inbound = await self.lookups.inbound(incoming.source, request)
            if inbound is not None:
                return await self._from_trunk(incoming, inbound.client_id, inbound)
        account_or_response = await self._authenticate(incoming)
        if isinstance(account_or_response, Response):
            return account_or_response
        account = account_or_response
        number = request.uri.user_unescaped if isinstance(request.uri, SipUri) else None
        if not number:
            return make_response(request, 404)
        prefix = account.username.partition("*")[0]
        if number.startswith(prefix + "*"):
            number = number[len(prefix) + 1 :]

        caller_target = await self.lookups.extension(account.extension_id)
        target = await self.lookups.resolve(account.client_id, number)
        if caller_target is None:
            return make_response(request, 403)
        caller = caller_target.party
        from_display = request.from_.display_name
        if from_display and not caller.name:
            caller = dataclasses.replace(caller, name=from_display)
        flow = CallFlow.OUT if isinstance(target, ExternalTarget) else CallFlow.INTERNAL
        return self._start_call(incoming, caller, number, target, flow)

    async def _from_trunk(
        self, incoming: Incoming, client_id: int, inbound: InboundCallLike
    ) -> Response | None:
        request = incoming.request
        did = inbound.did_number
        target = None
        if inbound.extension_id is not None:
            target = await self.lookups.extension(inbound.extension_id)
        from_ = request.from_
        number = (
            from_.uri.user_unescaped if isinstance(from_.uri, SipUri) else None
        ) or "anonymous"
        caller = Party(client_id, number, from_.display_name or "")
        return self._start_call(incoming, caller, did, target, CallFlow.IN, did_number=did)

    async def _authenticate(self, incoming: Incoming) -> SipAccount | Response:
        request = incoming.request
        realm = self.digest.realm
        found: tuple[str, str] | None = None
        for value in request.headers.get_all("Proxy-Authorization"):
            try:
                header = AuthHeader.parse(value)
            except HeaderError:
                continue
            if header.scheme.lower() == "digest" and header.get("realm") == realm:
                found = (header.get("username") or "", value)
                break
        now = self.clock()
        if found is None:
            return self._challenge(request, now)
        username, value = found
        account = await self.lookups.account(username) if username else None

        def lookup(name: str) -> Ha1Pair | None:
            return account.ha1 if account is not None and account.username == name else None

        outcome = self.digest.verify(value, "INVITE", now, lookup).outcome
        if outcome is DigestOutcome.STALE:
            return self._challenge(request, now, stale=True)
        if outcome is DigestOutcome.MALFORMED:
            return make_response(request, 400, "Bad Request (malformed credentials)")
        if outcome in (DigestOutcome.BAD_NONCE, DigestOutcome.REPLAY, DigestOutcome.WRONG_REALM):
            return self._challenge(request, now)
        if outcome is not DigestOutcome.OK or account is None:
            log.info("call refused from %s:%d: 403 wrong password", *incoming.source)
            return make_response(request, 403)
        if account.blocked:
            return make_response(request, 403, "Forbidden (Account Blocked)")
        return account

    def _challenge(self, request: Request, now: float, *, stale: bool = False) -> Response:
        return digest_challenge(self.digest, request, now, stale=stale, proxy=True)

    def _start_call(
        self,
        incoming: Incoming,
        caller: Party,
        number: str,
        target: Target | None,
        flow: CallFlow,
        *,
        did_number: str = "",
    ) -> Response | None:
        """Check the caller's offer, open its relay leg and start the call's task."""
        request = incoming.request
        txn = self.endpoint.layer.get(incoming.key)
        if txn is None or txn.state is not State.PROCEEDING:
            return None  # cancelled meanwhile
        if request.content_type != SDP or not request.body:
            return make_response(request, 488, "Not Acceptable Here (an SDP offer is required)")
        try:
            offer = parse_sdp(request.body)
            media_target(offer)
        except SdpError as exc:
            return make_response(request, 400, f"Bad Request (SDP: {str(exc)[:60]})")
        try:
            dialog = Dialog.from_uas(request, new_tag(), self._contact(incoming.transport))
        except DialogError:
            return make_response(request, 400, "Bad Request (no Contact)")
        call = Call(
            client_id=caller.client_id,
            flow=flow,
            caller=caller,
            called_number=number,
            init_time=self.now(),
            did_number=did_number,
        )
        loop = asyncio.get_running_loop()
        active = ActiveCall(call, loop.create_future())
        hops = request.max_forwards
        active.max_forwards = max(0, min(70, hops - 1)) if hops is not None else 70
        task = loop.create_task(self._run_inbound(active, incoming, dialog, offer, target))
        active.task = task
        self.calls[call.call_id] = active
        self._by_api[call.call_api_id] = active
        self._invites[incoming.key] = active
        active.invite_keys.append(incoming.key)
        return None

    def on_ack(self, request: Request, source: Addr) -> None:
        leg = self._leg_of(request)
        if leg is not None:
            leg.acked = True

    def handle_cancel(self, incoming: Incoming) -> Response | None:
        """A caller's CANCEL: 200 to it; the call task answers the INVITE 487 and cancels the
        callee. None: not a call of ours (the service answers it)."""
        if incoming.cancels is None:
            return None
        active = self._invites.get(incoming.cancels)
        if active is None:
            return None
        if active.call.state in (CallState.ROUTING, CallState.RINGING):
            active.request_stop(Outcome.CANCEL)
        return make_response(incoming.request, 200)

    def handle_bye(self, incoming: Incoming) -> Response:
        request = incoming.request
        leg = self._leg_of(request)
        if leg is None or leg.dialog is None:
            return make_response(request, 481)
        leg.dialog.receive_request(request)
        leg.gone = True
        if not leg.detached:
            leg.detached = True
            leg.active.request_stop(Outcome.ANSWERED)
        return make_response(request, 200)

    def handle_in_dialog(self, incoming: Incoming) -> Response:
        """NOTIFY, INFO, UPDATE… inside a call: acknowledged; REFER: a blind transfer."""
        request = incoming.request
        leg = self._leg_of(request)
        if leg is None or leg.dialog is None:
            return make_response(request, 481)
        error = leg.dialog.receive_request(request)
        if error is not None:
            return make_response(request, error)
        if request.method == "REFER":
            return self._refer(leg, request)
        return make_response(request, 200)

    def _refer(self, leg: SipLeg, request: Request) -> Response:
        active = leg.active
        value = request.headers.get("Refer-To")
        if value is None:
            return make_response(request, 400, "Bad Request (no Refer-To)")
        if "replaces" in value.lower():
            return make_response(request, 501, "Not Implemented (attended transfer)")
        try:
            number = _user_of(str(NameAddr.parse(value).uri))
        except HeaderError:
            number = None
        if not number:
            return make_response(request, 400, "Bad Request (Refer-To has no number)")
        if active.call.state is not CallState.ANSWERED or leg.detached:
            return make_response(request, 403, "Forbidden (only an answered call is transferred)")
        active.transfers.put_nowait(Transfer(number, leg, refer=True))
        return make_response(request, 202)

    def _reinvite(self, incoming: Incoming) -> Response:
        request = incoming.request
        leg = self._leg_of(request)
        if leg is None or leg.dialog is None:
            return make_response(request, 481)
        error = leg.dialog.receive_request(request)
        if error is not None:
            return make_response(request, error)
        active = leg.active
        hold = False
        if request.body:
            try:
                offer = parse_sdp(request.body)
                target = media_target(offer)
            except SdpError as exc:
                return make_response(request, 400, f"Bad Request (SDP: {str(exc)[:60]})")
            if target.address is not None and leg.media.remote != (target.address, target.port):
                payload = target.codec.payload_type if target.codec else leg.codec.payload_type
                leg.media.expect(target.address, target.port, payload_type=payload)
            leg.sdp_version += 1
            answer = build_answer(
                offer,
                self.media_host,
                leg.media.local[1],
                codecs=[leg.codec],
                dtmf=leg.dtmf,
                session_id=leg.session_id,
                session_version=leg.sdp_version,
            )
            if answer.codec is None:
                return make_response(request, 488)
            body = answer.sdp.to_bytes()
            hold = target.hold
        else:  # an offer-less re-INVITE: our current SDP as the offer, the ACK answers
            leg.sdp_version += 1
            body = build_offer(
                self.media_host,
                leg.media.local[1],
                codecs=[leg.codec],
                dtmf=leg.dtmf,
                session_id=leg.session_id,
                session_version=leg.sdp_version,
            ).to_bytes()
        if hold and not leg.holding:
            self._hold(active, leg)
        elif not hold and leg.holding:
            self._resume(active, leg)
        response = make_response(request, 200, body=body, content_type=SDP)
        response.headers.add("Contact", str(leg.dialog.local_contact))
        response.headers.add("Allow", ALLOW)
        return response

    # ------------------------------------------------------------------ hold

    def _hold(self, active: ActiveCall, holder: SipLeg) -> bool:
        other = active.other(holder)
        if active.bridge is None or other is None or holder.holding:
            return False
        holder.holding = True
        active.bridge.hold(other.media, self.moh)
        active.call.held = True
        log.info("call %s: %s holds", active.call.call_id, _who(holder))
        return True

    def _resume(self, active: ActiveCall, holder: SipLeg) -> bool:
        other = active.other(holder)
        if not holder.holding:
            return False
        holder.holding = False
        if active.bridge is not None and other is not None:
            active.bridge.resume(other.media)
        active.call.held = any(leg.holding for leg in active.live_legs())
        log.info("call %s: %s resumes", active.call.call_id, _who(holder))
        return True

    # ------------------------------------------------------------------ the call task

    async def _run_inbound(
        self,
        active: ActiveCall,
        incoming: Incoming,
        dialog: Dialog,
        offer: SessionDescription,
        target: Target | None,
    ) -> None:
        call = active.call
        request = incoming.request
        try:
            media = await self.relay.open_leg(f"{call.call_id}/a")
            answer = build_answer(
                offer,
                self.media_host,
                media.local[1],
                codecs=_allowed_codecs(call.caller, target),
                prefer="local",  # the extension's order of preference
                session_id=random.randrange(1, 2**31),
            )
            a = SipLeg(
                active,
                media,
                incoming.source,
                incoming.transport,
                uas=True,
                codec=answer.codec or PCMU,
                dtmf=answer.dtmf,
                participant=call.caller_participant,
                dialog=dialog,
                invite=request,
                server_key=incoming.key,
                answer_sdp=answer.sdp.to_bytes(),
            )
            active.legs.append(a)
            self.register(a)
            log.info(
                "call %s %s -> %s started",
                call.call_id,
                call.caller.username or call.caller.number,
                call.called_number,
            )
            self.emit(call.dial_out(self.now()))
            if answer.codec is None:
                self._respond(a, 488, "Not Acceptable Here (no common codec)")
                call.end(Outcome.CONGESTION, self.now())
                return
            peer = media_target(offer)
            media.expect(peer.address, peer.port, payload_type=answer.codec.payload_type)
            if target is None:
                call.end(Outcome.NOT_FOUND, self.now())
                return
            outcome = await self._connect(active, a, target, ring_to=a)
            if outcome is not Outcome.ANSWERED:
                call.end(outcome, self.now())
                return
            await self._talk(active)
        except asyncio.CancelledError:
            active.request_stop(Outcome.ANSWERED)
            call.end(Outcome.ANSWERED if call.answer_time else Outcome.CONGESTION, self.now())
        except Exception:
            log.exception("call %s failed", call.call_id)
            call.end(Outcome.ERROR, self.now())
        finally:
            if not any(leg.uas for leg in active.legs):  # failed before its leg existed
                info = OUTCOMES[call.outcome or Outcome.ERROR]
                txn = self.endpoint.layer.get(incoming.key)
                if txn is not None and txn.state is State.PROCEEDING:
                    final = make_response(
                        request, info.sip_status, info.sip_reason, to_tag=dialog.local_tag
                    )
                    self.endpoint.respond(incoming.key, final)
            await self._finish(active)

    async def _connect(
        self,
        active: ActiveCall,
        a: SipLeg,
        target: Target,
        *,
        ring_to: SipLeg | None = None,
    ) -> Outcome:
        """Ring ``target`` for leg ``a`` (following the forward rule), bridge on answer."""
        call = active.call
        visited: set[str] = set()
        outcome = Outcome.CONGESTION
        current: Target | None = target
        for _ in range(MAX_FORWARDS + 1):
            if current is None:
                return Outcome.NOT_FOUND
            key = current.party.number if isinstance(current, InternalTarget) else current.number
            visited.add(key)
            leg, outcome = await self._ring(active, current, a, ring_to=ring_to)
            if leg is not None:
                self._bridge(active, a, leg)
                return Outcome.ANSWERED
            if active.stop.done():
                stopped = active.stop.result()
                return Outcome.CANCEL if stopped is Outcome.ANSWERED else stopped
            if outcome is Outcome.CANCEL:
                return outcome
            rule = current.rule if isinstance(current, InternalTarget) else None
            if (
                rule is None
                or rule.action != NoAnswerAction.FORWARD
                or not rule.forward_to
                or rule.forward_to in visited
                or outcome is Outcome.CONGESTION
            ):
                return outcome
            callee = call.current_callee
            if callee is not None:
                self.emit(call.leave(callee, self.now(), OUTCOMES[outcome].status))
            log.info("call %s: %s, forwarded to %s", call.call_id, outcome.value, rule.forward_to)
            current = await self.lookups.resolve(call.client_id, rule.forward_to)
        return outcome

    async def _ring(
        self,
        active: ActiveCall,
        target: Target,
        a: SipLeg,
        *,
        ring_to: SipLeg | None = None,
    ) -> tuple[SipLeg | None, Outcome]:
        call = active.call
        if active.stop.done():
            return None, Outcome.CANCEL
        if isinstance(target, InternalTarget):
            party = target.party
            if not target.is_phone or target.blocked:
                return None, Outcome.UNAVAILABLE
            bindings = self.bindings.lookup(party.username, self.clock())
            if not bindings:
                call.add_callee(party)
                return None, Outcome.UNAVAILABLE
            host, _ = self.endpoint.local_address()
            caller = call.caller
            from_ = _name_addr(caller.number, host, caller.name)
            to = NameAddr.parse(f"<sip:{party.number}@{host}>")
            contacts = [Contact(b.contact, b.source, b.transport, from_, to) for b in bindings]
            ring_seconds = float(target.rule.ring_seconds)
        else:
            route = target.route
            party = Party(call.client_id, target.number)
            uri = route.request_uri(target.number)
            user = route.caller_id_number or call.caller.number
            from_ = NameAddr.parse(f"<sip:{user}@{route.from_domain}>")
            to = NameAddr.parse(f"<{uri}>")
            transport = route.transport.lower()
            contacts = [Contact(uri, route.address, transport, from_, to, route)]
            ring_seconds = float(EXTERNAL_RING_SECONDS)
        participant = call.add_callee(party)
        media = await self.relay.open_leg(f"{call.call_id}/{participant.sub_call_id[:8]}")
        on_ringing = None
        if ring_to is not None:
            leg_a = ring_to

            def on_ringing(early: bool) -> None:
                if not early:
                    self._respond(leg_a, 180)
                    return
                # early media: the caller hears the callee side before the answer
                if active.bridge is None:
                    active.bridge = self.relay.bridge(leg_a.media, media)
                self._respond(leg_a, 183, body=leg_a.answer_sdp)

        dialing = Dialing(self, active, media, [a.codec], a.dtmf, participant, on_ringing)
        active.dialings.append(dialing)
        if call.can(Step.RING):
            call.step(Step.RING)
        dialing.start(contacts)
        self.emit(call.dial_in(participant, self.now()))
        try:
            await asyncio.wait(
                _either(dialing.won, active.stop),
                timeout=ring_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            if not dialing.won.done():
                dialing.close()
        winner = dialing.won.result() if dialing.won.done() else None
        if winner is not None and not active.stop.done():
            return winner, Outcome.ANSWERED
        if winner is not None:  # answered just as the caller gave up
            self.send_bye(winner)
        # decided now: the 487s our CANCELs bring back must not change the outcome
        outcome = _failure(dialing.statuses, stopped=active.stop.done())
        bridge = active.bridge
        if bridge is not None and media in (bridge.a, bridge.b):  # early media ends with it
            bridge.close()
            active.bridge = None
        await media.close()
        return None, outcome

    def _bridge(self, active: ActiveCall, a: SipLeg, b: SipLeg) -> None:
        """Connect two legs: relay bridge, 200 to a waiting caller, answer events, recording."""
        call = active.call
        now = self.now()
        if active.bridge is not None:
            active.bridge.close()
        active.bridge = self.relay.bridge(a.media, b.media)
        if a.uas and a.invite is not None and a.dialog is not None and not a.acked:
            txn = self.endpoint.layer.get(a.server_key) if a.server_key else None
            if txn is not None and txn.state is State.PROCEEDING:
                response = make_response(
                    a.invite, 200, to_tag=a.dialog.local_tag, body=a.answer_sdp, content_type=SDP
                )
                response.headers.add("Contact", str(a.dialog.local_contact))
                response.headers.add("Allow", ALLOW)
                assert a.server_key is not None
                self.endpoint.respond(a.server_key, response)
                a.dialog.state = DialogState.CONFIRMED
                t1 = self.endpoint.layer.timers.t1
                asyncio.get_running_loop().call_later(64 * t1, self._check_ack, a)
        if call.answer_time is None:
            call.answer_time = now
        call.step(Step.ANSWER)
        self.emit(call.answer_events(now))
        log.info("call %s answered by %s", call.call_id, _who(b))
        if active.recorder is None and any(
            p.party.record_enabled for p in call.participants if not p.left
        ):
            active.recorder = active.bridge.record()
            active.record_started = now
            call.record_uuid = new_id()

    def _check_ack(self, leg: SipLeg) -> None:
        if not leg.acked and not leg.gone and not leg.active.stop.done():
            log.info("call %s: no ACK from the caller, hanging up", leg.active.call.call_id)
            leg.active.request_stop(Outcome.ERROR)

    async def _talk(self, active: ActiveCall) -> None:
        """The answered call: until a BYE or the API ends it, carrying out transfers."""
        loop = asyncio.get_running_loop()
        limit = loop.call_later(MAX_CALL_SECONDS, active.request_stop, Outcome.ANSWERED)
        try:
            while not active.stop.done():
                get = asyncio.ensure_future(active.transfers.get())
                try:
                    await asyncio.wait(
                        _either(get, active.stop), return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    if not get.done():
                        get.cancel()
                if active.stop.done():
                    break
                if not await self._transfer(active, get.result()):
                    break
        finally:
            limit.cancel()

    async def _transfer(self, active: ActiveCall, transfer: Transfer) -> bool:
        """Blind transfer: the transferor leaves, the other party is connected to ``number``.

        Returns False when the call ended (no one left to talk to)."""
        call = active.call
        leaving = transfer.transferor
        staying = active.other(leaving)
        if leaving.detached or staying is None or call.state is not CallState.ANSWERED:
            return True
        if active.transfers_done >= MAX_TRANSFERS:
            log.info("call %s: transfer refused, %d done already", call.call_id, MAX_TRANSFERS)
            if transfer.refer:
                self._notify(leaving, "403 Forbidden", final=True)
            return True
        active.transfers_done += 1
        target = await self.lookups.resolve(call.client_id, transfer.number)
        if transfer.refer:
            self._notify(leaving, "100 Trying", final=False)
            self._notify(leaving, "200 OK" if target else "404 Not Found", final=True)
        if target is None:
            log.info("call %s: transfer to %s: no such number", call.call_id, transfer.number)
            return True
        log.info("call %s: %s transfers to %s", call.call_id, _who(leaving), transfer.number)
        call.step(Step.TRANSFER)
        if staying.holding or leaving.holding:
            staying.holding = leaving.holding = False
            call.held = False
        if active.bridge is not None:
            if active.recorder is not None and active.bridge.recorder is not None:
                active.bridge.stop_recording()
            active.bridge.close()
            active.bridge = None
        leaving.detached = True
        self.send_bye(leaving)
        if leaving.participant is not None:
            self.emit(call.leave(leaving.participant, self.now()))
        await leaving.media.close()
        if self.moh is not None:
            staying.media.play(self.moh)
        outcome = await self._connect(active, staying, target)
        staying.media.stop_playing()
        if outcome is Outcome.ANSWERED and not active.stop.done():
            return True
        call.end(outcome, self.now())
        return False

    def _notify(self, leg: SipLeg, status: str, *, final: bool) -> None:
        state = "terminated;reason=noresource" if final else "active;expires=60"
        self.send_in_dialog(
            leg,
            "NOTIFY",
            body=f"SIP/2.0 {status}\r\n".encode(),
            content_type="message/sipfrag;version=2.0",
            extra=[("Event", "refer"), ("Subscription-State", state)],
        )

    async def _finish(self, active: ActiveCall) -> None:
        """Hang up what is left, close media, raise hangup events, write the history row."""
        call = active.call
        try:
            now = self.now()
            stopped = active.stop.result() if active.stop.done() else None
            call.end(stopped or Outcome.ERROR, now)
            if call.answer_time is not None and call.outcome is not Outcome.ERROR:
                call.outcome = Outcome.ANSWERED  # answered once: whatever ended it later
            for dialing in active.dialings:
                if not dialing.won.done() or not dialing.closed:
                    dialing.close()
            info = OUTCOMES[call.outcome or Outcome.ERROR]
            for leg in active.legs:
                if leg.uas and call.answer_time is None:
                    self._respond(leg, info.sip_status, info.sip_reason)
                elif leg.dialog is not None and leg.dialog.state is DialogState.CONFIRMED:
                    self.send_bye(leg)
                leg.detached = True
            if call.can(Step.HANGUP):
                call.step(Step.HANGUP if call.answer_time else Step.FAIL)
            recorder = active.recorder
            if active.bridge is not None:
                if active.bridge.recorder is not None:
                    active.bridge.stop_recording()
                active.bridge.close()
                active.bridge = None
            for leg in active.legs:
                with contextlib.suppress(Exception):
                    await leg.media.close()
            if recorder is not None:
                await self._save_recording(active, recorder)
            self.emit(call.hangup_events(self.now()))
            if self.history is not None:
                try:
                    if isinstance(self.history, BatchWriter):
                        await self.history.submit(call.finished())
                    else:
                        await asyncio.to_thread(self.history.record, call.finished())
                except Exception:
                    log.exception("call %s: history row not written", call.call_id)
            assert call.hangup_time is not None
            seconds = (call.hangup_time - call.init_time).total_seconds()
            log.info(
                "call %s ended: %s, %.1f s, %s",
                call.call_id,
                info.result,
                seconds,
                info.cause,
            )
        finally:
            self.calls.pop(call.call_id, None)
            self._by_api.pop(call.call_api_id, None)
            for txn in active.invite_keys:
                if self._invites.get(txn) is active:
                    del self._invites[txn]
            for dialog in active.dialog_ids:
                owner = self._dialogs.get(dialog)
                if owner is not None and owner.active is active:
                    del self._dialogs[dialog]

    async def _save_recording(self, active: ActiveCall, recorder: Recorder) -> None:
        call = active.call
        if self.recordings is None or call.record_uuid is None:
            call.record_uuid = None
            return
        owner = call.caller if call.caller.record_enabled else None
        if owner is None:
            owner = next(
                (p.party for p in call.participants if p.party.record_enabled), call.caller
            )
        try:
            wav = recorder.wav("mixed")
            await asyncio.to_thread(
                self.recordings.add,
                client_id=call.client_id,
                audio=[wav],
                extension_id=owner.extension_id,
                call_uuid=call.call_id,
                started_at=active.record_started,
                record_uuid=call.record_uuid,
            )
        except Exception:
            log.exception("call %s: recording not stored", call.call_id)
            call.record_uuid = None

    # ------------------------------------------------------------------ the API's methods

    def live_calls(self) -> list[LiveCall]:
        return [active.call.live() for active in self.calls.values() if not active.call.ended]

    def _active(self, call_api_id: str) -> ActiveCall:
        active = self._by_api.get(call_api_id)
        if active is None or active.call.ended:
            raise KeyError(call_api_id)
        return active

    def _leg_of_extension(self, active: ActiveCall, extension_id: int | None) -> SipLeg | None:
        for leg in active.live_legs():
            party = leg.participant.party if leg.participant else None
            if (
                party is not None
                and extension_id is not None
                and party.extension_id == extension_id
            ):
                return leg
        return None

    async def hangup(self, call_api_id: str) -> None:
        """End a live call (KeyError: no such call)."""
        active = self._active(call_api_id)
        answered = active.call.answer_time is not None
        active.request_stop(Outcome.ANSWERED if answered else Outcome.CANCEL)

    async def hold(self, call_api_id: str, *, by_extension_id: int | None = None) -> None:
        """Put the other party on hold: music to it, nothing to the holder (no re-INVITE).

        The holder is ``by_extension_id``'s leg; with None the callee holds (the caller hears
        the music)."""
        active = self._active(call_api_id)
        holder = self._holder(active, by_extension_id)
        if any(leg.holding for leg in active.live_legs()):
            raise Conflict("The call is already on hold.")
        if not self._hold(active, holder):
            raise InvalidInput("The call cannot be put on hold now.", {"action": "hold"})

    async def offhold(self, call_api_id: str, *, by_extension_id: int | None = None) -> None:
        active = self._active(call_api_id)
        holding = [leg for leg in active.live_legs() if leg.holding]
        if not holding:
            raise Conflict("The call is not on hold.")
        for leg in holding:
            self._resume(active, leg)

    def _holder(self, active: ActiveCall, extension_id: int | None) -> SipLeg:
        if active.call.state is not CallState.ANSWERED or active.bridge is None:
            raise InvalidInput("The call is not answered.", {"action": "not answered"})
        legs = active.live_legs()
        leg = self._leg_of_extension(active, extension_id)
        if leg is None:  # no extension given: the callee's side acts
            callee_side = [x for x in legs if not (x.participant and x.participant.caller)]
            leg = callee_side[0] if callee_side else legs[-1]
        return leg

    async def transfer(
        self, call_api_id: str, number: str, *, by_extension_id: int | None = None
    ) -> None:
        """Blind transfer: ``by_extension_id``'s peer (with None: the caller) goes to ``number``.

        The transferring party leaves the call; the call keeps its ``call_id``."""
        active = self._active(call_api_id)
        if active.call.state is not CallState.ANSWERED:
            raise InvalidInput("Only an answered call can be transferred.", {"action": "state"})
        target = await self.lookups.resolve(active.call.client_id, number)
        if target is None:
            raise InvalidInput(f"The number {number} routes nowhere.", {"send_dst": "unknown"})
        legs = active.live_legs()
        leaving = self._leg_of_extension(active, by_extension_id)
        if leaving is None:
            callee_side = [x for x in legs if not (x.participant and x.participant.caller)]
            leaving = callee_side[0] if callee_side else legs[-1]
        active.transfers.put_nowait(Transfer(number, leaving))

    async def originate(self, request: CallbackRequest) -> Originated:
        """Callback: ring every ``src_num`` (first to answer wins), then ``dst_num``, bridge."""
        if self._stopping:
            raise Conflict("The PBX is stopping.")
        owner = await self.lookups.extension(request.extension_id)
        if owner is None or owner.party.client_id != request.client_id:
            raise InvalidInput(
                f"Extension {request.extension_id} is not a phone of this client.",
                {"extension_id": "unknown"},
            )
        sources: list[Target] = []
        for number in request.src_num:
            found = await self.lookups.resolve(request.client_id, number)
            if found is None:
                raise InvalidInput(f"The number {number} routes nowhere.", {"src_num": number})
            sources.append(found)
        if not sources:
            raise InvalidInput("src_num must name at least one number.", {"src_num": "empty"})
        dst = await self.lookups.resolve(request.client_id, request.dst_num)
        if dst is None:
            raise InvalidInput(
                f"The number {request.dst_num} routes nowhere.", {"dst_num": request.dst_num}
            )
        party = owner.party
        if request.caller_id_name or request.caller_id_number:
            party = dataclasses.replace(
                party,
                number=request.caller_id_number or party.number,
                name=request.caller_id_name or party.name,
            )
        flow = CallFlow.OUT if isinstance(dst, ExternalTarget) else CallFlow.INTERNAL
        call = Call(
            client_id=request.client_id,
            flow=flow,
            caller=party,
            called_number=request.dst_num,
            init_time=self.now(),
            callback_id=new_id(),
        )
        loop = asyncio.get_running_loop()
        active = ActiveCall(call, loop.create_future())
        self.calls[call.call_id] = active
        self._by_api[call.call_api_id] = active
        active.task = loop.create_task(self._run_callback(active, request, sources, dst))
        return Originated(call.call_api_id, call.call_id)

    async def _run_callback(
        self, active: ActiveCall, request: CallbackRequest, sources: list[Target], dst: Target
    ) -> None:
        call = active.call
        try:
            log.info(
                "call %s callback %s -> %s started",
                call.call_id,
                ",".join(request.src_num),
                request.dst_num,
            )
            self.emit(call.dial_out(self.now()))
            a = await self._ring_sources(active, request, sources, dst)
            if a is None:
                return
            a.media.play(self.ringback)  # the phone that answered hears dst ringing
            outcome = await self._connect(active, a, dst)
            a.media.stop_playing()
            if outcome is not Outcome.ANSWERED:
                call.end(outcome, self.now())
                return
            if request.call_duration:
                loop = asyncio.get_running_loop()
                loop.call_later(request.call_duration, active.request_stop, Outcome.ANSWERED)
            await self._talk(active)
        except asyncio.CancelledError:
            active.request_stop(Outcome.ANSWERED)
            call.end(Outcome.ANSWERED if call.answer_time else Outcome.CONGESTION, self.now())
        except Exception:
            log.exception("call %s failed", call.call_id)
            call.end(Outcome.ERROR, self.now())
        finally:
            await self._finish(active)

    async def _ring_sources(
        self,
        active: ActiveCall,
        request: CallbackRequest,
        sources: list[Target],
        dst: Target,
    ) -> SipLeg | None:
        """Ring the callback's own phones (all at once); the first to answer is the caller leg."""
        call = active.call
        host, _ = self.endpoint.local_address()
        shown = request.dst_num
        from_ = _name_addr(shown, host, request.caller_id_name)
        contacts: list[Contact] = []
        for target in sources:
            if isinstance(target, InternalTarget):
                if not target.is_phone or target.blocked:
                    continue
                to = NameAddr.parse(f"<sip:{target.party.number}@{host}>")
                for b in self.bindings.lookup(target.party.username, self.clock()):
                    contacts.append(Contact(b.contact, b.source, b.transport, from_, to))
            else:
                route = target.route
                uri = route.request_uri(target.number)
                user = route.caller_id_number or shown
                contacts.append(
                    Contact(
                        uri,
                        route.address,
                        route.transport.lower(),
                        NameAddr.parse(f"<sip:{user}@{route.from_domain}>"),
                        NameAddr.parse(f"<{uri}>"),
                        route,
                    )
                )
        if not contacts:
            call.end(Outcome.UNAVAILABLE, self.now())
            return None
        codecs = _allowed_codecs(call.caller, dst)
        if not codecs:
            call.end(Outcome.CONGESTION, self.now())
            return None
        media = await self.relay.open_leg(f"{call.call_id}/src")
        dialing = Dialing(self, active, media, codecs, TELEPHONE_EVENT, call.caller_participant)
        active.dialings.append(dialing)
        call.step(Step.RING)
        dialing.start(contacts)
        try:
            await asyncio.wait(
                _either(dialing.won, active.stop),
                timeout=float(request.wait_for_pickup),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            if not dialing.won.done():
                dialing.close()
        leg = dialing.won.result() if dialing.won.done() else None
        if leg is None or active.stop.done():
            if leg is not None:
                self.send_bye(leg)
            outcome = _failure(dialing.statuses, stopped=active.stop.done())
            await media.close()
            call.end(outcome, self.now())
            return None
        return leg

    # ------------------------------------------------------------------ lifecycle

    async def stop(self) -> None:
        """Hang up every call (BYE, CANCEL, or a final answer to a waiting caller)."""
        self._stopping = True
        actives = list(self.calls.values())
        for active in actives:
            active.request_stop(Outcome.ANSWERED if active.call.answer_time else Outcome.CONGESTION)
        tasks = [a.task for a in actives if a.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=STOP_GRACE)


def _who(leg: SipLeg) -> str:
    if leg.participant is None:
        return "?"
    party = leg.participant.party
    return party.username or party.number
