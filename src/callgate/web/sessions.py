"""Browser sessions and CSRF tokens.

The cookie carries a random session id; the database keeps only its SHA-256. Every visitor who
sees a form gets a session (anonymous until login); logging in replaces the session id, so a
fixated id is worthless. The CSRF token is an HMAC of the session id under the server's secret
key: bound to the session, never stored, compared in constant time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy import delete

from callgate.common.clock import utcnow
from callgate.common.db import Database
from callgate.common.security import constant_time_equals, hash_secret, new_secret
from callgate.config import Settings
from callgate.identity.models import Status, User
from callgate.identity.repository import IdentityRepository
from callgate.web.models import WebSession

COOKIE_NAME = "callgate_session"


@dataclass(frozen=True)
class BrowserSession:
    raw_id: str
    user: User | None


class SessionService:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings

    def _expiry(self) -> dt.datetime:
        return utcnow() + dt.timedelta(seconds=self.settings.session_lifetime)

    def start(self, user: User | None = None) -> BrowserSession:
        raw_id = new_secret()
        with self.database.write() as session:
            session.add(
                WebSession(
                    id_hash=hash_secret(raw_id),
                    user_id=user.id if user else None,
                    expires_at=self._expiry(),
                )
            )
        return BrowserSession(raw_id, user)

    def load(self, raw_id: str | None) -> BrowserSession | None:
        """The live session for this cookie value, or None (unknown, expired, user blocked)."""
        if not raw_id:
            return None
        with self.database.read() as session:
            row = session.get(WebSession, hash_secret(raw_id))
            if row is None or row.expires_at <= utcnow():
                return None
            user = None
            if row.user_id is not None:
                repo = IdentityRepository(session)
                user = repo.user(row.user_id)
                if user is None or user.status != Status.ACTIVE:
                    return None
                if user.client_id is not None:
                    client = repo.client(user.client_id)
                    if client is None or client.status != Status.ACTIVE:
                        return None
        return BrowserSession(raw_id, user)

    def login(self, old_raw_id: str | None, user: User) -> BrowserSession:
        """Replace the (anonymous) session with a fresh one for ``user``."""
        self.end(old_raw_id)
        return self.start(user)

    def end(self, raw_id: str | None) -> None:
        if not raw_id:
            return
        with self.database.write() as session:
            session.execute(delete(WebSession).where(WebSession.id_hash == hash_secret(raw_id)))

    def end_all_for_user(self, user_id: int) -> None:
        with self.database.write() as session:
            session.execute(delete(WebSession).where(WebSession.user_id == user_id))

    def csrf_token(self, raw_id: str) -> str:
        return hmac.new(
            self.settings.secret_key.encode(), b"csrf:" + raw_id.encode(), hashlib.sha256
        ).hexdigest()

    def csrf_valid(self, raw_id: str | None, submitted: str | None) -> bool:
        if not raw_id or not submitted:
            return False
        return constant_time_equals(self.csrf_token(raw_id), submitted)
