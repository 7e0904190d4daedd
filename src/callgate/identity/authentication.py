"""Password checks with lockout, shared by the login page and the OAuth2 password grant.

Failures are counted in the database, per login and per source address, so that the lockout
holds across worker processes. A locked-out login is refused even with the right password, and
unknown logins cost the same time and give the same answer as wrong passwords.
"""

from __future__ import annotations

import datetime as dt
import math

from sqlalchemy import delete, func, select

from callgate.audit.service import record
from callgate.common.clock import utcnow
from callgate.common.db import Database
from callgate.common.errors import TooManyAttempts
from callgate.common.security import Passwords
from callgate.config import Settings
from callgate.identity.models import User
from callgate.identity.repository import IdentityRepository
from callgate.oauth.models import AuthFailure


class Authenticator:
    def __init__(self, database: Database, settings: Settings, passwords: Passwords) -> None:
        self.database = database
        self.settings = settings
        self.passwords = passwords

    def _lockout_retry_after(self, login: str, address: str) -> int | None:
        window = dt.timedelta(seconds=self.settings.login_failure_window)
        since = utcnow() - window
        with self.database.read() as session:
            per_login = session.execute(
                select(func.count(), func.min(AuthFailure.created_at)).where(
                    AuthFailure.login == login, AuthFailure.created_at >= since
                )
            ).one()
            per_address = session.execute(
                select(func.count(), func.min(AuthFailure.created_at)).where(
                    AuthFailure.address == address, AuthFailure.created_at >= since
                )
            ).one()
        for (count, oldest), limit in (
            (per_login, self.settings.login_max_failures),
            (per_address, self.settings.login_max_failures_per_address),
        ):
            if count >= limit and oldest is not None:
                remaining = (oldest + window - utcnow()).total_seconds()
                return max(1, math.ceil(remaining))
        return None

    def authenticate(self, login: str, password: str, address: str) -> User | None:
        """The user whose password this is, or None.

        Raises :class:`TooManyAttempts` while the login or the address is locked out.
        """
        login = login.strip()[:150]
        retry_after = self._lockout_retry_after(login, address)
        if retry_after is not None:
            with self.database.write() as session:
                record(session, "login_locked_out", address=address, detail=f"login={login!r}")
            raise TooManyAttempts(
                "Too many failed attempts; try again later.", retry_after=retry_after
            )
        with self.database.read() as session:
            user = IdentityRepository(session).user_by_login(login)
        stored = user.password_hash if user is not None else None
        if not self.passwords.verify(password, stored) or user is None:
            with self.database.write() as session:
                session.add(AuthFailure(login=login, address=address))
                record(session, "login_failed", address=address, detail=f"login={login!r}")
            return None
        with self.database.write() as session:
            session.execute(delete(AuthFailure).where(AuthFailure.login == login))
            if self.passwords.needs_rehash(user.password_hash):
                fresh = IdentityRepository(session).user(user.id)
                if fresh is not None:
                    fresh.password_hash = self.passwords.hash(password)
        return user
