"""The API fixtures (``http``, ``act_as``) for the deliveries API tests."""

from tests.api.conftest import act_as, http

__all__ = ["act_as", "http"]
