"""Fixtures of the whole-API tests: the live server's OpenAPI document and tokens by role.

The live-call routes need an engine behind ``services.call_control`` (else every answer is 503):
a fake one with no calls stands in, so that they answer as their own code does.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from callgate.services import Services
from tests.api.conftest import http
from tests.api.helpers import API
from tests.call_control_api.fake import FakeCallControl

__all__ = ["http"]


@pytest.fixture
def document(http: httpx.Client) -> dict[str, Any]:
    """The OpenAPI document as the live server publishes it (no token needed)."""
    response = http.get(f"{API}/openapi.json")
    assert response.status_code == 200, response.text
    published: dict[str, Any] = response.json()
    return published


@pytest.fixture
def services(services: Services) -> Services:
    services.call_control = FakeCallControl()
    return services
