"""Fixtures of the configuration API tests: the API tests' client and tokens, reused."""

from __future__ import annotations

from tests.api.conftest import ActAs, act_as, http  # noqa: F401 - fixtures shared with tests/api

__all__ = ["ActAs"]
