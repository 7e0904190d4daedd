"""Fixtures of the whole-API tests: the live server's OpenAPI document and tokens by role."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import http
from tests.api.helpers import API

__all__ = ["http"]


@pytest.fixture
def document(http: httpx.Client) -> dict[str, Any]:
    """The OpenAPI document as the live server publishes it (no token needed)."""
    response = http.get(f"{API}/openapi.json")
    assert response.status_code == 200, response.text
    published: dict[str, Any] = response.json()
    return published
