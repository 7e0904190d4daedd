"""The ``callgate`` entry point: argument parsing, dispatch, output and exit codes.

Exit codes: 0 success, 1 a refused or failed operation (the message on stderr), 2 a usage error.
Every command takes ``--json`` and then prints exactly one JSON object on stdout (errors go to
stderr as ``{"status", "message"}``). argparse is enough for this and costs no dependency.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from pydantic import ValidationError
from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError

from callgate.cli import apps, database, demo, identity, serve, sip, webhooks
from callgate.cli.context import Context, print_outcome
from callgate.common.errors import DomainError, InvalidInput

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callgate",
        description="Callgate: a self-hosted PBX with a developer platform. Settings come from "
        "CALLGATE_* environment variables (see docs/configuration.md).",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    # On each command too, so that `callgate app list --json` works; SUPPRESS keeps a --json
    # given before the command from being reset by the command's own default.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    database.add_parsers(commands, common)
    serve.add_parsers(commands, common)
    sip.add_parsers(commands, common)
    demo.add_parsers(commands, common)
    identity.add_parsers(commands, common)
    apps.add_parsers(commands, common)
    webhooks.add_parsers(commands, common)
    return parser


def _settings_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["loc"]:
            message = f"CALLGATE_{str(error['loc'][0]).upper()}: {message}"
        parts.append(message)
    return "Invalid settings: " + "; ".join(parts)


def _database_message(exc: SQLAlchemyError) -> str:
    # Only the driver's first line: the full text can carry statement parameters (hashes).
    orig = getattr(exc, "orig", None)
    first = str(orig).strip().splitlines()[0] if orig is not None and str(orig).strip() else ""
    message = f"Database error: {first or type(exc).__name__}."
    if isinstance(exc, OperationalError | ProgrammingError):
        message += " Is the database reachable and migrated (callgate db upgrade)?"
    return message


def _fail(ctx: Context, status: str, message: str, extra: dict[str, Any] | None = None) -> int:
    if ctx.json_output:
        body: dict[str, Any] = {"status": status, "message": message, **(extra or {})}
        print(json.dumps(body), file=ctx.stderr, flush=True)
    else:
        print(f"callgate: {message}", file=ctx.stderr, flush=True)
    return EXIT_FAILED


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # argparse exits 2 on usage errors and 0 after --help; return it so main() composes.
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    ctx = Context(
        json_output=bool(args.json),
        stdin=stdin or sys.stdin,
        stdout=stdout or sys.stdout,
        stderr=stderr or sys.stderr,
    )
    try:
        outcome = args.handler(args, ctx)
        if outcome is not None:
            print_outcome(ctx, outcome)
        return EXIT_OK
    except InvalidInput as exc:
        return _fail(ctx, exc.status, exc.message, {"fields": exc.fields} if exc.fields else None)
    except DomainError as exc:
        return _fail(ctx, exc.status, exc.message)
    except ValidationError as exc:
        return _fail(ctx, "invalid_settings", _settings_message(exc))
    except SQLAlchemyError as exc:
        return _fail(ctx, "database_error", _database_message(exc))
    except KeyboardInterrupt:
        return 130
    finally:
        ctx.close()


if __name__ == "__main__":
    raise SystemExit(main())
