"""The SIP application of the PBX: what each request method gets, and how the PBX is started.

:class:`PbxService` is the :data:`~callgate.pbx.endpoint.RequestHandler` of the endpoint:

* REGISTER → the :class:`~callgate.pbx.registrar.Registrar` (account looked up in a worker
  thread), one log line per registration attempt that is not a plain challenge;
* OPTIONS → 200 with Allow/Accept/Supported (health checks, Kamailio's dispatcher probes);
* INVITE, BYE, CANCEL of a call, and REFER/NOTIFY/INFO inside one → the
  :class:`~callgate.pbx.b2bua.CallEngine` (without an engine: INVITE 480, BYE 481);
  a CANCEL that matches no call → 200 + 487 on its INVITE, or 481;
* other methods of RFC 3261 and its extensions → 405 with Allow; unknown methods → 501;
  a ``Require`` we do not support → 420 with Unsupported.

:func:`start_pbx` builds everything from the settings and the database (endpoint, registrar,
media relay, call engine, trunks when configured, call control); ``callgate serve`` (one
process) and ``callgate sip`` (a process of its own) call it.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from callgate.calls.live import CallControl, EventSink, ListSink
from callgate.calls.service import CallHistoryService, FinishedCall
from callgate.common.batch import BatchWriter
from callgate.common.db import Database
from callgate.common.storage import FileStore
from callgate.config import Settings
from callgate.media.relay import MediaRelay
from callgate.pbx.b2bua import ALLOW, CallEngine
from callgate.pbx.control import LocalCallControl
from callgate.pbx.directory import DirectoryCache
from callgate.pbx.endpoint import Incoming, SipEndpoint
from callgate.pbx.registrar import Bindings, Registrar, Result, credentials_user
from callgate.pbx.repository import DatabaseDirectory, Directory
from callgate.pbx.routing import Router
from callgate.pbx.trunks import TrunkService
from callgate.recordings.service import RecordingService
from callgate.sip.digest import DigestServer
from callgate.sip.message import Response
from callgate.sip.parser import make_response, split_list

log = logging.getLogger("callgate.sip")

__all__ = ["ALLOW", "PbxService", "RunningPbx", "start_pbx"]
ACCEPT = "application/sdp"
KNOWN_METHODS = frozenset(
    ["SUBSCRIBE", "NOTIFY", "PUBLISH", "MESSAGE", "INFO", "UPDATE", "PRACK", "REFER"]
)  # answered 405 outside a call; anything else unknown is 501
IN_DIALOG = frozenset(["REFER", "NOTIFY", "INFO"])  # handled inside a call
SUPPORTED: frozenset[str] = frozenset()  # option tags we implement (none yet)
# A finished call's history row waits this long (seconds) for others to share its transaction.
HISTORY_LINGER = 0.05
# Before ``start_pbx`` has attached the call engine, an INVITE is refused with this reason.
INVITE_REASON = "Temporarily Unavailable (call engine not started)"


def digest_key(secret_key: str) -> bytes:
    """The digest nonce key, derived from the secret key so every process accepts its nonces."""
    return hmac.new(secret_key.encode(), b"callgate sip digest nonce", hashlib.sha256).digest()


class PbxService:
    def __init__(
        self,
        registrar: Registrar,
        directory: Directory,
        *,
        clock: Callable[[], float] = time.time,
        lookup_in_thread: bool = True,
        lookups: DirectoryCache | None = None,
    ) -> None:
        self.registrar = registrar
        self.directory = directory
        self.lookups = lookups  # accounts from memory (pbx/directory.py)
        self.clock = clock
        self.lookup_in_thread = lookup_in_thread
        # set once the endpoint exists (it needs us as its handler): CANCEL answers an INVITE
        self.endpoint: SipEndpoint | None = None
        self.engine: CallEngine | None = None

    async def __call__(self, incoming: Incoming) -> Response | None:
        request = incoming.request
        method = request.method
        if method != "CANCEL":
            unsupported = [
                tag
                for tag in split_list(request.headers.get("Require") or "")
                if tag not in SUPPORTED
            ]
            if unsupported and method not in ("ACK",):
                response = make_response(request, 420)
                response.headers.add("Unsupported", ", ".join(unsupported))
                return response
        if method == "REGISTER":
            return await self._register(incoming)
        if method == "OPTIONS":
            response = make_response(request, 200)
            response.headers.add("Allow", ALLOW)
            response.headers.add("Accept", ACCEPT)
            response.headers.add("Accept-Language", "en")
            return response
        engine = self.engine
        if method == "INVITE":
            if engine is None:
                return make_response(request, 480, INVITE_REASON)
            return await engine.handle_invite(incoming)
        if method == "CANCEL":
            answered = engine.handle_cancel(incoming) if engine is not None else None
            return answered or self._cancel(incoming)
        if method == "BYE":
            if engine is None:
                return make_response(request, 481)
            return engine.handle_bye(incoming)
        if method in IN_DIALOG and engine is not None and request.to.tag is not None:
            return engine.handle_in_dialog(incoming)
        status = 405 if method in KNOWN_METHODS else 501
        response = make_response(request, status)
        if status == 405:
            response.headers.add("Allow", ALLOW)
        return response

    def _cancel(self, incoming: Incoming) -> Response:
        request = incoming.request
        endpoint = self.endpoint
        txn = endpoint.layer.get(incoming.cancels) if endpoint and incoming.cancels else None
        if txn is None or incoming.cancels is None or endpoint is None:
            return make_response(request, 481)
        # RFC 3261 §9.2: 200 to the CANCEL, then 487 to the INVITE if still unanswered
        endpoint.respond(incoming.cancels, make_response(txn.request, 487))
        return make_response(request, 200)

    async def _register(self, incoming: Incoming) -> Response:
        request = incoming.request
        user = credentials_user(request, self.registrar.digest.realm)
        account = None
        if user is not None:
            if self.lookups is not None:
                account = await self.lookups.account(user)
            elif self.lookup_in_thread:
                account = await asyncio.to_thread(self.directory.account, user)
            else:
                account = self.directory.account(user)
        now = self.clock()
        self.registrar.bindings.purge(now)
        outcome = self.registrar.register(
            request, incoming.source, now, account, transport=incoming.transport
        )
        host, port = incoming.source
        if outcome.result is Result.REGISTERED:
            log.info(
                "sip register %s from %s:%d expires=%s",
                outcome.user,
                host,
                port,
                outcome.expires if outcome.expires is not None else "query",
            )
        elif outcome.result is Result.FAILED:
            log.info(
                "sip register failed %s from %s:%d: %d %s",
                outcome.user or "-",
                host,
                port,
                outcome.response.status,
                outcome.reason,
            )
        return outcome.response


@dataclass
class RunningPbx:
    endpoint: SipEndpoint
    service: PbxService
    address: tuple[str, int]
    engine: CallEngine | None = None
    control: CallControl | None = None
    events: EventSink = field(default_factory=ListSink)
    relay: MediaRelay | None = None
    trunks: TrunkService | None = None
    history: BatchWriter[FinishedCall] | None = None

    async def stop(self) -> None:
        """Hang up every call (BYE/CANCEL), write the last history rows, then close media,
        trunks and the endpoint."""
        try:
            if self.engine is not None:
                await self.engine.stop()
            if self.history is not None:
                await self.history.stop()
            if self.trunks is not None:
                try:
                    await self.trunks.stop()
                except Exception:
                    log.exception("trunk registrations not stopped cleanly")
            if self.relay is not None:
                await self.relay.close()
        finally:
            await self.endpoint.stop()


async def start_pbx(
    settings: Settings,
    database: Database,
    *,
    host: str | None = None,
    port: int | None = None,
    clock: Callable[[], float] = time.time,
    events: EventSink | None = None,
) -> RunningPbx:
    """Build the registrar, the call engine and the endpoint and listen (``host``/``port``
    default to settings); call events go to ``events`` (default: a :class:`ListSink`)."""
    digest = DigestServer(
        digest_key(settings.secret_key),
        settings.sip_realm,
        nonce_lifetime=settings.sip_nonce_lifetime,
    )
    registrar = Registrar(
        digest,
        Bindings(),
        min_expires=settings.sip_min_expires,
        max_expires=settings.sip_max_expires,
        default_expires=settings.sip_default_expires,
    )
    directory = DatabaseDirectory(database)
    trunks = TrunkService(database, settings)
    router = Router(database, trunks, ring_seconds=settings.ring_seconds)
    lookups = DirectoryCache(directory, router, trunks, ttl=settings.sip_directory_cache_ttl)
    service = PbxService(registrar, directory, clock=clock, lookups=lookups)
    endpoint = SipEndpoint(service, clock=clock)
    service.endpoint = endpoint
    sink: EventSink = events if events is not None else ListSink()
    calls = CallHistoryService(database)
    # history rows from one writer task, one transaction per batch (common/batch.py)
    history = BatchWriter(
        calls.record_many, calls.record, name="call history", linger=HISTORY_LINGER
    )
    relay = MediaRelay(settings.media_host, settings.rtp_port_min, settings.rtp_port_max)
    engine = CallEngine(
        endpoint,
        relay,
        router,
        digest,
        registrar.bindings,
        directory,
        sink,
        history=history,
        recordings=RecordingService(database, FileStore(settings.data_dir)),
        moh_tone_hz=settings.moh_tone_hz,
        ring_seconds=settings.ring_seconds,
        clock=clock,
        lookups=lookups,
    )
    service.engine = engine
    address = await endpoint.start(
        host if host is not None else settings.sip_host,
        port if port is not None else settings.sip_port,
    )
    control = LocalCallControl(engine)
    running = RunningPbx(endpoint, service, address, engine, control, sink, relay, trunks, history)
    try:
        await trunks.start(endpoint)
    except Exception:  # calls work without registrations to providers
        log.exception("trunk registrations not started")
    log.info("SIP on udp and tcp %s:%d, realm %s", address[0], address[1], settings.sip_realm)
    return running


_heap_frozen = False


def freeze_startup_heap() -> None:
    """Once per process: move what start-up built (modules, ORM metadata, settings) out of the
    cyclic garbage collector's sight (``gc.freeze``), so its full collections, which calls
    trigger, no longer walk several hundred thousand long-lived objects."""
    global _heap_frozen
    if not _heap_frozen:
        _heap_frozen = True
        gc.collect()
        gc.freeze()
