"""Fixtures of the cache-semantics tests: those of the API tests, reused."""

from __future__ import annotations

from tests.api.conftest import http

__all__ = ["http"]
