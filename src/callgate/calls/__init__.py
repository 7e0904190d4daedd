"""Calls: the history of finished calls (live calls and call control come with the engine)."""
