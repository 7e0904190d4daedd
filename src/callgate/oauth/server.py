"""The OAuth2 authorization server core (placeholder; being written)."""

from __future__ import annotations

from callgate.common.db import Database
from callgate.config import Settings
from callgate.identity.authentication import Authenticator


class OAuthServer:
    def __init__(
        self, database: Database, settings: Settings, authenticator: Authenticator
    ) -> None:
        self.database = database
        self.settings = settings
        self.authenticator = authenticator
