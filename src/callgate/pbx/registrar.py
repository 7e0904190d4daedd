"""The registrar (RFC 3261 §10.3), sans-I/O: a REGISTER and the caller's account in, a response out.

:meth:`Registrar.register` takes the request, where it came from, ``now`` (wall-clock seconds) and
the :class:`~callgate.pbx.repository.SipAccount` named by the request's ``Authorization`` user
(the endpoint looks it up in a worker thread first; :func:`credentials_user` says which user to
look up). It answers:

* 401 with SHA-256 and MD5 challenges (MD5 only for :data:`MD5_ONLY_AGENTS`) when there are no
  credentials for our realm, when the nonce is not ours or is replayed, and with ``stale=true``
  when the password was right on an expired nonce;
* 403 for a wrong password or unknown user (the same answer, so user names cannot be probed), for a
  blocked client or extension (only after a correct password) and for an address-of-record (To)
  that is not the authenticated user's;
* 423 with ``Min-Expires`` below the minimum interval; 400 for a malformed request
  (``Contact: *`` without ``Expires: 0``); 500 for an out-of-order CSeq on the same Call-ID;
* 200 listing every current binding of the address-of-record with its remaining ``expires``
  (a REGISTER without Contact is a query; ``Expires: 0`` or ``Contact: *`` removes bindings).

Bindings live in :class:`Bindings`, in memory, keyed by SIP user name; expired ones are ignored at
once and purged as time passes. The B2BUA finds where to send an INVITE with
:meth:`Bindings.lookup`. Several PBX nodes will share them through a table (or Redis) behind the
same three methods; nothing else here depends on where they live.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

from callgate.pbx.repository import SipAccount
from callgate.sip.digest import DigestServer, Ha1Pair, Outcome
from callgate.sip.headers import AuthHeader, HeaderError, NameAddr
from callgate.sip.message import Request, Response
from callgate.sip.parser import make_response
from callgate.sip.uri import SipUri, UriError

Addr = tuple[str, int]

# User-Agent prefixes (lower case) that get an MD5 challenge only. libre, under baresip 1.0, walks
# every WWW-Authenticate and fails the whole registration with ENOSYS ("Function not implemented")
# on the first algorithm other than MD5, wherever it is in the list: it cannot skip the SHA-256
# challenge RFC 7616 asks us to offer. SIPp 3.6 answers the first WWW-Authenticate only and aborts
# ("authentication must use MD5 or AKAv1-MD5") when it is SHA-256; its scenarios here send
# "User-Agent: SIPp". Verification accepts both algorithms from anyone.
MD5_ONLY_AGENTS: tuple[str, ...] = ("baresip", "sipp")


@dataclass(frozen=True)
class Binding:
    """One registered contact of an address-of-record."""

    contact: str  # the Contact URI as the phone sent it
    source: Addr  # where the REGISTER came from: send requests there (NAT, TCP connection)
    transport: str  # "udp" or "tcp"
    expires_at: float
    call_id: str
    cseq: int

    def remaining(self, now: float) -> int:
        return max(0, int(self.expires_at - now + 0.5))


def digest_challenge(
    digest: DigestServer,
    request: Request,
    now: float,
    *,
    stale: bool = False,
    proxy: bool = False,
) -> Response:
    """A 401 with WWW-Authenticate (REGISTER) or, with ``proxy``, a 407 with Proxy-Authenticate
    (INVITE): SHA-256 then MD5, or MD5 alone for :data:`MD5_ONLY_AGENTS`."""
    response = make_response(request, 407 if proxy else 401)
    values = digest.challenge(now, stale=stale)
    agent = (request.headers.get("User-Agent") or "").lower()
    if agent.startswith(MD5_ONLY_AGENTS):
        values = [v for v in values if "algorithm=MD5" in v]
    name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
    for value in values:
        response.headers.add(name, value)
    return response


class Bindings:
    """In-memory bindings of this node: user name → contact URI → :class:`Binding`."""

    def __init__(self) -> None:
        self._by_aor: dict[str, dict[str, Binding]] = {}

    def lookup(self, aor: str, now: float) -> list[Binding]:
        """The live bindings of ``aor``, newest expiry first."""
        live = [b for b in self._by_aor.get(aor, {}).values() if b.expires_at > now]
        return sorted(live, key=lambda b: b.expires_at, reverse=True)

    def get(self, aor: str, contact: str) -> Binding | None:
        return self._by_aor.get(aor, {}).get(contact)

    def put(self, aor: str, binding: Binding) -> None:
        self._by_aor.setdefault(aor, {})[binding.contact] = binding

    def remove(self, aor: str, contact: str | None = None) -> None:
        """Remove one contact of ``aor``, or all of them when ``contact`` is None."""
        if contact is None:
            self._by_aor.pop(aor, None)
            return
        contacts = self._by_aor.get(aor)
        if contacts is not None:
            contacts.pop(contact, None)
            if not contacts:
                del self._by_aor[aor]

    def purge(self, now: float) -> int:
        """Forget expired bindings; returns how many went."""
        gone = 0
        for aor in list(self._by_aor):
            contacts = self._by_aor[aor]
            for key in [k for k, b in contacts.items() if b.expires_at <= now]:
                del contacts[key]
                gone += 1
            if not contacts:
                del self._by_aor[aor]
        return gone

    def __iter__(self) -> Iterator[tuple[str, Binding]]:
        for aor, contacts in self._by_aor.items():
            for binding in contacts.values():
                yield aor, binding


class Result(enum.Enum):
    CHALLENGED = "challenged"  # 401 without a failure: the normal first step
    REGISTERED = "registered"  # 200 (bindings added, refreshed, removed or queried)
    FAILED = "failed"  # any other final answer


@dataclass(frozen=True)
class Registration:
    """What :meth:`Registrar.register` decided: the response, and what to log."""

    response: Response
    result: Result
    user: str | None
    expires: int | None = None  # the interval granted to the first contact (0: unregistered)
    reason: str = ""  # why it failed, for the log; never contains a secret


def credentials_user(request: Request, realm: str) -> str | None:
    """The user name of the request's credentials for ``realm`` (what to look up), if any."""
    found = _credentials(request, realm)
    return found[0].get("username") if found is not None else None


