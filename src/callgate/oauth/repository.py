"""Storage of tokens and codes: issuing, looking up by hash, revoking.

Every value handed to a client is hashed before it touches the database.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from callgate.apps.models import Application
from callgate.common.clock import utcnow
from callgate.common.security import hash_secret, new_secret
from callgate.identity.models import User
from callgate.oauth.models import AuthorizationCode, Token


@dataclass(frozen=True, slots=True)
class IssuedRow:
    """The stored row of a freshly issued token (what was inserted, without the raw values)."""

    id: str
    family_id: str
    application_id: int
    user_id: int
    grant_type: str
    scope: str
    issued_at: dt.datetime
    access_expires_at: dt.datetime
    refresh_expires_at: dt.datetime | None
    authorization_code_id: str | None


@dataclass(frozen=True)
class IssuedToken:
    """The raw values of a freshly issued token; they exist only until sent to the client."""

    token: IssuedRow
    access_token: str
    refresh_token: str | None
    expires_in: int


_INSERT_TOKEN = insert(Token.__table__)  # type: ignore[arg-type]


class HasId(Protocol):
    @property
    def id(self) -> int: ...


def new_id() -> str:
    return secrets.token_hex(16)


class TokenRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def issue(
        self,
        *,
        grant_type: str,
        access_lifetime: int,
        refresh_lifetime: int | None,
        application: HasId | None = None,
        user: HasId | None = None,
        application_id: int | None = None,
        user_id: int | None = None,
        family_id: str | None = None,
        family_expires_at: dt.datetime | None = None,
        authorization_code_id: str | None = None,
        scope: str = "all",
    ) -> IssuedToken:
        """Create a token row. ``refresh_lifetime`` None means no refresh token.

        The application and user are given as objects or as ids. A rotated refresh token keeps
        its family's absolute expiry (``family_expires_at``).
        """
        app_pk = application.id if application is not None else application_id
        user_pk = user.id if user is not None else user_id
        if app_pk is None or user_pk is None:
            raise ValueError("issue() needs the application and the user (or their ids)")
        now = utcnow()
        access_token = new_secret()
        refresh_token = new_secret() if refresh_lifetime is not None else None
        refresh_expires_at: dt.datetime | None = None
        if refresh_lifetime is not None:
            refresh_expires_at = family_expires_at or now + dt.timedelta(seconds=refresh_lifetime)
        row = IssuedRow(
            id=new_id(),
            family_id=family_id or new_id(),
            application_id=app_pk,
            user_id=user_pk,
            grant_type=grant_type,
            scope=scope,
            issued_at=now,
            access_expires_at=now + dt.timedelta(seconds=access_lifetime),
            refresh_expires_at=refresh_expires_at,
            authorization_code_id=authorization_code_id,
        )
        # A Core INSERT on the unit of work's connection: the ORM's flush machinery would cost
        # more than the statement itself on the token endpoint.
        self.session.connection().execute(
            _INSERT_TOKEN,
            {
                "access_token_hash": hash_secret(access_token),
                "refresh_token_hash": hash_secret(refresh_token) if refresh_token else None,
                "refresh_rotated_at": None,
                "revoked_at": None,
                **{name: getattr(row, name) for name in IssuedRow.__slots__},
            },
        )
        return IssuedToken(row, access_token, refresh_token, access_lifetime)

    def by_access_token(self, access_token: str) -> Token | None:
        return self.session.scalar(
            select(Token).where(Token.access_token_hash == hash_secret(access_token))
        )

    def by_refresh_token(self, refresh_token: str) -> Token | None:
        return self.session.scalar(
            select(Token).where(Token.refresh_token_hash == hash_secret(refresh_token))
        )

    def mark_refresh_rotated(self, token_id: str, at: dt.datetime) -> bool:
        """Mark the refresh token of ``token_id`` as rotated, atomically.

        True for the one caller that rotated it; False when it was already rotated or revoked
        (a concurrent refresh won, or the token is dead). The conditional UPDATE is what makes
        two parallel refreshes safe on PostgreSQL, where the loser waits for the winner's commit
        and then matches no row.
        """
        result = self.session.execute(
            update(Token)
            .where(
                Token.id == token_id,
                Token.refresh_rotated_at.is_(None),
                Token.revoked_at.is_(None),
            )
            .values(refresh_rotated_at=at)
        )
        return int(result.rowcount) == 1  # type: ignore[attr-defined]

    def rotation_state(self, token_id: str) -> tuple[dt.datetime | None, dt.datetime | None]:
        """The committed ``(refresh_rotated_at, revoked_at)`` of a token, bypassing the
        session's identity map (which may hold values read before a concurrent rotation)."""
        row = self.session.execute(
            select(Token.refresh_rotated_at, Token.revoked_at).where(Token.id == token_id)
        ).one()
        return row[0], row[1]

    def revoke_token(self, token_id: str) -> int:
        return self._revoke_where(Token.id == token_id)

    def _revoke_where(self, *conditions: object) -> int:
        result = self.session.execute(
            update(Token)
            .where(Token.revoked_at.is_(None), *conditions)  # type: ignore[arg-type]
            .values(revoked_at=utcnow())
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def revoke_family(self, family_id: str) -> int:
        return self._revoke_where(Token.family_id == family_id)

    def revoke_for_application(self, application_id: int) -> int:
        return self._revoke_where(Token.application_id == application_id)

    def revoke_for_user(self, user_id: int) -> int:
        return self._revoke_where(Token.user_id == user_id)

    def revoke_for_user_and_application(self, user_id: int, application_id: int) -> int:
        return self._revoke_where(Token.user_id == user_id, Token.application_id == application_id)

    def revoke_for_client(self, client_id: int) -> int:
        users = select(User.id).where(User.client_id == client_id).scalar_subquery()
        return self._revoke_where(Token.user_id.in_(users))

    def revoke_for_authorization_code(self, code_id: str) -> int:
        return self._revoke_where(Token.authorization_code_id == code_id)


class AuthorizationCodeRepository:
    """Authorization codes, stored as hashes and consumed atomically."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        *,
        code: str,
        application: Application,
        user_id: int,
        redirect_uri: str,
        scope: str,
        code_challenge: str | None,
        code_challenge_method: str | None,
        lifetime: int,
    ) -> AuthorizationCode:
        now = utcnow()
        row = AuthorizationCode(
            id=new_id(),
            code_hash=hash_secret(code),
            application_id=application.id,
            user_id=user_id,
            redirect_uri=redirect_uri,
            scope=scope,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=lifetime),
        )
        self.session.add(row)
        self.session.flush()
        return row

    def by_code(self, code: str, application_id: int) -> AuthorizationCode | None:
        return self.session.scalar(
            select(AuthorizationCode).where(
                AuthorizationCode.code_hash == hash_secret(code),
                AuthorizationCode.application_id == application_id,
            )
        )

    def consume(self, code_id: str, at: dt.datetime) -> bool:
        """Mark the code used; True only for the first caller (single use, race-free)."""
        result = self.session.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.id == code_id, AuthorizationCode.used_at.is_(None))
            .values(used_at=at)
        )
        return int(result.rowcount) == 1  # type: ignore[attr-defined]
