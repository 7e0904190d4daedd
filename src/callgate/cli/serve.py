"""``callgate serve``: HTTP (uvicorn on uvloop and httptools) and, unless told otherwise, the PBX.

uvloop is not a matter of taste: with the plain asyncio loop, uvicorn leaves TCP_NODELAY off on
accepted sockets, so every small response waits for the client's delayed ACK (about 40 ms; see
docs/benchmarks.md).

Only one process may bind the SIP port, so the PBX runs in exactly one place:

* one worker (the default): one ``asyncio`` run on uvloop holds ``uvicorn.Server``, the PBX, the
  webhook delivery worker and the control channel; the API reaches the engine directly;
* several workers: each worker is a separate process that builds the application from the
  environment (an import-string factory) and reaches the engine over the control channel
  (:class:`~callgate.pbx.channel.RemoteCallControl`); the engine runs in one child
  ``callgate sip`` process, stopped with serve; if it dies, serve stops and exits 1;
* ``CALLGATE_SIP_IN_PROCESS=false``: no PBX here; ``callgate sip`` runs elsewhere with the same
  database and secret key, and every worker uses the control channel.

Stop order on SIGINT/SIGTERM: HTTP stops accepting and finishes its requests, the PBX hangs up
its calls, the event sink flushes, delivery stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import logging
import logging.config
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Generator
from typing import Any, TextIO

import uvicorn
import uvloop
from uvicorn.config import LOGGING_CONFIG

from callgate.cli.context import Context, Outcome, masked_url, served_url
from callgate.cli.sip import SipSide, StartupFailed, start_sip_side
from callgate.common.errors import DomainError, InvalidInput
from callgate.composition import build_services, create_app
from callgate.config import Settings
from callgate.pbx.channel import RemoteCallControl
from callgate.pbx.service import freeze_startup_heap

APP_FACTORY = "callgate.composition:app_from_environment"
GRACEFUL_SHUTDOWN_SECONDS = 10
# uvicorn's default of 5 s was once missed by a worker importing the app on a loaded machine.
WORKER_HEALTHCHECK_SECONDS = 30
SIP_CHILD_START_SECONDS = 30
SIP_CHILD_STOP_SECONDS = 20

log = logging.getLogger("callgate")


class SipProcessDied(DomainError):
    """The child ``callgate sip`` of a multi-worker serve exited while serving."""

    status = "sip_process_died"


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


class _Server(uvicorn.Server):
    """``uvicorn.Server`` inside our own event loop: serve installs the signal handlers.

    uvicorn's own handlers re-raise the signal once it has stopped, which would kill the
    process before the PBX is stopped.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _uvicorn_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "loop": "uvloop",
        "http": "httptools",
        "access_log": not args.no_access_log,
        "log_config": logging_config(args.log_level.upper()),
        "server_header": False,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
    }


async def _serve_one(
    args: argparse.Namespace, settings: Settings, host: str, port: int, out: TextIO | None
) -> None:
    """One worker: HTTP and (with ``sip_in_process``) the PBX on this event loop."""
    services = build_services(settings)
    side: SipSide | None = None
    server: _Server | None = None
    loop = asyncio.get_running_loop()

    stop_requested = False

    def on_signal(signum: int) -> None:
        nonlocal stop_requested
        stop_requested = True  # while starting: serve() then stops at once
        if server is not None:
            if server.should_exit and signum == signal.SIGINT:
                server.force_exit = True  # a second Ctrl-C
            server.should_exit = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        if settings.sip_in_process:
            side = await start_sip_side(settings, services.database)
            services.call_control = side.control
        else:
            services.call_control = RemoteCallControl(settings)
        config = uvicorn.Config(
            create_app(settings, services), host=host, port=port, **_uvicorn_options(args)
        )
        server = _Server(config)
        server.should_exit = stop_requested
        if side is not None:  # the PBX runs here: as in callgate sip, once all is built
            freeze_startup_heap()
        _announce(
            out,
            settings,
            host,
            port,
            1,
            side.sip_address if side else None,
            side.control_address if side else None,
        )
        try:
            await server.serve()
        except SystemExit as exc:  # uvicorn exits on a port in use or a failed app startup
            raise StartupFailed(
                f"Cannot serve HTTP on {host}:{port}; the reason is in the log above."
            ) from exc
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if side is not None:
            await side.stop()
        services.database.dispose()


