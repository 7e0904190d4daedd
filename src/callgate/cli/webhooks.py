"""``callgate webhooks deliver``: run only the webhook delivery worker until SIGTERM or SIGINT.

The SIP process runs the worker itself; this command is for operators who want delivery in a
process of its own (and for the durability tests, which kill it). One worker per deployment is
enough; a second one is safe (claims are leased) but gains nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from typing import Any

from sqlalchemy import select

from callgate.cli.context import Context, Outcome, masked_url
from callgate.common.db import Database
from callgate.events.delivery import start_delivery
from callgate.events.models import WebhookDelivery

log = logging.getLogger("callgate.webhooks")


async def _deliver_until_stopped(ctx: Context, database: Database) -> int:
    settings = ctx.settings
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    worker = await start_delivery(settings, database)
    ctx.progress(
        f"Delivering call events from {masked_url(settings.effective_database_url)} "
        f"(up to {settings.webhook_concurrency} requests at once); stop with Ctrl-C or SIGTERM."
    )
    try:
        await stop.wait()
    finally:
        await worker.stop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)
    return worker.attempts


def deliver(args: argparse.Namespace, ctx: Context) -> Outcome:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    database = Database(ctx.settings.effective_database_url)
    try:
        # Fail now, with the CLI's database message, rather than retry forever in the worker.
        with database.read_connection() as connection:
            connection.execute(select(WebhookDelivery.id).limit(1))
        attempts = asyncio.run(_deliver_until_stopped(ctx, database))
    finally:
        database.dispose()
    return Outcome({"attempts": attempts}, [f"Stopped after {attempts} delivery attempts."])


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("webhooks", help="webhook delivery of call events")
    sub = parser.add_subparsers(dest="webhooks_command", metavar="COMMAND", required=True)
    run = sub.add_parser(
        "deliver",
        parents=[common],
        help="run the delivery worker until SIGTERM/SIGINT (the SIP process runs one itself)",
    )
    run.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    run.set_defaults(handler=deliver)
