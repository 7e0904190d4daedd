"""HTTP Digest authentication for SIP (RFC 3261 §22, RFC 7616): server and client sides.

Server (:class:`DigestServer`): the registrar/INVITE handler calls :meth:`DigestServer.challenge`
for the ``WWW-Authenticate`` (or ``Proxy-Authenticate``) values of a 401/407 — SHA-256 and MD5 are
both offered, SHA-256 first as RFC 7616 §3.7 asks — and :meth:`DigestServer.verify` for the
``Authorization`` value of the retried request. Nothing is stored per challenge: a nonce is
``timestamp ‖ random ‖ HMAC(key, timestamp ‖ random)``, so its age and authenticity are checked with
the server key alone; a valid response on an expired nonce yields ``stale=true``. Replays are
refused by remembering, per nonce in use, the highest ``nc`` seen (a bounded table whose entries
expire with their nonce). Passwords never reach this module: the caller passes a lookup from
username to the stored ``(HA1-MD5, HA1-SHA-256)`` pair, HA1 = H(username:realm:password), and every
comparison is constant-time.

Only ``qop=auth`` is supported (no ``auth-int``, no ``userhash``, no RFC 2069 responses without
qop, which cannot be protected against replay).

Client (:func:`answer_challenge`): builds the ``Authorization``/``Proxy-Authorization`` value a
trunk expects after a 401/407.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import os
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from callgate.sip.headers import AuthHeader, HeaderError
from callgate.sip.uri import Params

ALGORITHMS: dict[str, str] = {"MD5": "md5", "SHA-256": "sha256"}


def _h(algorithm: str, text: str) -> str:
    return hashlib.new(ALGORITHMS[algorithm], text.encode("utf-8")).hexdigest()


def ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """H(username:realm:password), what the API side stores instead of the password."""
    return _h(algorithm, f"{username}:{realm}:{password}")


def digest_response(
    algorithm: str,
    ha1_value: str,
    nonce: str,
    nc: str,
    cnonce: str,
    qop: str,
    method: str,
    uri: str,
) -> str:
    """The ``response`` parameter for qop=auth (RFC 7616 §3.4.1)."""
    ha2 = _h(algorithm, f"{method}:{uri}")
    return _h(algorithm, f"{ha1_value}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


@dataclass(frozen=True)
class Ha1Pair:
    md5: str
    sha256: str

    def for_algorithm(self, algorithm: str) -> str:
        return self.md5 if algorithm == "MD5" else self.sha256


class Outcome(enum.Enum):
    OK = "ok"
    MALFORMED = "malformed"  # not Digest, a parameter missing, qop other than auth
    WRONG_REALM = "wrong realm"
    BAD_NONCE = "bad nonce"  # not issued by us (HMAC mismatch) or garbled
    UNKNOWN_USER = "unknown user"
    BAD_RESPONSE = "bad response"  # wrong password (or uri/method mismatch)
    STALE = "stale"  # right password, expired nonce: challenge with stale=true
    REPLAY = "replay"  # nc not above the highest seen for this nonce


@dataclass(frozen=True)
class Verification:
    outcome: Outcome
    username: str | None = None
    algorithm: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def stale(self) -> bool:
        return self.outcome is Outcome.STALE


_NONCE_RAW = 8 + 12 + 16  # timestamp (ms) ‖ random ‖ truncated HMAC


class DigestServer:
    """Issues challenges and verifies credentials for one realm (sans-I/O: ``now`` is passed in).

    ``key`` is a server secret (32 random bytes); several processes sharing it accept each
    other's nonces. ``max_tracked`` bounds the replay table.
    """

    def __init__(
        self,
        key: bytes,
        realm: str,
        *,
        nonce_lifetime: float = 300.0,
        max_tracked: int = 10_000,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if len(key) < 16:
            raise ValueError("the digest key must be at least 16 bytes")
        self.realm = realm
        self.nonce_lifetime = nonce_lifetime
        self.max_tracked = max_tracked
        self._key = key
        self._random = random_bytes
        self.opaque = hmac.new(key, b"opaque:" + realm.encode(), "sha256").hexdigest()[:24]
        # nonce -> (highest nc, expiry); insertion order is issue order for eviction
        self._seen: OrderedDict[str, tuple[int, float]] = OrderedDict()
        # nonces issued at or before this time that are no longer tracked are treated as stale,
        # so evicting an entry never re-opens its nonce to replay
        self._evicted_before = float("-inf")
        # expired entries are swept at most once a second (or whenever the table is full): an
        # expired nonce is answered "stale" before its entry is looked at, so a late sweep only
        # keeps memory a little longer
        self._next_purge = float("-inf")

    # ------------------------------------------------------------------ nonces

    def make_nonce(self, now: float) -> str:
        stamp = struct.pack(">q", int(now * 1000))
        body = stamp + self._random(12)
        mac = hmac.new(self._key, body, "sha256").digest()[:16]
        return base64.urlsafe_b64encode(body + mac).decode("ascii")

    def _nonce_time(self, nonce: str) -> float | None:
        try:
            raw = base64.urlsafe_b64decode(nonce.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            return None
        if len(raw) != _NONCE_RAW:
            return None
        body, mac = raw[:-16], raw[-16:]
        if not hmac.compare_digest(mac, hmac.new(self._key, body, "sha256").digest()[:16]):
            return None
        return float(struct.unpack(">q", body[:8])[0]) / 1000

    # ------------------------------------------------------------------ challenge

    def challenge(self, now: float, *, stale: bool = False) -> list[str]:
        """``WWW-Authenticate``/``Proxy-Authenticate`` values: SHA-256 first, then MD5."""
        nonce = self.make_nonce(now)
        values = []
        for algorithm in ("SHA-256", "MD5"):
            params = Params(
                [
                    ("realm", self.realm),
                    ("nonce", nonce),
                    ("opaque", self.opaque),
                    ("algorithm", algorithm),
                    ("qop", "auth"),
                ]
            )
            if stale:
                params["stale"] = "true"
            values.append(AuthHeader("Digest", params).serialize(unquoted=("algorithm", "stale")))
        return values

    # ------------------------------------------------------------------ verification

    def verify(
        self,
        value: str,
        method: str,
        now: float,
        lookup: Callable[[str], Ha1Pair | None],
        *,
        request_uri: str | None = None,
    ) -> Verification:
        """Check one ``Authorization``/``Proxy-Authorization`` value of a request.

        ``request_uri`` (the Request-URI as sent) is compared with the ``uri`` parameter when given.
        """
        try:
            creds = AuthHeader.parse(value)
        except HeaderError:
            return Verification(Outcome.MALFORMED)
        p = creds.params
        username, realm, nonce = p.get("username"), p.get("realm"), p.get("nonce")
        uri, response, cnonce, nc = p.get("uri"), p.get("response"), p.get("cnonce"), p.get("nc")
        algorithm = (p.get("algorithm") or "MD5").upper()
        if (
            creds.scheme.lower() != "digest"
            or None in (username, realm, nonce, uri, response, cnonce, nc)
            or algorithm not in ALGORITHMS
            or (p.get("qop") or "").lower() != "auth"
            or nc is None
            or len(nc) != 8
        ):
            return Verification(Outcome.MALFORMED, username)
        assert username is not None and nonce is not None and uri is not None
        assert response is not None and cnonce is not None and realm is not None
        try:
            count = int(nc, 16)
        except ValueError:
            return Verification(Outcome.MALFORMED, username)
        if not hmac.compare_digest(realm.encode(), self.realm.encode()):
            return Verification(Outcome.WRONG_REALM, username)
        if p.get("opaque") is not None and not hmac.compare_digest(
            (p.get("opaque") or "").encode(), self.opaque.encode()
        ):
            return Verification(Outcome.BAD_NONCE, username)
        issued = self._nonce_time(nonce)
        if issued is None:
            return Verification(Outcome.BAD_NONCE, username)
        if request_uri is not None and uri != request_uri:
            return Verification(Outcome.BAD_RESPONSE, username, algorithm)
        stored = lookup(username)
        if stored is None:
            return Verification(Outcome.UNKNOWN_USER, username, algorithm)
        expected = digest_response(
            algorithm, stored.for_algorithm(algorithm), nonce, nc, cnonce, "auth", method, uri
        )
        if not hmac.compare_digest(expected.encode(), response.lower().encode()):
            return Verification(Outcome.BAD_RESPONSE, username, algorithm)
        expires = issued + self.nonce_lifetime
        if now >= expires or issued > now + 5:
            return Verification(Outcome.STALE, username, algorithm)
        return Verification(self._count(nonce, count, issued, expires, now), username, algorithm)

    def _count(self, nonce: str, count: int, issued: float, expires: float, now: float) -> Outcome:
        seen = self._seen.get(nonce)
        if seen is None:
            if issued <= self._evicted_before:
                # maybe a nonce whose entry was evicted: make the client fetch a fresh one
                return Outcome.STALE
            if now >= self._next_purge or len(self._seen) >= self.max_tracked:
                self._purge(now)
                self._next_purge = now + 1.0
            while len(self._seen) >= self.max_tracked:
                _, (_, old_expiry) = self._seen.popitem(last=False)
                self._evicted_before = max(self._evicted_before, old_expiry - self.nonce_lifetime)
        elif count <= seen[0]:
            return Outcome.REPLAY
        self._seen[nonce] = (count, expires)
        return Outcome.OK

    def _purge(self, now: float) -> None:
        expired = [n for n, (_, expiry) in self._seen.items() if expiry <= now]
        for nonce in expired:
            del self._seen[nonce]

    @property
    def tracked(self) -> int:
        return len(self._seen)


# ---------------------------------------------------------------------- client side


def select_challenge(values: list[str]) -> AuthHeader:
    """The strongest Digest challenge we support among a response's WWW-/Proxy-Authenticate."""
    best: AuthHeader | None = None
    for value in values:
        try:
            header = AuthHeader.parse(value)
        except HeaderError:
            continue
        algorithm = (header.get("algorithm") or "MD5").upper()
        if header.scheme.lower() != "digest" or algorithm not in ALGORITHMS:
            continue
        if best is None or algorithm == "SHA-256":
            best = header
    if best is None:
        raise ValueError("no supported Digest challenge")
    return best