class _SipChild:
    """The child ``callgate sip`` process of a multi-worker serve."""

    def __init__(self, process: subprocess.Popen[str], sip: str, control: str | None) -> None:
        self.process = process
        self.sip = sip
        self.control = control
        self.died = False
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="sip-child", daemon=True)
        self._watcher.start()

    @classmethod
    def start(cls, args: argparse.Namespace) -> _SipChild:
        command = [
            sys.executable,
            "-m",
            "callgate",
            "sip",
            "--json",
            "--log-level",
            args.log_level,
            "--parent-pid",
            str(os.getpid()),
        ]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603
        try:
            startup = _read_startup(process)
        except BaseException:
            _terminate(process)
            raise
        return cls(process, str(startup["sip"]), startup.get("control"))

    def _watch(self) -> None:
        code = self.process.wait()
        if self._stopping.is_set():
            return
        self.died = True
        log.error(
            "The SIP process [%d] exited with code %s; stopping Callgate.", self.process.pid, code
        )
        os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's supervisor stops the workers

    def stop(self) -> None:
        self._stopping.set()
        _terminate(self.process)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _read_startup(process: subprocess.Popen[str]) -> dict[str, Any]:
    """The child's one startup JSON line, within SIP_CHILD_START_SECONDS."""
    assert process.stdout is not None
    deadline = time.monotonic() + SIP_CHILD_START_SECONDS
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            line = process.stdout.readline()
            if line:
                try:
                    value = json.loads(line)
                except ValueError:
                    value = None
                if isinstance(value, dict) and "sip" in value:
                    return value
                raise StartupFailed("The SIP process printed something else than its address.")
            if process.poll() is not None or not line:
                break
        elif process.poll() is not None:
            break
    code = process.poll()
    if code is None:
        raise StartupFailed(f"The SIP process did not start within {SIP_CHILD_START_SECONDS} s.")
    raise StartupFailed(f"The SIP process failed to start (exit code {code}); see its log above.")


def _terminate(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=SIP_CHILD_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            log.error("The SIP process [%d] did not stop; killing it.", process.pid)
            process.kill()
            process.wait(timeout=SIP_CHILD_STOP_SECONDS)


def _serve_many(
    args: argparse.Namespace,
    settings: Settings,
    host: str,
    port: int,
    workers: int,
    out: TextIO | None,
) -> None:
    """Several workers under uvicorn's supervisor; the PBX (if here) in a child process."""
    child: _SipChild | None = None
    if settings.sip_in_process:
        child = _SipChild.start(args)
        if child.control is not None:
            # workers must reach the port the child really bound (CALLGATE_SIP_CONTROL_PORT=0)
            os.environ["CALLGATE_SIP_CONTROL_PORT"] = child.control.rsplit(":", 1)[1]
    try:
        _announce(
            out,
            settings,
            host,
            port,
            workers,
            child.sip if child else None,
            child.control if child else None,
        )
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
            **_uvicorn_options(args),
        )
    finally:
        if child is not None:
            child.stop()
    if child is not None and child.died:
        raise SipProcessDied("The SIP process died; Callgate stopped.")


def _announce(
    out: TextIO | None,
    settings: Settings,
    host: str,
    port: int,
    workers: int,
    sip: str | None,
    control: str | None,
) -> None:
    public_url = served_url(settings, host, port)
    info: dict[str, Any] = {
        "http": f"http://{host}:{port}",
        "public_url": public_url,
        "login_url": f"{public_url}/login",
        "api_url": f"{public_url}/api/ver1.0/",
        "workers": workers,
        "database": masked_url(settings.effective_database_url),
        "mode": settings.mode,
        "sip": sip,
        "control": control,
    }
    if out is not None:
        # serve does not return until stopped: its one JSON object is the startup summary.
        print(json.dumps(info), file=out, flush=True)
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
    if sip is not None:
        log.info("SIP on %s (control channel %s)", sip, control or "none")
    else:
        log.info(
            "SIP: not in this process (CALLGATE_SIP_IN_PROCESS=false); call control goes to "
            "callgate sip on 127.0.0.1:%d",
            settings.sip_control_port,
        )


def serve(args: argparse.Namespace, ctx: Context) -> Outcome | None:
    # Settings are validated here, once, so that production refusals stop us before any worker.
    settings = ctx.settings
    host = args.host or settings.http_host
    port = args.port if args.port is not None else settings.http_port
    workers = args.workers if args.workers is not None else settings.http_workers
    if workers < 1:
        raise InvalidInput("--workers must be at least 1.", {"workers": str(workers)})
    if not 0 <= port <= 65535:
        raise InvalidInput("--port must be 0 to 65535.", {"port": str(port)})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    public_url = served_url(settings, host, port)
    _export_for_workers(host, port, public_url if public_url != settings.issuer else None)
    # the settings the application sees: with the served URL as issuer (read back, like workers)
    settings = Settings()
    out = ctx.stdout if ctx.json_output else None

    logging.config.dictConfig(logging_config(args.log_level.upper()))
    if workers == 1:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_serve_one(args, settings, host, port, out))
    else:
        _serve_many(args, settings, host, port, workers, out)
    log.info("Callgate stopped.")
    return None


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "serve",
        parents=[common],
        help="serve HTTP (pages, OAuth2, API) with uvicorn, and the PBX (SIP)",
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
