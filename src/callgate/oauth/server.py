"""The OAuth2 authorization server (SPEC §3): Authlib's protocol core wired to Callgate's storage.

:class:`CallgateAuthorizationServer` is Authlib's generic server with Callgate's grants,
endpoints and storage operations; :class:`OAuthServer` is the facade the HTTP edge calls with
plain :class:`HttpRequest` values. Neither imports a web framework.

Decisions where the RFCs leave a choice:
- the password grant while locked out answers 429 with ``Retry-After`` and the body
  ``{"error": "invalid_grant", ...}`` (a standard code that clients understand);
- revoking an access token revokes its row (the refresh token issued with it goes too);
  revoking a refresh token revokes its whole family;
- a rotated refresh token presented within the grace period yields another token pair in
  the same family; the old access token stays valid until it expires.

A token or revocation request is **one unit of work** (:class:`UnitOfWork`): client
authentication (one SELECT joining the application, its owner and the owner's client), the
grant's reads and writes and the audit row share one transaction, opened when first needed. A
step that fails inside it rolls back what the request wrote so far, as its own unit of work would
have; refusals that must leave a trace (code replay, refresh-token reuse) write it and raise after.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, NoReturn, TypeVar

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import InvalidGrantError, OAuth2Error
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc9207 import IssuerParameter
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callgate.apps.models import ACCESS_LEVEL_LABELS, AccessLevel, Application, AppStatus
from callgate.apps.repository import ApplicationRepository
from callgate.audit.service import record
from callgate.common.clock import utcnow
from callgate.common.db import Database
from callgate.config import Settings
from callgate.identity.authentication import Authenticator
from callgate.identity.models import Client, Status, User
from callgate.oauth.adapters import (
    CLIENT_AUTH_METHODS,
    GRANT_TYPES,
    SCOPE,
    AppClient,
    AppRecord,
    CallgateRequest,
    CodeRecord,
    HttpRequest,
    HttpResponse,
    TokenRecord,
    active_user,
)
from callgate.oauth.endpoints import IntrospectionEndpoint, RevocationEndpoint
from callgate.oauth.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    PasswordGrant,
    RefreshTokenGrant,
    S256CodeChallenge,
)
from callgate.oauth.models import AuthorizationCode, Token
from callgate.oauth.repository import (
    AuthorizationCodeRepository,
    IssuedToken,
    TokenRepository,
)

__all__ = [
    "AuthorizationRefused",
    "CallgateAuthorizationServer",
    "ConsentNeeded",
    "HttpRequest",
    "HttpResponse",
    "OAuthServer",
]

# The parameters of an authorization request, carried through the consent form.
AUTHORIZATION_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)


class _Issuer(IssuerParameter):  # type: ignore[misc]
    """RFC 9207: ``iss`` on every authorization response, success or error."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


