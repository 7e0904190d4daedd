"""Token revocation (RFC 7009) and introspection (RFC 7662) on Authlib's endpoint classes.

A client sees and revokes only its own tokens: another client's token is treated exactly like
an unknown one (revocation answers 200 and does nothing, introspection says inactive), so the
endpoints reveal nothing about tokens the caller did not receive.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2 import rfc7009, rfc7662

from callgate.oauth.adapters import CLIENT_AUTH_METHODS, AppClient, CallgateRequest, TokenRecord


class RevocationEndpoint(rfc7009.RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def authenticate_token(self, request: CallgateRequest, client: AppClient) -> TokenRecord | None:
        self.check_params(request, client)
        record = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        if record is None or not record.check_client(client) or record.row.revoked_at:
            return None
        return record

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRecord | None:
        record: TokenRecord | None = self.server.find_token(token_string, token_type_hint)
        return record

    def revoke_token(self, token: TokenRecord, request: CallgateRequest) -> None:
        self.server.revoke(token, request.address)


class IntrospectionEndpoint(rfc7662.IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRecord | None:
        record: TokenRecord | None = self.server.find_token(token_string, token_type_hint)
        return record

    def check_permission(
        self, token: TokenRecord, client: AppClient, request: CallgateRequest
    ) -> bool:
        return token.check_client(client)

    def introspect_token(self, token: TokenRecord) -> dict[str, Any]:
        row = token.row
        expires = token.expires_at()
        return {
            "active": True,
            "client_id": token.app_id,
            "username": token.user.login if token.user else None,
            "sub": str(row.user_id),
            "scope": row.scope,
            "token_type": "Bearer" if token.kind == "access_token" else "refresh_token",
            "exp": int(expires.timestamp()) if expires else None,
            "iat": int(row.issued_at.timestamp()),
            "iss": self.server.settings.issuer,
        }