def answer_challenge(
    challenge: AuthHeader,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str,
    nc: int = 1,
) -> str:
    """The credentials value answering ``challenge`` (qop=auth when offered, else RFC 2069 form).

    The caller picks a fresh random ``cnonce`` and increments ``nc`` when reusing a nonce.
    """
    algorithm = (challenge.get("algorithm") or "MD5").upper()
    realm = challenge.get("realm") or ""
    nonce = challenge.get("nonce") or ""
    qops = [q.strip().lower() for q in (challenge.get("qop") or "").split(",") if q.strip()]
    secret = ha1(algorithm, username, realm, password)
    params = Params([("username", username), ("realm", realm), ("nonce", nonce), ("uri", uri)])
    if "auth" in qops:
        nc_text = f"{nc:08x}"
        params["response"] = digest_response(
            algorithm, secret, nonce, nc_text, cnonce, "auth", method, uri
        )
        params["algorithm"] = algorithm
        params["cnonce"] = cnonce
        params["qop"] = "auth"
        params["nc"] = nc_text
    else:
        if qops:
            raise ValueError(f"unsupported qop {qops}")
        params["response"] = _h(algorithm, f"{secret}:{nonce}:{_h(algorithm, f'{method}:{uri}')}")
        params["algorithm"] = algorithm
    opaque = challenge.get("opaque")
    if opaque is not None:
        params["opaque"] = opaque
    return AuthHeader("Digest", params).serialize(unquoted=("algorithm", "qop", "nc"))
