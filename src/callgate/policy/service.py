"""The access policy of the resource API (SPEC §4): six checks, in order, first failure answers.

1. no/unknown/expired/revoked token, or the app is not active → ``InvalidToken`` (401)
2. the user or its client is blocked → ``UserBlocked`` (403)
3. a write by a ``read_only`` user → ``UserAccessTypeDeny`` (403)
4. a write that is not a Call API operation, by a ``call_api`` app → ``AppAccessTypeDeny`` (403)
5. the path's client/extension is outside the user's realm → ``AccessDenied`` (403)
6. the path's client/extension does not exist → ``NotFound`` (404)

After check 1 the request is counted against the client's hourly quota; past it the answer is
429, before any of checks 2 to 6, and every answer after check 1 carries the quota headers.
Everything is read from the database on every request: a revoked token, a blocked user or a
lowered app level takes effect on the next request, in every worker.

All of it is one unit of work: one connection, one transaction, one SELECT for the token, at most
one more for a realm path, and one upsert for the counter, which is committed even when a check
refuses the request.

This module knows nothing of HTTP; the web edge (``policy/http.py``) feeds it the method, the
declared operation and the raw path parameters.
"""

from __future__ import annotations

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


class AccessPolicy:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self.rate_limiter = RateLimiter(database, settings)

    def admit(
        self,
        authorization: str | None,
        method: str,
        operation: Operation,
        path_params: Mapping[str, str],
        record_quota: Callable[[RateStatus], None],
    ) -> Admission:
        """Run the six checks; ``record_quota`` gets the quota once counted, so that a refusal
        can still report it."""
        token_hash = hash_secret(bearer_token(authorization))
        refusal: DomainError | None = None
        realm = Realm()
        with self.database.write() as session:
            connection = session.connection()
            principal = self._authenticate(connection, token_hash)
            try:
                self.check_access(principal, method, operation)
                realm = self.resolve_realm(connection, principal, path_params)
            except DomainError as refused:
                refusal = refused
            # Counted last, just before the commit: PostgreSQL holds the lock on the client's
            # counter row from this statement to the commit, and every request of the client
            # queues on it. The count is committed even when the request is refused.
            rate = self.rate_limiter.count_in(session, principal)
        record_quota(rate)
        # The quota answers before checks 2 to 6, as if it had been checked right after 1.
        RateLimiter.enforce(rate)
        if refusal is not None:
            raise refusal
        return Admission(principal, rate, realm)

    # -- check 1 -------------------------------------------------------------------------------

    @staticmethod
    def _authenticate(connection: Connection, token_hash: str) -> Principal:
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
        self, connection: Connection, principal: Principal, path_params: Mapping[str, str]
    ) -> Realm:
        """Resolve ``client_id`` / ``extension_id`` (an integer or ``@me``) and check them."""
        raw_client = path_params.get("client_id")
        raw_extension = path_params.get("extension_id")
        client_id = None
        extension = None
        if raw_client is not None:
            client_id = self._client_realm(connection, principal, raw_client)
        if raw_extension is not None:
            extension = self._extension_realm(connection, principal, raw_extension)
        return Realm(client_id=client_id, extension=extension)

    @staticmethod
    def _client_realm(connection: Connection, principal: Principal, raw: str) -> int:
        user = principal.user
        client_id = user.client_id if raw == ME else _parse_id("client_id", raw)
        if user.is_admin:
            if client_id is None:
                raise NotFound("You belong to no client: give the client's id instead of @me.")
            if not repository.client_exists(connection, client_id):
                raise NotFound(f"There is no client {client_id}.")
            return client_id
        # An extension's owner works in its extension's realm only, not in its client's.
        if user.level != UserLevel.CLIENT or client_id is None or client_id != user.client_id:
            raise AccessDenied("This client is outside what this user may access.")
        return client_id

    @staticmethod
    def _extension_realm(connection: Connection, principal: Principal, raw: str) -> ExtensionRealm:
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
        client_id = repository.extension_client_id(connection, extension_id)
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
