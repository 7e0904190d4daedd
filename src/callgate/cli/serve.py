"""``callgate serve``: the HTTP server (uvicorn on uvloop and httptools, one or more workers).

uvloop is not a matter of taste: with the plain asyncio loop, uvicorn leaves TCP_NODELAY off on
accepted sockets, so every small response waits for the client's delayed ACK (about 40 ms; see
docs/benchmarks.md). Workers are separate processes that each build the application from the
environment through an import-string factory, which is what lets ``--workers N`` work at all.
"""

from __future__ import annotations

import argparse
import copy
import logging
import logging.config
import os
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from callgate.cli.context import Context, Outcome, masked_url, served_url
from callgate.common.errors import InvalidInput

APP_FACTORY = "callgate.composition:app_from_environment"
GRACEFUL_SHUTDOWN_SECONDS = 10

log = logging.getLogger("callgate")


def logging_config(level: str) -> dict[str, Any]:
    """uvicorn's logging setup, plus Callgate's own loggers (audit lines) on the same handler.

    Every log line, access lines included, goes to stderr: stdout carries command output only
    (the startup JSON object with ``--json``).
    """
    config = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    config["loggers"]["callgate"] = {"handlers": ["default"], "level": level, "propagate": False}
    config["loggers"]["uvicorn"]["level"] = level
    return config


def _export_for_workers(host: str, port: int, public_url: str | None) -> None:
    """Workers read their settings from the environment; pass the command-line choices on."""
    os.environ["CALLGATE_HTTP_HOST"] = host
    os.environ["CALLGATE_HTTP_PORT"] = str(port)
    if public_url is not None:
        os.environ["CALLGATE_PUBLIC_URL"] = public_url


def serve(args: argparse.Namespace, ctx: Context) -> Outcome | None:
    # Settings are validated here, once, so that production refusals stop us before any worker.
    settings = ctx.settings
    host = args.host or settings.http_host
    port = args.port if args.port is not None else settings.http_port
    workers = args.workers if args.workers is not None else settings.http_workers
    if workers < 1:
        raise InvalidInput("--workers must be at least 1.", {"workers": str(workers)})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    public_url = served_url(settings, host, port)
    derived_url = public_url if public_url != settings.issuer else None
    _export_for_workers(host, port, derived_url)

    logging.config.dictConfig(logging_config(args.log_level.upper()))
    info: dict[str, Any] = {
        "http": f"http://{host}:{port}",
        "public_url": public_url,
        "login_url": f"{public_url}/login",
        "api_url": f"{public_url}/api/ver1.0/",
        "workers": workers,
        "database": masked_url(settings.effective_database_url),
        "mode": settings.mode,
        "sip": None,
    }
    if ctx.json_output:
        # serve does not return until stopped: its one JSON object is the startup summary.
        ctx.print_json(info)
    log.info(
        "Callgate %s: HTTP on http://%s:%d with %d worker(s); log in at %s/login, API at "
        "%s/api/ver1.0/; database %s",
        settings.mode,
        host,
        port,
        workers,
        public_url,
        public_url,
        info["database"],
    )
    log.info("SIP: not started; the SIP registrar and calls come with the telephony issue.")
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=not args.no_access_log,
        log_config=logging_config(args.log_level.upper()),
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    log.info("Callgate stopped.")
    return None


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "serve", parents=[common], help="serve HTTP (pages, OAuth2, API) with uvicorn"
    )
    parser.add_argument("--host", help="default: CALLGATE_HTTP_HOST (127.0.0.1)")
    parser.add_argument("--port", type=int, help="default: CALLGATE_HTTP_PORT (8080)")
    parser.add_argument(
        "--workers", type=int, metavar="N", help="worker processes; default: CALLGATE_HTTP_WORKERS"
    )
    parser.add_argument(
        "--no-access-log", action="store_true", help="no log line per request (e.g. under load)"
    )
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    parser.set_defaults(handler=serve)
