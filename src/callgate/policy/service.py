"""The access policy of the resource API (SPEC §4): six checks, in order, first failure answers.

1. no/unknown/expired/revoked token, or the app is not active → ``InvalidToken`` (401)
2. the user or its client is blocked → ``UserBlocked`` (403)
3. a write by a ``read_only`` user → ``UserAccessTypeDeny`` (403)
4. a write that is not a Call API operation, by a ``call_api`` app → ``AppAccessTypeDeny`` (403)
5. the path's client/extension is outside the user's realm → ``AccessDenied`` (403)
6. the path's client/extension does not exist → ``NotFound`` (404)

After check 1 the request takes a slot of the client's hourly quota; past it the answer is 429,
before any of checks 2 to 6, and every answer after check 1 carries the quota headers.

Most requests touch no database: the token check and the realm facts come from the per-worker
cache of ``policy/invalidation.py`` (valid only until the next authorization change, which any
commit touching tokens, applications, users, clients or extensions announces), and the quota
slot from the worker's reservation (``policy/ratelimit.py``). ``admit_cached`` runs the checks
that way, on the event loop, and answers None when it would need the database; ``admit`` runs in
the thread pool and reads what is missing: the token (one SELECT joining token, application,
user and client), a realm fact, or a new reservation of quota slots.

This module knows nothing of HTTP; the web edge (``policy/http.py``) feeds it the method, the
declared operation and the raw path parameters.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import Connection

from callgate.apps.models import AppStatus
from callgate.common.clock import utcnow
from callgate.common.db import Database
from callgate.common.errors import (
    AccessDenied,
    AppAccessTypeDeny,
    DomainError,
    InvalidInput,
    InvalidToken,
    NotFound,
    UserAccessTypeDeny,
    UserBlocked,
)
from callgate.common.security import hash_secret
from callgate.config import Settings
from callgate.identity.models import UserLevel
from callgate.policy import repository
from callgate.policy.invalidation import AuthorizationCache
from callgate.policy.operations import READ_METHODS, Operation
from callgate.policy.principal import ExtensionRealm, Principal, RateStatus, Realm
from callgate.policy.ratelimit import RateLimiter

ME = "@me"
_REALM_ID = re.compile(r"^[0-9]{1,18}$")
# Opaque tokens are token_urlsafe(32); anything far longer is not ours and is not even hashed.
_MAX_TOKEN_LENGTH = 512


@dataclass(frozen=True, slots=True)
class Admission:
    """A request that passed every check: who it acts for, its quota, its realm."""

    principal: Principal
    rate: RateStatus
    realm: Realm


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header (RFC 6750 §2.1)."""
    if not authorization:
        raise InvalidToken("An access token is required: send Authorization: Bearer <token>.")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > _MAX_TOKEN_LENGTH:
        raise InvalidToken("The Authorization header must be: Bearer <access token>.")
    return token


class _NeedsDatabase(Exception):
    """A realm fact is not cached: the request goes to the thread pool."""


class RealmFacts:
    """What checks 5 and 6 need to know: from the cache, else (if given) from the database."""

    def __init__(
        self,
        cache: AuthorizationCache,
        generation: int | None,
        connect: Callable[[], Connection] | None = None,
    ) -> None:
        self.cache = cache
        self.generation = generation
        self.connect = connect

    def client_exists(self, client_id: int) -> bool:
        key = f"client:{client_id}"
        if self.generation is not None and self.cache.fact(key, self.generation) is not None:
            return True
        if self.connect is None:
            raise _NeedsDatabase
        exists = repository.client_exists(self.connect(), client_id)
        if exists and self.generation is not None:
            self.cache.put_fact(key, client_id, self.generation)
        return exists

    def extension_client_id(self, extension_id: int) -> int | None:
        key = f"extension:{extension_id}"
        if self.generation is not None:
            cached = self.cache.fact(key, self.generation)
            if cached is not None:
                return cached
        if self.connect is None:
            raise _NeedsDatabase
        client_id = repository.extension_client_id(self.connect(), extension_id)
        if client_id is not None and self.generation is not None:
            self.cache.put_fact(key, client_id, self.generation)
        return client_id


