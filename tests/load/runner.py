"""Running SIPp as a child process from asyncio tests and benchmarks, and reading its results.

:func:`run_sipp` starts ``sipp`` with the given arguments in a working folder, always with
``-nostdin``, a global ``-timeout`` and ``-trace_stat``/``-trace_err`` (files land in the folder),
waits for it with a deadline, and kills it by PID when the deadline passes. Every SIPp gets its
own free ports on 127.0.0.1 (:func:`local_args`): left to itself it listens on fixed ports
(media 6000 and 6002, control 8888 on 0.0.0.0) and a second SIPp running at the same time, as in
a parallel test run, fails with "Unable to bind audio RTP socket". :class:`SippResult`
holds the exit status (0: every call succeeded), the final counters of the statistics file
(successful and failed calls) and the error log, for assertion messages.

:class:`SippServer` is a SIPp UAS (``-sf uas.xml``) running in the background for the length of a
test: started before the calls, stopped by PID afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import shutil
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

SIPP = shutil.which("sipp")
AVAILABLE = SIPP is not None
SCENARIOS = Path(__file__).resolve().parent / "sipp"


@dataclass
class SippResult:
    status: int
    successful: int
    failed: int
    stats: dict[str, str] = field(default_factory=dict)
    errors: str = ""
    output: str = ""

    def explain(self) -> str:
        """What went wrong, short, for an assertion message."""
        return (
            f"sipp exit {self.status}, {self.successful} ok, {self.failed} failed\n"
            f"errors:\n{self.errors[-3000:]}\noutput:\n{self.output[-2000:]}"
        )


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_udp_block(size: int = 4) -> int:
    """An even UDP port ``p`` on 127.0.0.1 with ``p`` … ``p + size - 1`` free (a few tries)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            base = int(sock.getsockname()[1]) & ~1
        if base + size <= 65535 and all(_udp_free(base + i) for i in range(size)):
            return base
    raise RuntimeError(f"no block of {size} free UDP ports found")


def local_args() -> list[str]:
    """Where a SIPp listens: SIP on a free port, media on a free block, control on a free port,
    all on 127.0.0.1 (SIPp binds media at [media_port] and [media_port]+2)."""
    sip, media, control = free_udp_block(1), free_udp_block(4), free_udp_block(1)
    return [
        "-i", "127.0.0.1", "-p", str(sip),
        "-mi", "127.0.0.1", "-mp", str(media),
        "-ci", "127.0.0.1", "-cp", str(control),
    ]  # fmt: skip


def write_users(
    path: Path, users: list[tuple[str, str, str]], media_ports: list[int] | None = None
) -> Path:
    """An injection file, one line per user (or per media port, users taken in turn):
    ``name;[authentication username=… password=…];username;media port``.

    SIPp expands keywords found in field values, so the credentials travel in field 1. The port
    is what the caller's SDP offers (uac_auth.xml); without ``media_ports`` it is 9 (discard):
    no RTP is sent in a signalling-only run.
    """
    ports = media_ports or [9] * len(users)
    lines = ["SEQUENTIAL"]
    for index, port in enumerate(ports):
        name, username, password = users[index % len(users)]
        credentials = f"[authentication username={username} password={password}]"
        lines.append(f"{name};{credentials};{username};{port}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _last_stats(folder: Path) -> dict[str, str]:
    """The last row of the ``-trace_stat`` file (``;``-separated, cumulative counters)."""
    files = sorted(folder.glob("*_.csv"), key=lambda p: p.stat().st_mtime)
    if not files:
        return {}
    with files[-1].open(newline="") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1], strict=False))


def creation_rate(folder: Path, calls: int) -> float | None:
    """Calls per second SIPp actually started, from its ``-trace_stat`` rows: ``calls`` over the
    time until the last one was created (interpolated between the one-second rows). SIPp lowers
    its rate below ``-r`` when the ``-l`` limit of open calls is reached: a slow peer shows here.
    """
    files = sorted(folder.glob("*_.csv"), key=lambda p: p.stat().st_mtime)
    if not files:
        return None
    with files[-1].open(newline="") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    if len(rows) < 2:
        return None
    header = rows[0]
    try:
        at, created = header.index("CurrentTime"), header.index("OutgoingCall(C)")
        start = float(rows[1][header.index("StartTime")].split("\t")[-1])
        points = [(float(r[at].split("\t")[-1]) - start, int(r[created])) for r in rows[1:]]
    except (ValueError, IndexError):
        return None
    previous = (0.0, 0)
    for when, count in points:
        if count >= calls:
            span = count - previous[1]
            fraction = (calls - previous[1]) / span if span else 1.0
            elapsed = previous[0] + fraction * (when - previous[0])
            return calls / elapsed if elapsed > 0 else None
        previous = (when, count)
    return None


