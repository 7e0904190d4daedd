"""Event handlers (placeholder; being written)."""

from __future__ import annotations

from callgate.common.db import Database


class EventHandlerService:
    def __init__(self, database: Database) -> None:
        self.database = database
