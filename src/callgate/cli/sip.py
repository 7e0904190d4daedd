"""``callgate sip``: the PBX process — SIP endpoint, webhook delivery and the control channel.

:func:`start_sip_side` is what runs the telephony half of Callgate, in this command and inside
``callgate serve`` (one worker). Start order: the event sink, the PBX (raising events into the
sink), webhook delivery, the control channel. Stop order: the control channel stops taking
requests, the PBX hangs up its calls, the sink flushes their events, delivery stops.

With several HTTP workers ``callgate serve`` runs this command as its child with the hidden
``--parent-pid``: the child then ignores SIGINT (a Ctrl-C reaches the whole process group, and
the parent decides the order), stops on SIGTERM, and asks Linux for a SIGTERM when the parent
dies, so a killed ``serve`` leaves no PBX behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import logging.config
import os
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

import uvloop

from callgate.calls.live import CallControl
from callgate.cli.context import Context, Outcome
from callgate.common.db import Database
from callgate.common.errors import DomainError, InvalidInput
from callgate.config import Settings
from callgate.events.delivery import RunningDelivery, start_delivery
from callgate.events.sink import OutboxSink
from callgate.pbx.channel import ControlServer, start_control_server
from callgate.pbx.service import RunningPbx, freeze_startup_heap, start_pbx

log = logging.getLogger("callgate")
_PR_SET_PDEATHSIG = 1


class StartupFailed(DomainError):
    """A socket could not be bound, or a part of the PBX did not start."""

    status = "startup_failed"


@dataclass
class SipSide:
    """The running telephony half: PBX, event sink, delivery, control channel."""

    pbx: RunningPbx
    control: CallControl | None
    control_server: ControlServer | None = None
    sink: OutboxSink | None = None
    delivery: RunningDelivery | None = None
    stopped: bool = field(default=False, init=False)

    @property
    def sip_address(self) -> str:
        host, port = self.pbx.address
        return f"udp+tcp {host}:{port}"

    @property
    def control_address(self) -> str | None:
        if self.control_server is None:
            return None
        host, port = self.control_server.address
        return f"{host}:{port}"

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        steps: list[tuple[str, Any]] = [
            ("control channel", self.control_server),
            ("PBX", self.pbx),
            ("event sink", self.sink),
            ("webhook delivery", self.delivery),
        ]
        for name, part in steps:
            if part is None:
                continue
            try:
                await asyncio.wait_for(part.stop(), 15)
            except Exception:  # one part failing to stop must not keep the others running
                log.exception("stopping the %s failed", name)


async def start_sip_side(
    settings: Settings,
    database: Database,
    *,
    host: str | None = None,
    port: int | None = None,
    control_port: int | None = None,
) -> SipSide:
    """Start the PBX with event delivery and the control channel (module doc: the order)."""
    sink = OutboxSink(database, settings)
    pbx: RunningPbx | None = None
    side: SipSide | None = None
    try:
        await sink.start()
        try:
            pbx = await start_pbx(settings, database, host=host, port=port, events=sink)
        except OSError as exc:
            where = f"{host or settings.sip_host}:{settings.sip_port if port is None else port}"
            raise StartupFailed(f"Cannot listen for SIP on {where}: {exc.strerror}.") from exc
        control = pbx.control
        side = SipSide(pbx, control, sink=sink)
        side.delivery = await start_delivery(settings, database)
        if control is not None:
            try:
                side.control_server = await start_control_server(
                    control, settings, port=control_port
                )
            except OSError as exc:
                bound = settings.sip_control_port if control_port is None else control_port
                raise StartupFailed(
                    f"Cannot listen for the control channel on 127.0.0.1:{bound}: "
                    f"{exc.strerror}. Set CALLGATE_SIP_CONTROL_PORT to a free port."
                ) from exc
        return side
    except BaseException:
        if side is not None:
            await side.stop()
        else:
            with contextlib.suppress(Exception):
                if pbx is not None:
                    await pbx.stop()
            with contextlib.suppress(Exception):
                await sink.stop()
        raise


def _die_with_parent(parent_pid: int) -> None:
    """Ask for SIGTERM when the parent dies (Linux); stop at once if it is already gone."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
    if os.getppid() != parent_pid:
        raise StartupFailed("The parent callgate serve exited before the SIP process started.")


async def _run(args: argparse.Namespace, ctx: Context) -> None:
    settings = ctx.settings
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if args.parent_pid is None:
        loop.add_signal_handler(signal.SIGINT, stop.set)
    else:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    side = await start_sip_side(settings, ctx.services.database, host=args.host, port=args.port)
    freeze_startup_heap()  # the process is built: keep it out of the collector's full passes
    try:
        info = {
            "sip": side.sip_address,
            "control": side.control_address,
            "pid": os.getpid(),
        }
        if ctx.json_output:
            ctx.print_json(info)
        log.info(
            "Callgate SIP process [%d]: SIP on %s, control channel on %s, webhook delivery on",
            os.getpid(),
            side.sip_address,
            side.control_address or "(none: the engine offers no call control)",
        )
        await stop.wait()
        log.info("Callgate SIP process stopping.")
    finally:
        await side.stop()


def sip(args: argparse.Namespace, ctx: Context) -> Outcome | None:
    from callgate.cli.serve import logging_config  # the same log format as serve

    if args.port is not None and not 0 <= args.port <= 65535:
        raise InvalidInput("--port must be 0 to 65535.", {"port": str(args.port)})
    logging.config.dictConfig(logging_config(args.log_level.upper()))
    if args.parent_pid is not None:
        _die_with_parent(args.parent_pid)
    ctx.settings.data_dir.mkdir(parents=True, exist_ok=True)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_run(args, ctx))
    log.info("Callgate SIP process stopped.")
    return None


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "sip",
        parents=[common],
        help="run the PBX alone: SIP, webhook delivery and the control channel for API workers",
    )
    parser.add_argument("--host", help="SIP address; default: CALLGATE_SIP_HOST (127.0.0.1)")
    parser.add_argument("--port", type=int, help="SIP port; default: CALLGATE_SIP_PORT (5060)")
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    # set by callgate serve for the child it supervises
    parser.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    parser.set_defaults(handler=sip)
