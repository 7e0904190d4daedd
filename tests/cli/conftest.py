"""Fixtures of the CLI tests: ``callgate`` run in-process against the test database."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from callgate.cli.main import main
from callgate.services import Services


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def error(self) -> Any:
        return json.loads(self.err)


CallgateRunner = Callable[..., Run]


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> dict[str, str]:
    """The environment of the command: only our database and data folder, development mode."""
    for name in list(os.environ):
        if name.startswith("CALLGATE_"):
            monkeypatch.delenv(name)
    env = {"CALLGATE_DATABASE_URL": database_url, "CALLGATE_DATA_DIR": str(tmp_path / "data")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def callgate(cli_env: dict[str, str], services: Services) -> CallgateRunner:
    """``callgate(*argv, stdin="")`` runs the command line in-process and returns a :class:`Run`.

    It shares the database of ``services``, whose teardown empties every table after the test.
    """

    def run(*argv: str, stdin: str = "") -> Run:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), stdin=io.StringIO(stdin), stdout=out, stderr=err)
        return Run(code, out.getvalue(), err.getvalue())

    return run