# Paths without a realm parameter never ask for a fact.
_NO_FACTS: RealmFacts = RealmFacts.__new__(RealmFacts)


class AccessPolicy:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self.rate_limiter = RateLimiter(database, settings)
        self.cache = AuthorizationCache(database, settings)

    def admit_cached(
        self,
        authorization: str | None,
        method: str,
        operation: Operation,
        path_params: Mapping[str, str],
        record_quota: Callable[[RateStatus], None],
    ) -> Admission | None:
        """The six checks from memory only; None when they need the database (call ``admit``).

        Never blocks on I/O (on SQLite it reads the database header: a local file), so the web
        edge calls it on the event loop.
        """
        token_hash = hash_secret(bearer_token(authorization))
        generation = self.cache.generation()
        if generation is None:
            return None
        principal = self.cache.principal(token_hash, generation)
        if principal is None:
            return None
        try:
            facts = RealmFacts(self.cache, generation) if path_params else _NO_FACTS
            refusal, realm = self._check(principal, method, operation, path_params, facts)
        except _NeedsDatabase:
            return None
        rate = self.rate_limiter.take_reserved(principal)
        if rate is None:
            return None
        return self._conclude(principal, rate, realm, refusal, record_quota)

    def admit(
        self,
        authorization: str | None,
        method: str,
        operation: Operation,
        path_params: Mapping[str, str],
        record_quota: Callable[[RateStatus], None],
    ) -> Admission:
        """Run the six checks, reading from the database what the cache does not hold;
        ``record_quota`` gets the quota once counted, so that a refusal can still report it."""
        token_hash = hash_secret(bearer_token(authorization))
        # Taken before any read: what is read under it is cached under it (see invalidation.py).
        generation = self.cache.generation()
        with contextlib.ExitStack() as stack:
            connections: list[Connection] = []

            def connect() -> Connection:
                if not connections:
                    connections.append(stack.enter_context(self.database.read_connection()))
                return connections[0]

            principal = None
            if generation is not None:
                principal = self.cache.principal(token_hash, generation)
            if principal is None:
                principal = self._authenticate(connect(), token_hash, generation)
            facts = RealmFacts(self.cache, generation, connect)
            refusal, realm = self._check(principal, method, operation, path_params, facts)
        # The read is over before the quota's write, which may wait for SQLite's write lock.
        rate = self.rate_limiter.take(principal)
        return self._conclude(principal, rate, realm, refusal, record_quota)

    def _check(
        self,
        principal: Principal,
        method: str,
        operation: Operation,
        path_params: Mapping[str, str],
        facts: RealmFacts,
    ) -> tuple[DomainError | None, Realm]:
        """Checks 2 to 6: the refusal (or None) and the resolved realm."""
        try:
            self.check_access(principal, method, operation)
            return None, self.resolve_realm(facts, principal, path_params)
        except _NeedsDatabase:
            raise
        except DomainError as refused:
            return refused, Realm()

    @staticmethod
    def _conclude(
        principal: Principal,
        rate: RateStatus,
        realm: Realm,
        refusal: DomainError | None,
        record_quota: Callable[[RateStatus], None],
    ) -> Admission:
        record_quota(rate)
        # The quota answers before checks 2 to 6, as if it had been checked right after 1.
        RateLimiter.enforce(rate)
        if refusal is not None:
            raise refusal
        return Admission(principal, rate, realm)

    # -- check 1 -------------------------------------------------------------------------------

    def _authenticate(
        self, connection: Connection, token_hash: str, generation: int | None
    ) -> Principal:
        record = repository.principal_by_token_hash(connection, token_hash)
        if (
            record is None
            or record.revoked_at is not None
            or record.expires_at <= utcnow()
            or record.principal.app.status != AppStatus.ACTIVE
        ):
            # One answer for all of these: the client's remedy is the same (get a new token),
            # and telling them apart would help nobody but someone probing stolen tokens.
            raise InvalidToken("The access token is invalid, expired or revoked.")
        if generation is not None:
            self.cache.put_principal(
                token_hash, record.principal, record.expires_at.timestamp(), generation
            )
        return record.principal

    # -- checks 2 to 4 -------------------------------------------------------------------------

    @staticmethod
    def check_access(principal: Principal, method: str, operation: Operation) -> None:
        if principal.blocked:
            raise UserBlocked("The user or its client is blocked.")
        if method.upper() in READ_METHODS:
            return
        if principal.user.read_only:
            raise UserAccessTypeDeny(
                "This user has read-only access: only GET requests are allowed."
            )
        if principal.app.call_api_only and operation is not Operation.CALL_API:
            raise AppAccessTypeDeny(
                "The application's access level is Call API, which does not allow changing the "
                "PBX configuration; an administrator can raise it to All."
            )

    # -- checks 5 and 6 ------------------------------------------------------------------------

    def resolve_realm(
        self, facts: RealmFacts, principal: Principal, path_params: Mapping[str, str]
    ) -> Realm:
        """Resolve ``client_id`` / ``extension_id`` (an integer or ``@me``) and check them."""
        raw_client = path_params.get("client_id")
        raw_extension = path_params.get("extension_id")
        client_id = None
        extension = None
        if raw_client is not None:
            client_id = self._client_realm(facts, principal, raw_client)
        if raw_extension is not None:
            extension = self._extension_realm(facts, principal, raw_extension)
        return Realm(client_id=client_id, extension=extension)

    @staticmethod
    def _client_realm(facts: RealmFacts, principal: Principal, raw: str) -> int:
        user = principal.user
        client_id = user.client_id if raw == ME else _parse_id("client_id", raw)
        if user.is_admin:
            if client_id is None:
                raise NotFound("You belong to no client: give the client's id instead of @me.")
            if not facts.client_exists(client_id):
                raise NotFound(f"There is no client {client_id}.")
            return client_id
        # An extension's owner works in its extension's realm only, not in its client's.
        if user.level != UserLevel.CLIENT or client_id is None or client_id != user.client_id:
            raise AccessDenied("This client is outside what this user may access.")
        return client_id

    @staticmethod
    def _extension_realm(facts: RealmFacts, principal: Principal, raw: str) -> ExtensionRealm:
        user = principal.user
        if raw == ME:
            if user.extension_id is None or user.client_id is None:
                raise NotFound("You have no extension of your own: give the extension's id.")
            return ExtensionRealm(user.extension_id, user.client_id)
        extension_id = _parse_id("extension_id", raw)
        if user.level == UserLevel.EXTENSION:
            # The owner's own extension exists (foreign key); no query needed.
            if extension_id != user.extension_id or user.client_id is None:
                raise AccessDenied("This extension is outside what this user may access.")
            return ExtensionRealm(extension_id, user.client_id)
        client_id = facts.extension_client_id(extension_id)
        if user.is_admin:
            if client_id is None:
                raise NotFound(f"There is no extension {extension_id}.")
            return ExtensionRealm(extension_id, client_id)
        # Check 5 before 6: a non-admin learns nothing about ids outside its client.
        if user.level != UserLevel.CLIENT or client_id is None or client_id != user.client_id:
            raise AccessDenied("This extension is outside what this user may access.")
        return ExtensionRealm(extension_id, client_id)


def _parse_id(name: str, raw: str) -> int:
    if not _REALM_ID.match(raw):
        raise InvalidInput(f"{name} must be an integer or @me.", {name: "not an integer or @me"})
    return int(raw)
