"""Fixtures of the live-call API tests: the API tests' client and tokens, and a fake engine
installed as ``services.call_control`` before the live server starts."""

from __future__ import annotations

import pytest

from callgate.services import Services
from tests.api.conftest import act_as, http  # noqa: F401 - fixtures reused as they are
from tests.call_control_api.fake import FakeCallControl


@pytest.fixture
def control() -> FakeCallControl:
    return FakeCallControl()


@pytest.fixture
def services(services: Services, control: FakeCallControl) -> Services:
    services.call_control = control
    return services