class UnitOfWork:
    """The one write unit of work of a token-endpoint request, opened when first needed."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._context: AbstractContextManager[Session] | None = None
        self._session: Session | None = None

    def session(self) -> Session:
        if self._session is None:
            self._context = self.database.write()
            self._session = self._context.__enter__()
        return self._session

    def commit(self) -> None:
        """Commit what is open; a later ``session()`` opens a new transaction."""
        context, self._context, self._session = self._context, None, None
        if context is not None:
            context.__exit__(None, None, None)

    def rollback(self, error: BaseException) -> None:
        context, self._context, self._session = self._context, None, None
        if context is not None:
            context.__exit__(type(error), error, error.__traceback__)


# The unit of work of the token or revocation request this thread is serving, if any.
_UNIT: ContextVar[UnitOfWork | None] = ContextVar("callgate_oauth_unit", default=None)

_Result = TypeVar("_Result")

_apps = Application.__table__
_users = User.__table__
_clients = Client.__table__
# Client authentication reads the application with its owner's and the owner's client's status,
# so that the client_credentials grant (tokens act as the owner) needs no second query.
_CLIENT_WITH_OWNER = (
    select(
        *(_apps.c[name] for name in AppRecord.__slots__),
        _users.c.status,
        _clients.c.status,
    )
    .select_from(
        _apps.join(_users, _users.c.id == _apps.c.owner_id).outerjoin(
            _clients, _clients.c.id == _users.c.client_id
        )
    )
    .where(_apps.c.app_id == bindparam("app_id"))
)


def _token_body(issued: IssuedToken) -> dict[str, Any]:
    body: dict[str, Any] = {
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.token.scope,
    }
    if issued.refresh_token:
        body["refresh_token"] = issued.refresh_token
    return body


class CallgateAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """Authlib's server with Callgate's grants, endpoints and storage."""

    def __init__(self, database: Database, settings: Settings, authenticator: Authenticator):
        super().__init__(scopes_supported=[SCOPE])
        self.database = database
        self.settings = settings
        self.authenticator = authenticator
        self.issuer_parameter = _Issuer(settings.issuer)
        self.register_client_auth_method("client_secret_basic", self._client_secret_basic)
        self.register_client_auth_method("client_secret_post", self._client_secret_post)
        self.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True)])
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(PasswordGrant)
        self.register_grant(RefreshTokenGrant)
        self.register_endpoint(RevocationEndpoint)
        self.register_endpoint(IntrospectionEndpoint)
        self.register_extension(self.issuer_parameter)

    # -- units of work ----------------------------------------------------------------------

    def in_one_unit(self, handle: Callable[[], _Result]) -> _Result:
        """Run ``handle`` (a token or revocation request) in one unit of work."""
        unit = UnitOfWork(self.database)
        token = _UNIT.set(unit)
        try:
            result = handle()
        except BaseException as error:
            unit.rollback(error)
            raise
        finally:
            _UNIT.reset(token)
        unit.commit()
        return result

    @staticmethod
    def release_unit() -> None:
        """Commit the request's unit of work before work that opens its own (password checks)."""
        unit = _UNIT.get()
        if unit is not None:
            unit.commit()

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        unit = _UNIT.get()
        if unit is None:
            with self.database.read() as session:
                yield session
        else:
            yield unit.session()

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        unit = _UNIT.get()
        if unit is None:
            with self.database.write() as session:
                yield session
            return
        session = unit.session()
        try:
            yield session
        except BaseException as error:
            # As if this step had been a unit of work of its own: nothing of it is kept.
            unit.rollback(error)
            raise

    # -- client authentication ---------------------------------------------------------------

    def _verified_client(self, client_id: str | None, secret: str | None) -> AppClient | None:
        # Never raises: a failed method lets the next one try, and when all fail Authlib answers
        # 401 invalid_client (unknown and wrong-secret clients look the same).
        if not client_id or not secret:
            return None
        if _UNIT.get() is None:
            client = self.query_client(client_id)
        else:
            with self._reading() as session:
                row = session.connection().execute(_CLIENT_WITH_OWNER, {"app_id": client_id})
                found = row.first()
            client = None
            if found is not None:
                *columns, owner_status, owner_client_status = found
                application = AppRecord(*columns)
                if application.status == AppStatus.ACTIVE:
                    owner_active = owner_status == Status.ACTIVE and owner_client_status in (
                        None,  # an admin belongs to no client
                        Status.ACTIVE,
                    )
                    client = AppClient(application, owner_active)
        if client is None or not client.check_client_secret(secret):
            return None
        return client

    def _client_secret_basic(self, query_client: Any, request: CallgateRequest) -> Any:
        client_id, secret = extract_basic_authorization(request.headers)
        return self._verified_client(client_id, secret)

    def _client_secret_post(self, query_client: Any, request: CallgateRequest) -> Any:
        return self._verified_client(
            request.form.get("client_id"), request.form.get("client_secret")
        )

    # -- Authlib's framework hooks ---------------------------------------------------------

    def query_client(self, client_id: str) -> AppClient | None:
        """The active application with this App ID; a suspended one does not exist here."""
        with self.database.read() as session:
            application = ApplicationRepository(session).by_app_id(client_id)
        if application is None or application.status != "active":
            return None
        return AppClient(application)

    def create_oauth2_request(self, request: HttpRequest | CallgateRequest) -> CallgateRequest:
        if isinstance(request, CallgateRequest):
            return request
        return CallgateRequest(request, self.settings.issuer)

    def handle_response(self, status: int, body: Any, headers: Any) -> HttpResponse:
        return HttpResponse(status, body, list(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Authlib's signals are not used; the audit log is written by the storage methods."""

    def save_token(self, token: Any, request: Any) -> None:
        raise NotImplementedError("tokens are stored by TokenRepository.issue in the grants")

    # -- storage operations called by the grants and endpoints ---------------------------

    def save_authorization_code(self, code: str, request: CallgateRequest) -> None:
        data = request.payload.data
        with self.database.write() as session:
            AuthorizationCodeRepository(session).add(
                code=code,
                application=request.client.application,
                user_id=request.user.id,
                redirect_uri=request.payload.redirect_uri or "",
                scope=request.scope or SCOPE,
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
                lifetime=self.settings.authorization_code_lifetime,
            )

    def find_authorization_code(
        self, code: str, client: AppClient, address: str | None = None
    ) -> CodeRecord | None:
        with self._reading() as session:
            row = AuthorizationCodeRepository(session).by_code(code, client.application.id)
        if row is None:
            return None
        if row.used_at is not None:
            self._code_replayed(row, client, address)
        if row.expires_at <= utcnow():
            return None
        return CodeRecord(row)

    def _code_replayed(
        self, row: AuthorizationCode, client: AppClient, address: str | None
    ) -> NoReturn:
        """RFC 6749 §4.1.2: refuse, and revoke what the code's first use produced."""
        with self._writing() as session:
            revoked = TokenRepository(session).revoke_for_authorization_code(row.id)
            record(
                session,
                "code_replay",
                user_id=row.user_id,
                app_id=client.client_id,
                address=address,
                detail=f"code_id={row.id} revoked_tokens={revoked}",
            )
        raise InvalidGrantError("The authorization code was already used.")

    def exchange_code(
        self, client: AppClient, code: CodeRecord, address: str | None
    ) -> dict[str, Any]:
        with self._writing() as session:
            # The conditional UPDATE decides which of two simultaneous exchanges wins.
            won = AuthorizationCodeRepository(session).consume(code.row.id, utcnow())
            if won:
                return self._issue(
                    session,
                    client,
                    code.row.user_id,
                    "authorization_code",
                    refresh=True,
                    address=address,
                    authorization_code_id=code.row.id,
                )
        self._code_replayed(code.row, client, address)

    def issue_for_user(
        self, client: AppClient, user_id: int, grant_type: str, *, refresh: bool, address: str
    ) -> dict[str, Any]:
        with self._writing() as session:
            return self._issue(
                session, client, user_id, grant_type, refresh=refresh, address=address
            )

    def _issue(
        self,
        session: Any,
        client: AppClient,
        user_id: int,
        grant_type: str,
        *,
        refresh: bool,
        address: str | None,
        family_id: str | None = None,
        family_expires_at: dt.datetime | None = None,
        authorization_code_id: str | None = None,
        audit_kind: str = "token_issued",
    ) -> dict[str, Any]:
        if client.owner_active is not None and user_id == client.application.owner_id:
            user_active = client.owner_active  # read with the client, in this unit of work
        else:
            user_active = active_user(session, user_id) is not None
        if not user_active:
            raise InvalidGrantError("The user or the user's client is blocked.")
        issued = TokenRepository(session).issue(
            application_id=client.application.id,
            user_id=user_id,
            grant_type=grant_type,
            access_lifetime=self.settings.access_token_lifetime,
            refresh_lifetime=self.settings.refresh_token_lifetime if refresh else None,
            family_id=family_id,
            family_expires_at=family_expires_at,
            authorization_code_id=authorization_code_id,
            scope=SCOPE,
        )
        record(
            session,
            audit_kind,
            user_id=user_id,
            app_id=client.client_id,
            address=address,
            detail=f"grant={grant_type} token_id={issued.token.id} family={issued.token.family_id}",
        )
        return _token_body(issued)

    def rotate_refresh_token(
        self, client: AppClient, presented: TokenRecord, address: str | None
    ) -> dict[str, Any]:
        now = utcnow()
        grace = dt.timedelta(seconds=self.settings.refresh_grace_period)
        with self._writing() as session:
            repo = TokenRepository(session)
            token = session.get(Token, presented.row.id)
            if (
                token is None
                or token.revoked_at is not None
                or token.refresh_expires_at is None
                or token.refresh_expires_at <= now
            ):
                raise InvalidGrantError("The refresh token is expired or revoked.")
            reused = False
            if not repo.mark_refresh_rotated(token.id, now):
                # Rotated before (or by a concurrent refresh that just committed).
                rotated_at, revoked_at = repo.rotation_state(token.id)
                if revoked_at is not None or rotated_at is None:
                    raise InvalidGrantError("The refresh token is expired or revoked.")
                reused = now > rotated_at + grace
            if not reused:
                return self._issue(
                    session,
                    client,
                    token.user_id,
                    "refresh_token",
                    refresh=True,
                    address=address,
                    family_id=token.family_id,
                    family_expires_at=token.refresh_expires_at,
                    authorization_code_id=token.authorization_code_id,
                    audit_kind="token_refreshed",
                )
            # Reuse after the grace period: someone holds a copy. The family's revocation is
            # committed with this unit of work; the refusal is raised after it.
            revoked = repo.revoke_family(token.family_id)
            record(
                session,
                "refresh_reuse",
                user_id=token.user_id,
                app_id=client.client_id,
                address=address,
                detail=f"family={token.family_id} revoked_tokens={revoked}",
            )
        raise InvalidGrantError("The refresh token was already used; its family is revoked.")

    def find_token(self, value: str, hint: str | None) -> TokenRecord | None:
        kinds = ["access_token", "refresh_token"]
        if hint == "refresh_token":
            kinds.reverse()
        with self._reading() as session:
            repo = TokenRepository(session)
            for kind in kinds:
                row = (
                    repo.by_access_token(value)
                    if kind == "access_token"
                    else repo.by_refresh_token(value)
                )
                if row is None:
                    continue
                application = session.get(Application, row.application_id)
                user = session.get(User, row.user_id)
                return TokenRecord(
                    row,
                    kind,
                    app_id=application.app_id if application else "",
                    user=user,
                    user_active=active_user(session, row.user_id) is not None,
                    grace_period=self.settings.refresh_grace_period,
                )
        return None

    def revoke(self, token: TokenRecord, address: str | None) -> None:
        with self._writing() as session:
            repo = TokenRepository(session)
            if token.kind == "refresh_token":
                revoked = repo.revoke_family(token.row.family_id)
            else:
                revoked = repo.revoke_token(token.row.id)
            record(
                session,
                "token_revoked",
                user_id=token.row.user_id,
                app_id=token.app_id,
                address=address,
                detail=f"{token.kind} token_id={token.row.id} revoked_tokens={revoked}",
            )


@dataclass(frozen=True)
class ConsentNeeded:
    """The user has not authorized this app yet: show the consent page."""

    application: Application
    owner_login: str
    redirect_uri: str
    params: list[tuple[str, str]]

    @property
    def level_label(self) -> str:
        return ACCESS_LEVEL_LABELS.get(AccessLevel(self.application.access_level), "")


@dataclass(frozen=True)
class AuthorizationRefused:
    """A request that must not be redirected anywhere (unknown client, unregistered URI)."""

    message: str


AuthorizationOutcome = HttpResponse | ConsentNeeded | AuthorizationRefused


class OAuthServer:
    """What the HTTP edge calls: token, revoke, introspect, metadata and the authorize steps."""

    def __init__(
        self, database: Database, settings: Settings, authenticator: Authenticator
    ) -> None:
        self.database = database
        self.settings = settings
        self.authenticator = authenticator
        self.core = CallgateAuthorizationServer(database, settings, authenticator)

    def _body_request(self, http: HttpRequest) -> CallgateRequest:
        # Token, revocation and introspection parameters count only in the body: a secret in
        # the query string would end up in logs.
        return CallgateRequest(replace(http, query=()), self.settings.issuer)

    def token(self, http: HttpRequest) -> HttpResponse:
        request = self._body_request(http)
        response: HttpResponse = self.core.in_one_unit(
            lambda: self.core.create_token_response(request)
        )
        return response

    def revoke(self, http: HttpRequest) -> HttpResponse:
        request = self._body_request(http)
        response: HttpResponse = self.core.in_one_unit(
            lambda: self.core.create_endpoint_response("revocation", request)
        )
        return response

    def introspect(self, http: HttpRequest) -> HttpResponse:
        response: HttpResponse = self.core.create_endpoint_response(
            "introspection", self._body_request(http)
        )
        return response

    def metadata(self) -> dict[str, Any]:
        """RFC 8414 authorization server metadata."""
        issuer = self.settings.issuer
        grant_types = sorted(set().union(*GRANT_TYPES.values()))
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/oauth/authorize",
            "token_endpoint": f"{issuer}/oauth/token",
            "revocation_endpoint": f"{issuer}/oauth/revoke",
            "introspection_endpoint": f"{issuer}/oauth/introspect",
            "scopes_supported": [SCOPE],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": grant_types,
            "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
            "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
            "introspection_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
        }

    # -- the authorization endpoint ---------------------------------------------------------

    def authorize(self, http: HttpRequest, user: User) -> AuthorizationOutcome:
        """``GET /oauth/authorize`` by a logged-in user."""
        request = CallgateRequest(http, self.settings.issuer)
        try:
            grant = self.core.get_consent_grant(request, end_user=user)
        except OAuth2Error as error:
            return self._authorization_error(request, error)
        application: Application = grant.request.client.application
        with self.database.read() as session:
            apps = ApplicationRepository(session)
            consented = apps.consent(user.id, application.id) is not None
            owner = session.get(User, application.owner_id)
        if consented:
            response: HttpResponse = self.core.create_authorization_response(
                request, grant_user=user, grant=grant
            )
            return response
        params = [
            (name, value)
            for name in AUTHORIZATION_PARAMS
            for value in request.payload.datalist.get(name, [])
        ]
        return ConsentNeeded(application, owner.login if owner else "", grant.redirect_uri, params)

    def decide(self, http: HttpRequest, user: User, allow: bool) -> AuthorizationOutcome:
        """The consent form's answer (``POST /oauth/authorize``); the request is re-validated."""
        request = CallgateRequest(http, self.settings.issuer)
        try:
            grant = self.core.get_consent_grant(request, end_user=user)
        except OAuth2Error as error:
            return self._authorization_error(request, error)
        if allow:
            self._remember_consent(user, grant.request.client, http.address)
        response: HttpResponse = self.core.create_authorization_response(
            request, grant_user=user if allow else None, grant=grant
        )
        return response

    def _remember_consent(self, user: User, client: AppClient, address: str) -> None:
        with self.database.write() as session:
            apps = ApplicationRepository(session)
            if apps.consent(user.id, client.application.id) is not None:
                return
            try:
                # A savepoint, so that a concurrent identical consent loses quietly.
                with session.begin_nested():
                    apps.add_consent(user.id, client.application.id)
            except IntegrityError:
                return
            record(
                session, "consent_given", user_id=user.id, app_id=client.client_id, address=address
            )

    def _authorization_error(
        self, request: CallgateRequest, error: OAuth2Error
    ) -> HttpResponse | AuthorizationRefused:
        """Redirect the error only to a URI registered by a public app; else an error page."""
        redirect_uri = error.redirect_uri
        client_id = request.payload.client_id
        client = self.core.query_client(client_id) if client_id else None
        if (
            redirect_uri
            and client is not None
            and client.check_response_type("code")
            and client.check_redirect_uri(redirect_uri)
        ):
            error.state = request.payload.state
            response: HttpResponse = self.core.handle_error_response(request, error)
            self.core.issuer_parameter.add_issuer_parameter(self.core, response)
            return response
        return AuthorizationRefused(error.description or error.error)
