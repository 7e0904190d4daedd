"""SIP trunks: outbound routes, inbound calls from providers, digest towards them, registration.

:class:`TrunkService` is what the call engine asks about trunks (the ``TrunkRouting`` interface):

* :meth:`TrunkService.outbound_route` — the client's enabled trunk with the lowest priority for a
  dialled number that is not internal (a :class:`TrunkRoute`: where to send the INVITE, with which
  identity and credentials);
* :meth:`TrunkService.inbound` — whether a request comes from a configured trunk (source address
  against the trunks' hosts) and which DID/extension it is for (an :class:`InboundCall`);
* :meth:`TrunkService.authorize` — the request to re-send after a provider's 401/407, with
  ``Authorization``/``Proxy-Authorization`` (never twice for the same realm and nonce);

and it keeps the registrations of trunks with ``register`` set (:meth:`TrunkService.start` /
:meth:`TrunkService.stop`): REGISTER with digest, refresh at 80 % of the granted interval, retry
with a capped backoff, unregister on stop, trunk list reloaded periodically.

The two look-ups are blocking (database, name resolution): the engine calls them in a worker
thread. Trunk passwords are never logged nor shown in a ``repr``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select

from callgate.common.db import Database
from callgate.config import Settings
from callgate.identity.models import Extension
from callgate.pbx.endpoint import SipEndpoint
from callgate.pbx.registrar import Bindings, Registrar
from callgate.routing.models import Did, Trunk, TrunkTransport
from callgate.sip.digest import answer_challenge, select_challenge
from callgate.sip.headers import AuthHeader, CSeq, HeaderError, Headers
from callgate.sip.message import Request, Response
from callgate.sip.parser import new_tag
from callgate.sip.transaction import new_branch
from callgate.sip.transport import Addr
from callgate.sip.uri import AbsoluteUri, Params, SipUri, Uri

log = logging.getLogger("callgate.sip")

# What may be dialled out: digits with an optional leading +, and the keypad's * and #.
_DIALLED = re.compile(r"^\+?[0-9*#]{1,31}$")
_DID_DIGITS = re.compile(r"^[0-9]{1,31}$")
DEFAULT_SIP_PORT = 5060
USER_AGENT = "Callgate"
# A REGISTER answers at most this many challenges (401, then 407, then a stale nonce).
MAX_AUTH_ROUNDS = 3
# Bound on one REGISTER transaction, beyond the transaction layer's own Timer F (32 s).
REGISTER_TIMEOUT = 40.0
# Bound on the unregistrations sent by stop().
UNREGISTER_TIMEOUT = 5.0
MIN_REFRESH = 1.0
# Trunk host names are resolved again after this long (inbound matching runs on every INVITE).
RESOLVE_TTL = 30.0
MAX_RESOLVED = 10_000


@dataclass(frozen=True)
class TrunkRoute:
    """Where and how a call to an external number leaves: one trunk of the caller's client.

    ``address`` is the provider's resolved IP address and port (send the INVITE there);
    ``host`` is the configured name, for the Request-URI and the From domain.
    """

    trunk_id: int
    client_id: int
    host: str
    port: int
    transport: str
    username: str | None
    password: str | None = field(repr=False)
    caller_id_number: str | None
    address: Addr

    @property
    def from_domain(self) -> str:
        return self.host

    @property
    def has_credentials(self) -> bool:
        return bool(self.username) and self.password is not None

    def _host_port(self) -> str:
        host = self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # an IPv6 literal
        return host if self.port == DEFAULT_SIP_PORT else f"{host}:{self.port}"

    def _transport_param(self) -> str:
        return ";transport=tcp" if self.transport == TrunkTransport.TCP else ""

    def request_uri(self, number: str) -> str:
        """``sip:<number>@host[:port]`` (``#`` escaped, as a URI user part needs)."""
        user = number.replace("#", "%23")
        return f"sip:{user}@{self._host_port()}{self._transport_param()}"

    def registrar_uri(self) -> str:
        return f"sip:{self._host_port()}{self._transport_param()}"

    def aor(self) -> str:
        return f"sip:{self.username}@{self._host_port()}"


@dataclass(frozen=True)
class InboundCall:
    """A request that arrived from a configured trunk, and where its DID routes.

    ``extension_id`` is None when the number is no DID of the trunk's client or the DID routes
    nowhere: the engine answers 404.
    """

    client_id: int
    trunk_id: int
    did_number: str
    extension_id: int | None
    extension_name: str | None = None


@dataclass(frozen=True)
class _TrunkConfig:
    """A trunk's settings read from the database (a plain copy, usable outside the session)."""

    trunk_id: int
    client_id: int
    host: str
    port: int
    transport: str
    username: str | None
    password: str | None = field(repr=False)
    caller_id_number: str | None
    register_expires: int

    @classmethod
    def of(cls, trunk: Trunk) -> _TrunkConfig:
        return cls(
            trunk.id,
            trunk.client_id,
            trunk.host,
            trunk.port,
            trunk.transport,
            trunk.username,
            trunk.password,
            trunk.caller_id_number,
            trunk.register_expires,
        )

    def route(self) -> TrunkRoute | None:
        """The route through this trunk, its host resolved (blocking); None if it does not."""
        addresses = resolve_host(self.host)
        if not addresses:
            return None
        return TrunkRoute(
            trunk_id=self.trunk_id,
            client_id=self.client_id,
            host=self.host,
            port=self.port,
            transport=self.transport,
            username=self.username,
            password=self.password,
            caller_id_number=self.caller_id_number,
            address=(addresses[0], self.port),
        )


@dataclass(frozen=True)
class _TrunkAddress:
    trunk_id: int
    client_id: int
    host: str
    port: int


def valid_dialled_number(number: str) -> bool:
    return bool(_DIALLED.match(number))


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.removeprefix("[").removesuffix("]").split("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def resolve_host(host: str) -> list[str]:
    """The IP addresses of ``host`` (itself when it is an IP literal); [] when it does not resolve.

    Blocking (``getaddrinfo``): call it from a worker thread.
    """
    literal = _ip(host)
    if literal is not None:
        return [str(literal)]
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except (OSError, UnicodeError):
        return []
    seen: list[str] = []
    for info in infos:
        found = _ip(str(info[4][0]))
        if found is not None and str(found) not in seen:
            seen.append(str(found))
    return seen


def source_ip_towards(ip: str) -> str | None:
    """The local address the system would send from to ``ip`` (a UDP connect sends nothing)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((ip, 9))
            return str(probe.getsockname()[0])
    except OSError:
        return None


def _uri_user(uri: Uri) -> str | None:
    if isinstance(uri, SipUri):
        return uri.user_unescaped
    if isinstance(uri, AbsoluteUri) and uri.scheme.lower() == "tel":
        return uri.opaque.split(";")[0] or None
    return None


def _normalize_did(user: str | None) -> str | None:
    if user is None:
        return None
    number = user.strip().removeprefix("+").replace("-", "")
    return number if _DID_DIGITS.match(number) else None


def _strip_credentials(headers: Headers, name: str, realm: str) -> None:
    """Remove the ``name`` credentials of ``realm`` (others, for other realms, stay)."""
    kept = []
    for value in headers.get_all(name):
        try:
            if (AuthHeader.parse(value).get("realm") or "") == realm:
                continue
        except HeaderError:
            pass
        kept.append(value)
    headers.remove(name)
    for value in kept:
        headers.add(name, value)


def authorize(request: Request, challenge: Response, route: TrunkRoute) -> Request | None:
    """``request`` again, answering the 401/407 ``challenge`` with the route's credentials.

    New branch, CSeq + 1, credentials for the challenge's realm replaced. None when the route
    has no credentials, the challenge is not one we can answer, or the request already
    carried credentials for this realm that the provider refused (same nonce, or a new
    nonce without ``stale=true``: the password is wrong, asking again would loop).
    """
    if challenge.status == 401:
        challenge_name, credentials_name = "WWW-Authenticate", "Authorization"
    elif challenge.status == 407:
        challenge_name, credentials_name = "Proxy-Authenticate", "Proxy-Authorization"
    else:
        return None
    if not route.has_credentials or route.username is None or route.password is None:
        return None
    try:
        chosen = select_challenge(challenge.headers.get_all(challenge_name))
    except ValueError:
        return None
    realm = chosen.get("realm") or ""
    nonce = chosen.get("nonce") or ""
    stale = (chosen.get("stale") or "").lower() == "true"
    for value in request.headers.get_all(credentials_name):
        try:
            sent = AuthHeader.parse(value)
        except HeaderError:
            continue
        if (sent.get("realm") or "") == realm and ((sent.get("nonce") or "") == nonce or not stale):
            return None
    try:
        cseq = request.cseq
        answer = answer_challenge(
            chosen,
            method=request.method,
            uri=str(request.uri),
            username=route.username,
            password=route.password,
            cnonce=secrets.token_hex(8),
        )
    except (HeaderError, ValueError):
        return None
    retry = request.copy()
    vias = retry.headers.values("Via")
    if not vias:
        return None
    try:
        via = retry.top_via
    except HeaderError:
        return None
    via.params["branch"] = new_branch()
    retry.headers.remove("Via")
    retry.headers.add("Via", str(via))
    for value in vias[1:]:
        retry.headers.add("Via", value)
    retry.headers.set("CSeq", str(CSeq(cseq.seq + 1, cseq.method)))
    _strip_credentials(retry.headers, credentials_name, realm)
    retry.headers.add(credentials_name, answer)
    return retry


@dataclass
class _Registration:
    """One trunk's registration: its configuration and the state of its dialog-less REGISTERs."""

    config: _TrunkConfig
    route: TrunkRoute
    expires: int  # asked for; raised by a 423's Min-Expires
    call_id: str = field(default_factory=lambda: f"{secrets.token_hex(12)}@callgate")
    from_tag: str = field(default_factory=new_tag)
    cseq: int = 0
    status: str = "registering"
    registered: bool = False
    task: asyncio.Task[None] | None = None


class TrunkService:
    """Trunk routing for the call engine and registrations to providers (see the module doc)."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        reload_interval: float = 60.0,
        retry_min: float = 5.0,
        retry_max: float = 300.0,
        bindings: Bindings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.database = database
        # the registrar's bindings: a request from a registered phone's own address is the
        # phone's, even when a trunk shares its host (loopback tests, a provider on the LAN)
        self.bindings = bindings
        self.clock = clock
        self.settings = settings
        self.reload_interval = reload_interval
        self.retry_min = retry_min
        self.retry_max = retry_max
        self.endpoint: SipEndpoint | None = None
        self._registrations: dict[int, _Registration] = {}
        self._supervisor: asyncio.Task[None] | None = None
        self._unresolved: set[int] = set()
        self._resolved: dict[str, tuple[float, list[str]]] = {}  # host -> (valid until, IPs)

    # ------------------------------------------------------------------ outbound

    def outbound_route(self, client_id: int, number: str) -> TrunkRoute | None:
        """The client's enabled trunk with the lowest priority, or None (bad number, no trunk,
        host that does not resolve). Blocking."""
        if not valid_dialled_number(number):
            return None
        with self.database.read() as session:
            trunk = session.scalar(
                select(Trunk)
                .where(Trunk.client_id == client_id, Trunk.enabled.is_(True))
                .order_by(Trunk.priority, Trunk.id)
                .limit(1)
            )
            if trunk is None:
                return None
            config = _TrunkConfig.of(trunk)
        route = config.route()
        if route is None:
            log.warning("trunk %d: host %s does not resolve", config.trunk_id, config.host)
        return route

    # ------------------------------------------------------------------ inbound

    def inbound(self, source: Addr, request: Request) -> InboundCall | None:
        """The trunk ``request`` arrived from and the DID it is for; None when from no trunk.

        Blocking: reads the enabled trunks and resolves their host names (once per look-up).
        """
        source_ip = _ip(source[0])
        if source_ip is None or self._from_registered_phone(source, request):
            return None
        with self.database.read() as session:
            rows = session.execute(
                select(Trunk.id, Trunk.client_id, Trunk.host, Trunk.port)
                .where(Trunk.enabled.is_(True))
                .order_by(Trunk.priority, Trunk.id)
            ).all()
        trunks = [_TrunkAddress(r[0], r[1], r[2], r[3]) for r in rows]
        resolved: dict[str, list[str]] = {}
        matches = []
        for trunk in trunks:
            if trunk.host not in resolved:
                resolved[trunk.host] = self._resolve(trunk.host)
            if str(source_ip) in resolved[trunk.host]:
                matches.append(trunk)
        if not matches:
            return None
        if len(matches) > 1:
            # several trunks on one host (tests on 127.0.0.1, a provider's shared proxy): the
            # source port decides when it names one of them
            same_port = [t for t in matches if t.port == source[1]]
            matches = same_port or matches
        candidates: list[str] = []
        to_user: str | None = None
        with contextlib.suppress(HeaderError):
            to_user = _uri_user(request.to.uri)
        for user in (_uri_user(request.uri), to_user):
            number = _normalize_did(user)
            if number is not None and number not in candidates:
                candidates.append(number)
        clients = {t.client_id for t in matches}
        with self.database.read() as session:
            for number in candidates:
                row = session.execute(
                    select(Did.client_id, Did.extension_id, Extension.name)
                    .outerjoin(Extension, Extension.id == Did.extension_id)
                    .where(Did.number.in_([number, "+" + number]))
                    .order_by(Did.id)
                ).first()
                if row is None or row[0] not in clients:
                    continue
                trunk = next(t for t in matches if t.client_id == row[0])
                return InboundCall(trunk.client_id, trunk.trunk_id, number, row[1], row[2])
        first = matches[0]
        return InboundCall(
            first.client_id, first.trunk_id, candidates[0] if candidates else "", None
        )

    def addresses(self) -> frozenset[str]:
        """Every IP address an enabled trunk's host resolves to: a request from elsewhere is
        from no trunk (:meth:`inbound` would answer None). Blocking."""
        with self.database.read_connection() as connection:
            hosts = connection.execute(
                select(Trunk.host).where(Trunk.enabled.is_(True)).distinct()
            ).scalars()
            names = list(hosts)
        found: set[str] = set()
        for host in names:
            found.update(self._resolve(host))
        return frozenset(found)

    def _resolve(self, host: str) -> list[str]:
        """:func:`resolve_host`, names cached for ``RESOLVE_TTL`` seconds: every INVITE asks."""
        if _ip(host) is not None:
            return resolve_host(host)
        now = time.monotonic()
        cached = self._resolved.get(host)
        if cached is not None and cached[0] > now:
            return cached[1]
        addresses = resolve_host(host)
        if len(self._resolved) >= MAX_RESOLVED:
            self._resolved.clear()
        self._resolved[host] = (now + RESOLVE_TTL, addresses)
        return addresses

    def _from_registered_phone(self, source: Addr, request: Request) -> bool:
        """Whether ``source`` is where the From user's phone registered from."""
        if self.bindings is None:
            return False
        try:
            user = _uri_user(request.from_.uri)
        except HeaderError:
            return False
        if not user:
            return False
        try:
            live = self.bindings.lookup(user, self.clock())
        except RuntimeError:  # the event loop changed that user's bindings meanwhile
            return False
        return any(binding.source == source for binding in live)

    # ------------------------------------------------------------------ digest

    def authorize(self, request: Request, challenge: Response, route: object) -> Request | None:
        """See :func:`authorize`; ``route`` is a :class:`TrunkRoute` from :meth:`outbound_route`
        (typed loosely so that any engine-side protocol of a route is accepted; anything else
        gets None)."""
        if not isinstance(route, TrunkRoute):
            return None
        return authorize(request, challenge, route)

    # ------------------------------------------------------------------ registrations

    async def start(self, endpoint: SipEndpoint, bindings: Bindings | None = None) -> None:
        """Register every enabled trunk that asks for it, and keep the registrations up.

        ``bindings`` (default: those of the endpoint's registrar, if it has one) let
        :meth:`inbound` tell a registered phone from a trunk on the same host.
        """
        self.endpoint = endpoint
        self.clock = endpoint.clock
        if bindings is None:
            registrar = getattr(endpoint.handler, "registrar", None)
            if isinstance(registrar, Registrar):
                bindings = registrar.bindings
        if bindings is not None:
            self.bindings = bindings
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def stop(self) -> None:
        """Stop refreshing and unregister (Expires: 0) what is registered, bounded in time."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        registrations = list(self._registrations.values())
        await self._cancel_tasks(registrations)
        await asyncio.gather(*(self._unregister(reg) for reg in registrations))
        self._registrations.clear()

    def status(self) -> dict[int, str]:
        """Trunk id → ``registering``, ``registered``, ``failed: <status> <reason>``…"""
        return {trunk_id: reg.status for trunk_id, reg in self._registrations.items()}

    def _load_registrations(self) -> dict[int, tuple[_TrunkConfig, TrunkRoute | None]]:
        with self.database.read() as session:
            trunks = session.scalars(
                select(Trunk).where(Trunk.enabled.is_(True), Trunk.register.is_(True))
            ).all()
            configs = [_TrunkConfig.of(t) for t in trunks]
        return {c.trunk_id: (c, c.route()) for c in configs}

    async def _supervise(self) -> None:
        while True:
            try:
                loaded = await asyncio.to_thread(self._load_registrations)
                await self._apply(loaded)
            except asyncio.CancelledError:
                raise
            except Exception:  # a database hiccup must not end the registrations
                log.exception("trunk list reload failed")
            await asyncio.sleep(self.reload_interval)

    async def _apply(self, loaded: dict[int, tuple[_TrunkConfig, TrunkRoute | None]]) -> None:
        for trunk_id in list(self._registrations):
            reg = self._registrations[trunk_id]
            entry = loaded.get(trunk_id)
            if entry is None or entry[0] != reg.config:
                # removed, disabled or changed: unregister the old one (a changed trunk starts
                # again below with its new settings)
                del self._registrations[trunk_id]
                await self._cancel_tasks([reg])
                await self._unregister(reg)
        for trunk_id, (config, route) in loaded.items():
            if trunk_id in self._registrations:
                continue
            if route is None:
                if trunk_id not in self._unresolved:  # once, not at every reload
                    self._unresolved.add(trunk_id)
                    log.info(
                        "trunk %d registration failed: host %s does not resolve",
                        trunk_id,
                        config.host,
                    )
                continue
            self._unresolved.discard(trunk_id)
            reg = _Registration(config, route, config.register_expires)
            self._registrations[trunk_id] = reg
            reg.task = asyncio.get_running_loop().create_task(self._maintain(reg))

    @staticmethod
    async def _cancel_tasks(registrations: list[_Registration]) -> None:
        tasks = [reg.task for reg in registrations if reg.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _maintain(self, reg: _Registration) -> None:
        """Register, refresh at 80 % of the granted interval; on failure retry with backoff."""
        failures = 0
        while True:
            try:
                response, granted = await self._register(reg, reg.expires)
            except (HeaderError, ValueError, OSError, RuntimeError):
                # a malformed answer or a local failure: retried like any other failure
                log.exception("trunk %d registration attempt failed", reg.route.trunk_id)
                response, granted = None, 0
            route = reg.route
            if response is not None and response.success:
                failures = 0
                reg.registered = True
                reg.status = "registered"
                log.info(
                    "trunk %d registered to %s:%d expires=%d",
                    route.trunk_id,
                    route.host,
                    route.port,
                    granted,
                )
                await asyncio.sleep(max(MIN_REFRESH, granted * 0.8))
                continue
            reg.registered = False
            reason = (
                f"{response.status} {response.reason}" if response is not None else "no response"
            )
            reg.status = f"failed: {reason}"
            log.info("trunk %d registration failed: %s", route.trunk_id, reason)
            delay = min(self.retry_max, self.retry_min * (2 ** min(failures, 16)))
            failures += 1
            await asyncio.sleep(delay)

    async def _unregister(self, reg: _Registration) -> None:
        if not reg.registered:
            return
        reg.registered = False
        reg.status = "unregistered"
        try:
            response, _ = await asyncio.wait_for(self._register(reg, 0), UNREGISTER_TIMEOUT)
        except TimeoutError:
            response = None
        route = reg.route
        if response is not None and response.success:
            log.info("trunk %d unregistered from %s:%d", route.trunk_id, route.host, route.port)
        else:
            reason = (
                f"{response.status} {response.reason}" if response is not None else "no response"
            )
            log.info("trunk %d unregistration failed: %s", route.trunk_id, reason)

    def _register_request(self, reg: _Registration, expires: int) -> Request:
        endpoint = self.endpoint
        assert endpoint is not None
        route = reg.route
        local_host, local_port = endpoint.local_address(route.transport)
        listening = _ip(local_host)
        if listening is not None and listening.is_unspecified:
            # listening on every interface: name the one that reaches the provider
            local_host = source_ip_towards(route.address[0]) or local_host
        if ":" in local_host:
            local_host = f"[{local_host}]"
        transport = route.transport.upper()
        reg.cseq += 1
        contact_params = ";transport=tcp" if route.transport == TrunkTransport.TCP else ""
        headers = Headers()
        headers.add(
            "Via", f"SIP/2.0/{transport} {local_host}:{local_port};branch={new_branch()};rport"
        )
        headers.add("Max-Forwards", "70")
        headers.add("From", f"<{route.aor()}>;tag={reg.from_tag}")
        headers.add("To", f"<{route.aor()}>")
        headers.add("Call-ID", reg.call_id)
        headers.add("CSeq", f"{reg.cseq} REGISTER")
        headers.add("Contact", f"<sip:{route.username}@{local_host}:{local_port}{contact_params}>")
        headers.add("Expires", str(expires))
        headers.add("User-Agent", USER_AGENT)
        uri = SipUri(
            route.host,
            None,
            None,
            None if route.port == DEFAULT_SIP_PORT else route.port,
            params=Params([("transport", "tcp")])
            if route.transport == TrunkTransport.TCP
            else Params(),
        )
        return Request("REGISTER", uri, headers)

    async def _register(self, reg: _Registration, expires: int) -> tuple[Response | None, int]:
        """One REGISTER exchange, answering challenges: (final response or None, granted)."""
        if self.endpoint is None:
            return None, 0
        request = self._register_request(reg, expires)
        response: Response | None = None
        for _ in range(MAX_AUTH_ROUNDS + 1):
            response = await self._send(request, reg.route)
            if response is None:
                return None, 0
            if response.status in (401, 407):
                retry = self.authorize(request, response, reg.route)
                if retry is None:
                    return response, 0
                request = retry
                reg.cseq = request.cseq.seq
                continue
            if response.status == 423 and expires:
                minimum = response.headers.get("Min-Expires")
                if minimum is not None and minimum.strip().isdigit() and int(minimum) > expires:
                    expires = int(minimum)
                    reg.expires = expires
                    request = self._register_request(reg, expires)
                    continue
            break
        if response is None or not response.success:
            return response, 0
        return response, self._granted(response, request, expires)

    @staticmethod
    def _granted(response: Response, request: Request, asked: int) -> int:
        """The interval the registrar granted to our contact (RFC 3261 §10.2.4)."""
        try:
            ours = request.contacts[0].uri
            for contact in response.contacts:
                if contact.uri == ours and contact.expires is not None:
                    return contact.expires
        except (HeaderError, IndexError):
            pass
        if response.expires is not None:
            return response.expires
        return asked

    async def _send(self, request: Request, route: TrunkRoute) -> Response | None:
        endpoint = self.endpoint
        if endpoint is None:
            return None
        loop = asyncio.get_running_loop()
        final: asyncio.Future[Response] = loop.create_future()

        def on_response(response: Response) -> None:
            if response.final and not final.done():
                final.set_result(response)

        try:
            endpoint.send_request(request, route.address, on_response, transport=route.transport)
        except (OSError, RuntimeError, ValueError) as exc:
            log.debug("trunk %d REGISTER not sent: %s", route.trunk_id, exc)
            return None
        try:
            return await asyncio.wait_for(final, REGISTER_TIMEOUT)
        except TimeoutError:
            return None


__all__ = [
    "InboundCall",
    "TrunkRoute",
    "TrunkService",
    "authorize",
    "resolve_host",
    "valid_dialled_number",
]
