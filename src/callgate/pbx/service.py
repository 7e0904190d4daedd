"""The SIP application of the PBX: what each request method gets, and how the PBX is started.

:class:`PbxService` is the :data:`~callgate.pbx.endpoint.RequestHandler` of the endpoint:

* REGISTER → the :class:`~callgate.pbx.registrar.Registrar` (account looked up in a worker
  thread), one log line per registration attempt that is not a plain challenge;
* OPTIONS → 200 with Allow/Accept/Supported (health checks, Kamailio's dispatcher probes);
* INVITE → 480 until the B2BUA exists; CANCEL → 200 + 487 on its INVITE, or 481; BYE → 481;
* other methods of RFC 3261 and its extensions → 405 with Allow; unknown methods → 501;
  a ``Require`` we do not support → 420 with Unsupported.

The B2BUA will replace the INVITE branch and use ``registrar.bindings`` to find phones.
:func:`start_pbx` builds everything from the settings and the database; ``callgate serve`` (one
process) and ``callgate sip`` (a process of its own) call it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from callgate.common.db import Database
from callgate.config import Settings
from callgate.pbx.endpoint import Incoming, SipEndpoint
from callgate.pbx.registrar import Bindings, Registrar, Result, credentials_user
from callgate.pbx.repository import DatabaseDirectory, Directory
from callgate.sip.digest import DigestServer
from callgate.sip.message import Response
from callgate.sip.parser import make_response, split_list

log = logging.getLogger("callgate.sip")

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER"
ACCEPT = "application/sdp"
KNOWN_METHODS = frozenset(
    ["SUBSCRIBE", "NOTIFY", "PUBLISH", "MESSAGE", "INFO", "UPDATE", "PRACK", "REFER"]
)  # answered 405; anything else unknown is 501
SUPPORTED: frozenset[str] = frozenset()  # option tags we implement (none yet)
# Until the B2BUA exists an INVITE is refused with a reason a phone's screen can show.
INVITE_REASON = "Temporarily Unavailable (calls not implemented yet)"


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
    ) -> None:
        self.registrar = registrar
        self.directory = directory
        self.clock = clock
        self.lookup_in_thread = lookup_in_thread
        # set once the endpoint exists (it needs us as its handler): CANCEL answers an INVITE
        self.endpoint: SipEndpoint | None = None

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
        if method == "INVITE":
            return make_response(request, 480, INVITE_REASON)
        if method == "CANCEL":
            return self._cancel(incoming)
        if method == "BYE":
            return make_response(request, 481)
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
            if self.lookup_in_thread:
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

    async def stop(self) -> None:
        await self.endpoint.stop()


async def start_pbx(
    settings: Settings,
    database: Database,
    *,
    host: str | None = None,
    port: int | None = None,
    clock: Callable[[], float] = time.time,
) -> RunningPbx:
    """Build the registrar and the endpoint and listen (``host``/``port`` default to settings)."""
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
    service = PbxService(registrar, DatabaseDirectory(database), clock=clock)
    endpoint = SipEndpoint(service, clock=clock)
    service.endpoint = endpoint
    address = await endpoint.start(
        host if host is not None else settings.sip_host,
        port if port is not None else settings.sip_port,
    )
    log.info("SIP on udp and tcp %s:%d, realm %s", address[0], address[1], settings.sip_realm)
    return RunningPbx(endpoint, service, address)
