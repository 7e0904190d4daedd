"""The access policy (placeholder; being written)."""

from __future__ import annotations

from callgate.common.db import Database
from callgate.config import Settings


class AccessPolicy:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
