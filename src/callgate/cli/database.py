"""``callgate db upgrade``: run the Alembic migrations to the newest schema."""

from __future__ import annotations

import argparse
import time
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from callgate.cli.context import Context, Outcome, masked_url
from callgate.common.db import make_engine
from callgate.migrations import alembic_config, upgrade


def current_revision(url: str) -> str | None:
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def db_upgrade(args: argparse.Namespace, ctx: Context) -> Outcome:
    settings = ctx.settings
    # The SQLite file lives in the data folder, and recordings will too.
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.effective_database_url
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    before = current_revision(url)
    shown = masked_url(url)
    if before == head:
        ctx.progress(f"Database {shown} is already at revision {head}.")
    else:
        ctx.progress(
            f"Upgrading database {shown} from revision {before or '(empty)'} to {head} ..."
        )
    started = time.monotonic()
    upgrade(url)
    after = current_revision(url)
    seconds = round(time.monotonic() - started, 2)
    data: dict[str, Any] = {
        "database": shown,
        "data_dir": str(settings.data_dir.resolve()),
        "from_revision": before,
        "revision": after,
        "seconds": seconds,
    }
    return Outcome(data, [f"Database is at revision {after} ({seconds} s)."])


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    database = commands.add_parser("db", help="database schema")
    db_commands = database.add_subparsers(dest="command_name", metavar="COMMAND", required=True)
    parser = db_commands.add_parser(
        "upgrade", parents=[common], help="migrate the configured database to the newest schema"
    )
    parser.set_defaults(handler=db_upgrade)
