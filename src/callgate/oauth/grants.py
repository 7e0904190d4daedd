"""The four grants of Callgate, each bound to one application type, on Authlib's grant classes.

Authlib's defaults are overridden where they are weak: every grant declares the client
authentication methods explicitly; tokens are issued by the server's storage in one unit of
work (never logged); codes are consumed with a conditional UPDATE instead of query-then-delete;
refresh tokens rotate with reuse detection; PKCE accepts ``S256`` only and is enforced at the
authorize step when the application requires it.

Storage calls go to ``self.server`` (:class:`callgate.oauth.server.CallgateAuthorizationServer`).
"""

from __future__ import annotations

import hmac
from typing import Any

from authlib.oauth2.rfc6749 import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    UnauthorizedClientError,
    grants,
)
from authlib.oauth2.rfc7636 import CodeChallenge, create_s256_code_challenge

from callgate.common.errors import TooManyAttempts
from callgate.common.security import new_secret
from callgate.oauth.adapters import CLIENT_AUTH_METHODS, AppClient, CodeRecord, TokenRecord

TokenResponse = tuple[int, dict[str, Any], list[tuple[str, str]]]


class TooManyAttemptsError(InvalidGrantError):  # type: ignore[misc]
    """The password grant while the login or address is locked out.

    The body keeps the RFC 6749 code ``invalid_grant`` so that standard clients classify it,
    and the status 429 with ``Retry-After`` tells them when to try again.
    """

    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many failed attempts; try again later.")
        self.retry_after = retry_after

    def get_headers(self) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = super().get_headers()
        headers.append(("Retry-After", str(self.retry_after)))
        return headers


def _check_grant_type(client: AppClient, grant_type: str) -> None:
    if not client.check_grant_type(grant_type):
        raise UnauthorizedClientError(
            f"Applications of type {client.application.type} may not use grant_type={grant_type}."
        )


def _s256_matches(verifier: str, challenge: str) -> bool:
    return hmac.compare_digest(create_s256_code_challenge(verifier), challenge)


class S256CodeChallenge(CodeChallenge):  # type: ignore[misc]
    """PKCE with ``S256`` only (``plain`` is refused), required when the app says so."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": _s256_matches}

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        challenge, method = data.get("code_challenge"), data.get("code_challenge_method")
        if not challenge and not method:
            if grant.request.client.application.require_pkce:
                raise InvalidRequestError(
                    "This application requires PKCE: send code_challenge with "
                    "code_challenge_method=S256."
                )
            return
        # RFC 7636 makes an absent method mean "plain", which is never accepted here.
        if method != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is supported.")
        super().validate_code_challenge(grant, redirect_uri)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    """``public`` applications: authorization code with the user's consent."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def validate_authorization_request(self) -> str:
        # Authlib answers an app that may not use this flow with unauthorized_client sent to
        # its redirect URI; Callgate shows an error page instead and redirects nowhere.
        client_id = self.request.payload.client_id
        client = self.server.query_client(client_id) if client_id else None
        if client is None or not client.check_response_type("code"):
            raise InvalidClientError(
                description="There is no public application with this client_id."
            )
        redirect_uri: str = super().validate_authorization_request()
        return redirect_uri

    def generate_authorization_code(self) -> str:
        return new_secret()

    def save_authorization_code(self, code: str, request: Any) -> None:
        self.server.save_authorization_code(code, request)

    def query_authorization_code(self, code: str, client: AppClient) -> CodeRecord | None:
        record: CodeRecord | None = self.server.find_authorization_code(
            code, client, self.request.address
        )
        return record

    def delete_authorization_code(self, authorization_code: CodeRecord) -> None:
        raise NotImplementedError("codes are consumed atomically in create_token_response")

    def authenticate_user(self, authorization_code: CodeRecord) -> None:
        raise NotImplementedError("the user is checked inside the exchange's unit of work")

    def create_token_response(self) -> TokenResponse:
        body = self.server.exchange_code(
            self.request.client, self.request.authorization_code, self.request.address
        )
        return 200, body, self.TOKEN_RESPONSE_HEADER


class ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    """``trusted`` applications: the token acts as the application's owner."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        _check_grant_type(client, self.GRANT_TYPE)
        self.request.client = client
        self.validate_requested_scope()

    def create_token_response(self) -> TokenResponse:
        client: AppClient = self.request.client
        body = self.server.issue_for_user(
            client,
            client.application.owner_id,
            self.GRANT_TYPE,
            refresh=False,
            address=self.request.address,
        )
        return 200, body, self.TOKEN_RESPONSE_HEADER


class PasswordGrant(grants.ResourceOwnerPasswordCredentialsGrant):  # type: ignore[misc]
    """``password_credentials`` applications: the user's login and password.

    Passwords are checked by the shared :class:`Authenticator`, whose lockout is counted in
    the database. Unknown logins and wrong passwords get the same answer.
    """

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        _check_grant_type(client, self.GRANT_TYPE)
        self.request.client = client
        # Scope first: a malformed request should not count as a failed password.
        self.validate_requested_scope()
        username = self.request.form.get("username")
        password = self.request.form.get("password")
        if not username or password is None:
            raise InvalidRequestError("Send username and password.")
        # The password check keeps its own units of work (failures must be counted even when
        # this request fails later), and argon2 needs no open transaction.
        self.server.release_unit()
        try:
            user = self.server.authenticator.authenticate(username, password, self.request.address)
        except TooManyAttempts as exc:
            raise TooManyAttemptsError(exc.retry_after) from None
        if user is None:
            raise InvalidGrantError("Wrong username or password.")
        self.request.user = user

    def create_token_response(self) -> TokenResponse:
        body = self.server.issue_for_user(
            self.request.client,
            self.request.user.id,
            self.GRANT_TYPE,
            refresh=True,
            address=self.request.address,
        )
        return 200, body, self.TOKEN_RESPONSE_HEADER


class RefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    """Refresh with rotation on every use and reuse detection (SPEC §3)."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        _check_grant_type(client, self.GRANT_TYPE)
        self.request.client = client
        self.validate_requested_scope()
        value = self.request.form.get("refresh_token")
        if not value:
            raise InvalidRequestError("Missing 'refresh_token' in request.")
        record: TokenRecord | None = self.server.find_token(value, "refresh_token")
        if record is None or record.kind != "refresh_token" or not record.check_client(client):
            raise InvalidGrantError("The refresh token is not valid.")
        self.request.refresh_token = record

    def create_token_response(self) -> TokenResponse:
        body = self.server.rotate_refresh_token(
            self.request.client, self.request.refresh_token, self.request.address
        )
        return 200, body, self.TOKEN_RESPONSE_HEADER
