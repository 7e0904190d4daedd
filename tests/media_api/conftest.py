"""Fixtures of the media API tests: the API tests' client and tokens, and test documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.conftest import ActAs, act_as, http  # noqa: F401 - fixtures shared with tests/api
from tests.media_api.media import make_pdf, make_tiff

__all__ = ["ActAs"]


@pytest.fixture(scope="session")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """``pdf`` (one page), ``pdf2`` and ``tiff`` (two pages), made once per test session."""
    folder: Path = tmp_path_factory.mktemp("documents")
    pdf2 = make_pdf(folder, pages=2)
    return {
        "pdf": make_pdf(folder, pages=1).read_bytes(),
        "pdf2": pdf2.read_bytes(),
        "tiff": make_tiff(pdf2).read_bytes(),
    }
