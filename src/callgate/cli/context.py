"""What every command gets: settings and services built on demand, and the command's outcome.

A command returns an :class:`Outcome`: ``data`` is the one JSON object printed with ``--json``,
``lines`` what a person reads otherwise. Progress lines go to stderr in ``--json`` mode so that
stdout stays a single JSON object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, TextIO

from sqlalchemy.engine import make_url

from callgate.common.errors import NotFound
from callgate.composition import build_services
from callgate.config import Settings
from callgate.identity.models import Status, User, UserAccess, UserLevel
from callgate.identity.repository import IdentityRepository
from callgate.services import Services

OPERATOR_LOGIN = "(operator)"


@dataclass
class Outcome:
    data: dict[str, Any]
    lines: list[str] = field(default_factory=list)


class Context:
    """Settings and services for one command run; services are built only when a command asks."""

    def __init__(self, *, json_output: bool, stdin: TextIO, stdout: TextIO, stderr: TextIO):
        self.json_output = json_output
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self._settings: Settings | None = None
        self._services: Services | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings()
        return self._settings

    @property
    def services(self) -> Services:
        if self._services is None:
            self._services = build_services(self.settings)
        return self._services

    def progress(self, message: str) -> None:
        """A line for the operator while something long runs."""
        stream = self.stderr if self.json_output else self.stdout
        print(message, file=stream, flush=True)

    def print_json(self, data: dict[str, Any]) -> None:
        print(json.dumps(data, default=str), file=self.stdout, flush=True)

    def close(self) -> None:
        if self._services is not None:
            self._services.database.dispose()
            self._services = None

    def user_by_login(self, login: str) -> User:
        with self.services.database.read() as session:
            user = IdentityRepository(session).user_by_login(login)
        if user is None:
            raise NotFound(f"There is no user {login}.")
        return user


def operator() -> User:
    """The actor of operator commands run without ``--as``.

    Whoever runs the CLI has the database in hand, so the CLI acts as the system administrator.
    The object is never saved; audit rows it causes carry no user id, which marks the operator.
    """
    return User(
        login=OPERATOR_LOGIN, level=UserLevel.ADMIN, access=UserAccess.FULL, status=Status.ACTIVE
    )


def served_url(settings: Settings, host: str, port: int) -> str:
    """The public base URL: ``CALLGATE_PUBLIC_URL``, or in development the address served.

    In development the issuer follows the port actually served, so that OAuth metadata and the
    printed links are right on ``--port 9000`` without also setting ``CALLGATE_PUBLIC_URL``.
    """
    if "public_url" in settings.model_fields_set or settings.mode != "development":
        return settings.issuer
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    return f"http://{shown_host}:{port}"


def masked_url(url: str) -> str:
    """A database URL fit for printing: the password is replaced by ``***``."""
    return make_url(url).render_as_string(hide_password=True)


def print_outcome(ctx: Context, outcome: Outcome) -> None:
    if ctx.json_output:
        ctx.print_json(outcome.data)
        return
    for line in outcome.lines:
        print(line, file=ctx.stdout)
    ctx.stdout.flush()
