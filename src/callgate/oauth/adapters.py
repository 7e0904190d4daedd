"""What Authlib's protocol core sees of Callgate: requests, responses, clients, codes, tokens.

The HTTP edge turns a framework request into a plain :class:`HttpRequest`; the core answers with
a plain :class:`HttpResponse`. Applications, authorization codes and tokens are wrapped in the
small adapters Authlib's grants and endpoints call (``ClientMixin``, ``AuthorizationCodeMixin``,
``TokenMixin``). Nothing here imports a web framework.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    ClientMixin,
    OAuth2Payload,
    OAuth2Request,
    TokenMixin,
)
from sqlalchemy.orm import Session

from callgate.apps.models import Application, AppType
from callgate.common.clock import utcnow
from callgate.common.security import secret_matches
from callgate.identity.models import Status, User
from callgate.identity.repository import IdentityRepository
from callgate.oauth.models import AuthorizationCode, Token

SCOPE = "all"
# Declared once and used by every grant and endpoint: Authlib's defaults differ per grant.
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

# The application type decides the grant (SPEC §2); anything else is unauthorized_client.
GRANT_TYPES: dict[str, frozenset[str]] = {
    AppType.PUBLIC: frozenset({"authorization_code", "refresh_token"}),
    AppType.TRUSTED: frozenset({"client_credentials"}),
    AppType.PASSWORD_CREDENTIALS: frozenset({"password", "refresh_token"}),
}


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP request as the protocol core needs it; ``headers`` keys are lower case."""

    method: str
    path: str
    query: Sequence[tuple[str, str]] = ()
    form: Sequence[tuple[str, str]] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    address: str = "unknown"


@dataclass
class HttpResponse:
    """An answer of the protocol core: a JSON body (dict) or an empty redirect."""

    status: int
    body: dict[str, Any] | str
    headers: list[tuple[str, str]]

    @property
    def location(self) -> str | None:
        for name, value in self.headers:
            if name.lower() == "location":
                return value
        return None

    @location.setter
    def location(self, value: str) -> None:
        # Authlib's RFC 9207 extension rewrites the Location to add ``iss``.
        self.headers = [(n, v) for n, v in self.headers if n.lower() != "location"]
        self.headers.append(("Location", value))


class _Headers(dict[str, str]):
    """Header lookup ignoring case, as Authlib reads ``headers.get("Authorization")``."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        super().__init__((k.lower(), v) for k, v in headers.items())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in pairs:
            self._datalist[key].append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class CallgateRequest(OAuth2Request):  # type: ignore[misc]
    """Authlib's request built from an :class:`HttpRequest`.

    The URI is the public one (issuer + path): behind a TLS-terminating proxy the server sees
    http, and Authlib's transport check must judge what clients use. Settings refuse a
    non-https public URL in production.
    """

    def __init__(self, http: HttpRequest, issuer: str) -> None:
        super().__init__(http.method, issuer + http.path, headers=_Headers(http.headers))
        self.address = http.address
        self.payload = _Payload([*http.query, *http.form])
        self._args = {k: v for k, v in reversed(http.query)}
        self._form_data = {k: v for k, v in reversed(http.form)}

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form_data


@dataclass(frozen=True, slots=True)
class AppRecord:
    """The columns of an application the token endpoint needs, read with SQLAlchemy Core.

    Building an ORM :class:`Application` costs more than the query that reads it; the token and
    revocation endpoints authenticate clients with this instead (pages keep the ORM object).
    """

    id: int
    app_id: str
    secret_hash: str
    name: str
    redirect_uris: str
    type: str
    access_level: str
    require_pkce: bool
    status: str
    owner_id: int

    @property
    def redirect_uri_list(self) -> list[str]:
        return self.redirect_uris.split()


class AppClient(ClientMixin):  # type: ignore[misc]
    """An :class:`Application` (or its :class:`AppRecord`) as Authlib's client."""

    def __init__(self, application: Application | AppRecord, owner_active: bool | None = None):
        self.application = application
        # Whether the owner and its client are active, when read with the application in the
        # request's unit of work (client_credentials tokens act as the owner); None: not read.
        self.owner_active = owner_active

    def __repr__(self) -> str:
        return f"<AppClient {self.application.app_id}>"

    @property
    def client_id(self) -> str:
        return self.application.app_id

    def get_client_id(self) -> str:
        return self.application.app_id

    def get_default_redirect_uri(self) -> str | None:
        # A missing redirect_uri is acceptable only when there is no doubt which one is meant.
        uris = self.application.redirect_uri_list
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        if not scope or set(scope.split()) == {SCOPE}:
            return SCOPE
        return None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.application.redirect_uri_list

    def check_client_secret(self, client_secret: str) -> bool:
        return secret_matches(client_secret, self.application.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in CLIENT_AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and self.application.type == AppType.PUBLIC

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in GRANT_TYPES.get(self.application.type, frozenset())


class CodeRecord(AuthorizationCodeMixin):  # type: ignore[misc]
    """A stored authorization code (its hash) as Authlib's authorization code."""

    def __init__(self, row: AuthorizationCode) -> None:
        self.row = row
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope


class TokenRecord(TokenMixin):  # type: ignore[misc]
    """A token row found by one of its two values; ``kind`` says which one was presented."""

    def __init__(
        self,
        row: Token,
        kind: str,
        *,
        app_id: str,
        user: User | None,
        user_active: bool,
        grace_period: int,
    ) -> None:
        self.row = row
        self.kind = kind
        self.app_id = app_id
        self.user = user
        self.user_active = user_active
        self.grace = dt.timedelta(seconds=grace_period)

    def check_client(self, client: AppClient) -> bool:
        return self.row.application_id == client.application.id

    def get_scope(self) -> str:
        return self.row.scope

    def expires_at(self) -> dt.datetime | None:
        if self.kind == "refresh_token":
            return self.row.refresh_expires_at
        return self.row.access_expires_at

    def get_expires_in(self) -> int:
        expires = self.expires_at()
        return max(0, int((expires - utcnow()).total_seconds())) if expires else 0

    def is_expired(self) -> bool:
        expires = self.expires_at()
        return expires is None or expires <= utcnow()

    def is_revoked(self) -> bool:
        if self.row.revoked_at is not None or not self.user_active:
            return True
        rotated = self.row.refresh_rotated_at
        # A rotated refresh token still works during the grace period, and only then.
        return (
            self.kind == "refresh_token" and rotated is not None and utcnow() > rotated + self.grace
        )

    def get_user(self) -> User | None:
        return self.user


def active_user(session: Session, user_id: int) -> User | None:
    """The user, if both the user and their client are active (SPEC §1)."""
    repo = IdentityRepository(session)
    user = repo.user(user_id)
    if user is None or user.status != Status.ACTIVE:
        return None
    if user.client_id is not None:
        client = repo.client(user.client_id)
        if client is None or client.status != Status.ACTIVE:
            return None
    return user