def _count(stats: dict[str, str], name: str) -> int:
    value = stats.get(name, "").strip()
    return int(value) if value.isdigit() else -1


async def _stop(process: asyncio.subprocess.Process, grace: float = 5.0) -> None:
    """End ``process`` (our child, by PID): SIGTERM, then SIGKILL after ``grace`` seconds."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        await asyncio.wait_for(process.wait(), grace)


def _errors(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(folder.glob("*_errors.log")))


def _folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def run_sipp(args: list[str], folder: Path, *, limit: float = 60.0) -> SippResult:
    """Run ``sipp ARGS`` in ``folder``; SIPp ends itself after ``limit`` s, we kill it later."""
    assert SIPP is not None, "sipp is not installed (Debian package sip-tester)"
    _folder(folder)
    command = [
        SIPP,
        *args,
        *local_args(),
        "-nostdin",
        "-timeout",
        f"{int(limit)}s",
        "-timeout_error",
        "-trace_stat",
        "-fd",
        "1",
        "-trace_err",
    ]
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=folder,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), limit + 15)
    finally:
        await _stop(process)
    stats = _last_stats(folder)
    errors = _errors(folder)
    assert process.returncode is not None
    return SippResult(
        process.returncode,
        _count(stats, "SuccessfulCall(C)"),
        _count(stats, "FailedCall(C)"),
        stats,
        errors,
        out.decode(errors="replace"),
    )


class SippServer:
    """A background SIPp UAS on 127.0.0.1 (its own free ports), stopped by PID.

    Give it ``-m N`` in ``extra`` and it ends by itself after N calls; :meth:`stop` waits for that
    up to ``grace`` seconds, then ends it.
    """

    def __init__(self, scenario: Path, folder: Path, extra: list[str] | None = None) -> None:
        self.scenario = scenario
        self.folder = folder
        self.extra = extra or []
        self.process: asyncio.subprocess.Process | None = None
        self.port = 0
        self.media_port = 0
        self._output: BinaryIO | None = None

    async def start(self) -> None:
        assert SIPP is not None, "sipp is not installed (Debian package sip-tester)"
        _folder(self.folder)
        self._output = (self.folder / "sipp-output.txt").open("wb")  # its final screen
        where = local_args()
        self.port = int(where[where.index("-p") + 1])
        self.media_port = int(where[where.index("-mp") + 1])
        self.process = await asyncio.create_subprocess_exec(
            SIPP,
            "-sf",
            str(self.scenario),
            *where,
            "-nostdin",
            "-timeout",
            "300s",
            "-trace_stat",
            "-fd",
            "1",
            "-trace_err",
            *self.extra,
            cwd=self.folder,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._output,
            stderr=asyncio.subprocess.STDOUT,
        )
        # wait until SIPp has bound its SIP port (it does so before reading any message)
        for _ in range(100):
            if self.process.returncode is not None:
                raise RuntimeError(f"sipp uas exited with {self.process.returncode}")
            if not _udp_free(self.port):
                return
            await asyncio.sleep(0.05)
        await _stop(self.process)
        raise RuntimeError("sipp uas did not bind its port within 5 s")

    async def stop(self, grace: float = 0.0) -> SippResult:
        """Wait up to ``grace`` s for SIPp to end by itself, then end it; its results."""
        if self.process is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), grace)
            await _stop(self.process)
        stats = _last_stats(self.folder)
        errors = _errors(self.folder)
        status = self.process.returncode if self.process is not None else None
        output = ""
        if self._output is not None:
            self._output.close()
            output = _tail(self.folder / "sipp-output.txt")
        return SippResult(
            status if status is not None else -1,
            _count(stats, "SuccessfulCall(C)"),
            _count(stats, "FailedCall(C)"),
            stats,
            errors,
            output,
        )


def _tail(path: Path, size: int = 4000) -> str:
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - size))
        return handle.read().decode(errors="replace")