def _credentials(request: Request, realm: str) -> tuple[AuthHeader, str] | None:
    """The parsed and raw Authorization value for our realm (a phone may carry several)."""
    for value in request.headers.get_all("Authorization"):
        try:
            header = AuthHeader.parse(value)
        except HeaderError:
            continue
        if header.scheme.lower() == "digest" and header.get("realm") == realm:
            return header, value
    return None


def _aor_user(request: Request) -> str | None:
    try:
        uri = request.to.uri
    except (HeaderError, UriError):
        return None
    return uri.user_unescaped if isinstance(uri, SipUri) else None


class Registrar:
    def __init__(
        self,
        digest: DigestServer,
        bindings: Bindings,
        *,
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
    ) -> None:
        self.digest = digest
        self.bindings = bindings
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = default_expires

    # ------------------------------------------------------------------ answers

    def _challenge(self, request: Request, now: float, *, stale: bool = False) -> Response:
        return digest_challenge(self.digest, request, now, stale=stale)

    def _fail(
        self,
        request: Request,
        status: int,
        user: str | None,
        reason: str,
        phrase: str | None = None,
    ) -> Registration:
        return Registration(
            make_response(request, status, phrase), Result.FAILED, user, None, reason
        )

    # ------------------------------------------------------------------ REGISTER

    def register(
        self,
        request: Request,
        source: Addr,
        now: float,
        account: SipAccount | None,
        *,
        transport: str = "udp",
    ) -> Registration:
        """Authenticate ``request`` against ``account`` and apply its Contacts."""
        found = _credentials(request, self.digest.realm)
        if found is None:
            return Registration(
                self._challenge(request, now), Result.CHALLENGED, _aor_user(request)
            )
        credentials, value = found
        user = credentials.get("username")

        def lookup(username: str) -> Ha1Pair | None:
            return account.ha1 if account is not None and account.username == username else None

        check = self.digest.verify(value, "REGISTER", now, lookup)
        outcome = check.outcome
        if outcome is Outcome.STALE:
            response = self._challenge(request, now, stale=True)
            return Registration(response, Result.CHALLENGED, user)
        if outcome is Outcome.MALFORMED:
            return self._fail(request, 400, user, "malformed credentials")
        if outcome in (Outcome.BAD_NONCE, Outcome.REPLAY, Outcome.WRONG_REALM):
            response = self._challenge(request, now)
            return Registration(response, Result.FAILED, user, None, outcome.value)
        if outcome in (Outcome.UNKNOWN_USER, Outcome.BAD_RESPONSE):
            reason = "unknown user" if outcome is Outcome.UNKNOWN_USER else "wrong password"
            return self._fail(request, 403, user, reason)
        assert outcome is Outcome.OK and account is not None
        if account.blocked:
            return self._fail(request, 403, user, "account blocked", "Forbidden (Account Blocked)")
        if _aor_user(request) != account.username:
            return self._fail(request, 403, user, "To is not the authenticated user")
        return self._apply(request, source, now, account.username, transport)

    def _apply(
        self, request: Request, source: Addr, now: float, aor: str, transport: str
    ) -> Registration:
        try:
            contacts = request.contacts
            call_id, cseq = request.call_id, request.cseq.seq
        except (HeaderError, UriError):
            return self._fail(request, 400, aor, "bad Contact")
        header_expires = request.expires
        if "Expires" in request.headers and header_expires is None:
            header_expires = self.default_expires  # RFC 3261 §10.3 step 7: treat as default
        if any(c.wildcard for c in contacts):
            if len(contacts) != 1 or header_expires != 0:
                return self._fail(request, 400, aor, "Contact * needs Expires: 0 and no other")
            self.bindings.remove(aor)
            return self._ok(request, aor, now, 0)
        changes: list[tuple[str, int]] = []
        for contact in contacts:
            expires = contact.expires
            if expires is None:
                expires = header_expires if header_expires is not None else self.default_expires
            if 0 < expires < self.min_expires:
                response = make_response(request, 423)
                response.headers.add("Min-Expires", str(self.min_expires))
                return Registration(
                    response, Result.FAILED, aor, expires, f"interval {expires}s too brief"
                )
            key = str(contact.uri)
            existing = self.bindings.get(aor, key)
            if existing is not None and existing.call_id == call_id and existing.cseq >= cseq:
                return self._fail(request, 500, aor, "CSeq out of order", "Out Of Order CSeq")
            changes.append((key, min(expires, self.max_expires)))
        for key, expires in changes:
            if expires == 0:
                self.bindings.remove(aor, key)
            else:
                binding = Binding(key, source, transport, now + expires, call_id, cseq)
                self.bindings.put(aor, binding)
        return self._ok(request, aor, now, changes[0][1] if changes else None)

    def _ok(self, request: Request, aor: str, now: float, expires: int | None) -> Registration:
        response = make_response(request, 200)
        for binding in self.bindings.lookup(aor, now):
            contact = NameAddr.parse(f"<{binding.contact}>")
            contact.params["expires"] = str(binding.remaining(now))
            response.headers.add("Contact", str(contact))
        return Registration(response, Result.REGISTERED, aor, expires)
