"""SIP call benchmark: SIPp callers through the Callgate PBX to a SIPp callee, on 127.0.0.1.

The PBX runs in its own process (``--role pbx``: ``start_pbx`` on uvloop, SQLite or the given
database), so its CPU time (``resource.getrusage``, every thread of the process: event loop,
account look-ups and call-history writes in worker threads) is measured apart from SIPp's.
Extension 101 calls 102; 102 is bound (as a registration would) to a SIPp UAS
(``tests/load/sipp/uas_late180.xml``: 200, then a late 180, ``transport=UDP`` in upper case,
RTP echoed with ``-rtp_echo``). The caller is ``tests/load/sipp/uac_auth.xml``: INVITE, 407,
INVITE with digest credentials, ACK, ``--hold`` ms of call, BYE.

Two parts, each printing figures and the ratio to the goal:

1. **Signalling.** Steps through ``--rates`` (calls/s); each step places ``rate x --step-seconds``
   calls. The PBX's CPU between the start and the end of a step, over the calls placed, is the
   CPU per call (goal ≤ 2 ms). The highest rate whose step ends with SIPp's exit status 0, no
   failed call and a history row for every call is the sustained rate; stepping stops at the
   first step that fails.
2. **Media.** ``--media-calls`` calls set up by SIPp and held open; this process sends 20 ms PCMU
   packets (50/s) from one UDP endpoint per call to the PBX's relay leg of that call; the relay
   forwards them to the UAS, which echoes them back through the relay. Over ``--media-seconds``
   it prints the relay's packets per second, the PBX's CPU per relayed packet, the share of one
   core, the calls one core would carry at that cost, and the round-trip loss (goal: ≥ 300
   media-anchored calls on one core with no loss).

Bounded: rates ≤ 1000/s, steps ≤ 60 s, ≤ 2000 media calls, every wait has a deadline, and every
process started here (PBX, SIPp) is stopped by its PID. Only 127.0.0.1 is used. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import resource
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.load.runner

from callgate.composition import build_services  # noqa: E402
from callgate.config import Settings  # noqa: E402
from callgate.migrations import upgrade  # noqa: E402
from tests.load.runner import (  # noqa: E402
    SCENARIOS,
    SippServer,
    creation_rate,
    run_sipp,
    write_users,
)

GOAL_CPU_PER_CALL_MS = 2.0
GOAL_MEDIA_CALLS_PER_CORE = 300
PASSWORD = "bench-sip-pass-1"
PACKET_INTERVAL = 0.020
PAYLOAD = bytes([0xFF]) * 160
SLOTS = 10
DEADLINE = 30.0
MAX_RATE = 1000
MAX_STEP_SECONDS = 60.0
MAX_MEDIA_CALLS = 2000

Address = tuple[str, int]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def loop_thread_cpu() -> float:
    """CPU seconds of this process's main thread (the event loop); the rest is worker threads
    (account look-ups, call-history writes, SQLAlchemy) — read from /proc."""
    fields = Path(f"/proc/self/task/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _settings(data_dir: Path, database_url: str) -> Settings:
    return Settings(data_dir=data_dir, database_url=database_url, sip_host="127.0.0.1")


# --------------------------------------------------------------------------- PBX process


class CountingSink:
    """Call events counted and dropped (webhook delivery is not part of this benchmark)."""

    def __init__(self) -> None:
        self.count = 0

    def emit(self, event: object) -> None:
        self.count += 1


def _find_relay(root: object) -> Any:
    """The PBX's MediaRelay, wherever the engine keeps it (two attribute levels deep)."""
    from callgate.media.relay import MediaRelay

    seen: list[object] = [root]
    for _ in range(3):
        found: list[object] = []
        for item in seen:
            for value in vars(item).values() if hasattr(item, "__dict__") else ():
                if isinstance(value, MediaRelay):
                    return value
                if hasattr(value, "__dict__") and type(value).__module__.startswith("callgate"):
                    found.append(value)
        seen = found
    return None


async def pbx_main(args: argparse.Namespace) -> None:
    import inspect

    from sqlalchemy import func, select

    from callgate.calls.models import CallRecord
    from callgate.pbx import service as pbx_service
    from callgate.pbx.registrar import Binding
    from callgate.pbx.service import start_pbx

    loop = asyncio.get_running_loop()
    settings = _settings(Path(args.data_dir), args.database_url)
    services = build_services(settings)
    sink = CountingSink()
    if "events" in inspect.signature(start_pbx).parameters:
        pbx = await start_pbx(settings, services.database, port=0, events=sink)
    else:
        pbx = await start_pbx(settings, services.database, port=0)
    # as callgate sip does after start-up (start_pbx did it itself before): comparable figures
    freeze = getattr(pbx_service, "freeze_startup_heap", None)
    if freeze is not None:
        freeze()
    pbx.service.registrar.bindings.put(
        args.callee,
        Binding(
            f"sip:{args.callee}@127.0.0.1:{args.uas_port};transport=UDP",
            ("127.0.0.1", args.uas_port),
            "udp",
            time.time() + 86400,
            "bench-binding",
            1,
        ),
    )
    relay = _find_relay(pbx)
    print(json.dumps({"address": list(pbx.address), "relay": relay is not None}), flush=True)

    def counters() -> dict[str, int]:
        out: dict[str, int] = {}
        if relay is not None:
            for leg in list(relay.legs.values()):
                for name, value in leg.counters.as_dict().items():
                    out[name] = out.get(name, 0) + value
        return out

    def history() -> int:
        with services.database.read_connection() as connection:
            return int(
                connection.execute(select(func.count()).select_from(CallRecord)).scalar_one()
            )

    mark = (cpu_seconds(), time.monotonic(), counters(), loop_thread_cpu())
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        command = json.loads(line)["cmd"]
        if command == "start":
            mark = (cpu_seconds(), time.monotonic(), counters(), loop_thread_cpu())
            reply: dict[str, Any] = {"ok": True}
        elif command == "stop":
            now = counters()
            reply = {
                "cpu": cpu_seconds() - mark[0],
                "loop_cpu": loop_thread_cpu() - mark[3],
                "wall": time.monotonic() - mark[1],
                "counters": {k: v - mark[2].get(k, 0) for k, v in now.items()},
            }
        elif command == "legs":
            legs = list(relay.legs.values()) if relay is not None else []
            reply = {
                "legs": [
                    [
                        leg.local[1],
                        leg.remote[1] if leg.remote else None,
                        leg.bridge is not None,
                        leg.counters.packets_in,
                        leg.counters.packets_out,
                    ]
                    for leg in legs
                ]
            }
        elif command == "history":
            reply = {"history": await asyncio.to_thread(history), "events": sink.count}
        else:
            break
        print(json.dumps(reply), flush=True)
    await pbx.stop()
    services.database.dispose()


# --------------------------------------------------------------------------- driver


class Pbx:
    """The PBX child process and its line protocol (one JSON object per line each way)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    def tell(self, cmd: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"cmd": cmd}) + "\n").encode())

    async def ask(self, cmd: str) -> dict[str, Any]:
        self.tell(cmd)
        return await self.read()

    async def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), DEADLINE)
        if not line:
            raise RuntimeError("the PBX process exited")
        result: dict[str, Any] = json.loads(line)
        return result

    async def quit(self) -> None:
        """Ask the PBX to stop; end it by PID if it has not within the deadline."""
        if self.process.returncode is None:
            with contextlib.suppress(ConnectionError):
                self.tell("quit")
        try:
            await asyncio.wait_for(self.process.wait(), DEADLINE)
        except TimeoutError:
            self.process.kill()
            await asyncio.wait_for(self.process.wait(), 5)


def uac(target: str, users: Path, calls: int, rate: int, limit: int, hold_ms: int) -> list[str]:
    """SIPp arguments: ``calls`` calls from uac_auth.xml to 102 at ``rate``/s."""
    return [
        target, "-sf", str(SCENARIOS / "uac_auth.xml"), "-inf", str(users), "-s", "102",
        "-m", str(calls), "-r", str(rate), "-l", str(limit), "-d", str(hold_ms),
    ]  # fmt: skip


def prepare(folder: Path, database_url: str | None) -> tuple[str, str, str, str]:
    """A migrated database with extensions 101 (caller) and 102 (callee) holding SIP passwords."""
    url = database_url or f"sqlite:///{folder / 'bench.sqlite3'}"
    upgrade(url)
    services = build_services(_settings(folder / "data", url))
    try:
        client = services.identity.create_client(f"Bench {os.getpid()}", f"9{os.getpid() % 10000}")
        ext101 = services.identity.create_extension(client.id, "101")
        ext102 = services.identity.create_extension(client.id, "102")
        services.phones.update_phone(ext101.id, password=PASSWORD)
        services.phones.update_phone(ext102.id, password=PASSWORD)
    finally:
        services.database.dispose()
    return url, client.prefix, f"{client.prefix}*101", f"{client.prefix}*102"


async def wait_history(pbx: Pbx, expected: int, limit: float = 30.0) -> int:
    deadline = time.monotonic() + limit
    count = int((await pbx.ask("history"))["history"])
    while count < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        count = int((await pbx.ask("history"))["history"])
    return count


async def signalling(
    pbx: Pbx, target: str, users: Path, args: argparse.Namespace, folder: Path
) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    history = int((await pbx.ask("history"))["history"])
    for rate in args.rates:
        calls = max(1, int(rate * args.step_seconds))
        await pbx.ask("start")
        began = time.monotonic()
        result = await run_sipp(
            uac(target, users, calls, rate, max(50, rate * 5), args.hold),
            folder / f"rate{rate}",
            limit=args.step_seconds + args.hold / 1000 + 40,
        )
        sipp_wall = time.monotonic() - began
        done = await wait_history(pbx, history + calls, 30.0 if result.status == 0 else 2.0)
        measured = await pbx.ask("stop")
        rows, history = done - history, done
        cpu_ms = 1000 * measured["cpu"] / calls
        achieved = creation_rate(folder / f"rate{rate}", calls) or 0.0
        # sustained: every call succeeded and recorded, at (nearly) the rate asked for
        ok = result.status == 0 and result.failed == 0 and rows == calls
        sustained = ok and achieved >= 0.9 * rate
        step = {
            "rate": rate,
            "achieved_rate": round(achieved, 1),
            "calls": calls,
            "successful": result.successful,
            "failed": result.failed,
            "sipp_status": result.status,
            "history_rows": rows,
            "pbx_cpu_s": round(measured["cpu"], 3),
            "sipp_wall_s": round(sipp_wall, 2),
            "pbx_cpu_ms_per_call": round(cpu_ms, 3),
            "event_loop_cpu_ms_per_call": round(1000 * measured["loop_cpu"] / calls, 3),
            "ratio_to_goal": round(cpu_ms / GOAL_CPU_PER_CALL_MS, 2),
            # over SIPp's run (the last calls' history rows may come a little later)
            "pbx_share_of_core": round(measured["cpu"] / sipp_wall, 3),
            "ok": ok,
            "sustained": sustained,
        }
        steps.append(step)
        print(
            f"signalling {rate:>4} calls/s (SIPp started {achieved:.0f}/s): "
            f"{result.successful}/{calls} ok, {result.failed} failed,"
            f" {rows} history rows; PBX {cpu_ms:.3f} ms CPU per call"
            f" ({step['ratio_to_goal']} x the {GOAL_CPU_PER_CALL_MS} ms goal;"
            f" {step['event_loop_cpu_ms_per_call']} ms on the event loop),"
            f" {100 * step['pbx_share_of_core']:.0f} % of a core",
            flush=True,
        )
        if not ok:
            print(f"first errors of SIPp:\n{result.errors[:2500]}", flush=True)
        if not sustained:
            break  # the PBX (or this machine) is saturated: higher rates tell nothing more
    return steps


class Endpoint(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received = 0
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.received += 1


async def media(
    pbx: Pbx, target: str, user: tuple[str, str, str], args: argparse.Namespace, folder: Path
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    calls = args.media_calls
    endpoints: list[Endpoint] = []
    for _ in range(calls):
        _, endpoint = await loop.create_datagram_endpoint(Endpoint, local_addr=("127.0.0.1", 0))
        endpoints.append(endpoint)
    ports = [e.transport.get_extra_info("sockname")[1] for e in endpoints]
    users = write_users(folder / "media-users.csv", [user], ports)
    setup_rate = min(100, calls)
    # Every call lasts long enough for all calls to be set up (bounded wait), the warm-up, the
    # measured window and the drain; SIPp then hangs them all up itself.
    setup_s = calls / setup_rate + 20.0
    hold_s = setup_s + 1.0 + args.media_seconds + 5.0
    first_call = time.monotonic()
    sipp = asyncio.create_task(
        run_sipp(
            uac(target, users, calls, setup_rate, calls, int(hold_s * 1000)),
            folder / "media",
            limit=hold_s + 60,
        )
    )
    try:
        # Wait until every call has its relay leg (the leg's SDP target is our endpoint's port).
        wanted = set(ports)
        target_of: dict[int, int] = {}
        deadline = first_call + setup_s
        while len(target_of) < calls and time.monotonic() < deadline and not sipp.done():
            for local, remote, bridged, *_ in (await pbx.ask("legs"))["legs"]:
                if remote in wanted and bridged:
                    target_of[remote] = local
            await asyncio.sleep(0.5)
        if len(target_of) < calls:
            if sipp.done():
                print(f"SIPp ended early:\n{sipp.result().explain()}", flush=True)
            raise RuntimeError(f"only {len(target_of)} of {calls} media calls were set up")
        await asyncio.sleep(1.0)  # the callee's 200 and our ACK for the last calls

        senders = [
            (e, ("127.0.0.1", target_of[port]), random.getrandbits(32))
            for e, port in zip(endpoints, ports, strict=True)
        ]
        slots = [senders[i::SLOTS] for i in range(SLOTS)]
        header = struct.Struct("!BBHII")
        sent = 0
        ticks = 0

        def tick(slot: int, due: float, end: float) -> None:
            nonlocal ticks, sent
            if due >= end or loop.time() >= end:
                return
            seq = ticks & 0xFFFF
            for endpoint, address, ssrc in slots[slot]:
                endpoint.transport.sendto(
                    header.pack(0x80, 0, seq, (ticks * 160) & 0xFFFFFFFF, ssrc) + PAYLOAD, address
                )
                sent += 1
            if slot == SLOTS - 1:
                ticks += 1
            loop.call_at(due + PACKET_INTERVAL, tick, slot, due + PACKET_INTERVAL, end)

        warmup = 1.0
        start = loop.time() + 0.05
        end = start + warmup + args.media_seconds
        for slot in range(SLOTS):
            due = start + slot * PACKET_INTERVAL / SLOTS
            loop.call_at(due, tick, slot, due, end)
        await asyncio.sleep(start + warmup - loop.time())
        await pbx.ask("start")
        await asyncio.sleep(max(0.0, end - loop.time()))
        measured = await pbx.ask("stop")
        received = sum(e.received for e in endpoints)
        drain = loop.time() + 3.0
        while loop.time() < drain:  # echoes still in flight
            await asyncio.sleep(0.3)
            now = sum(e.received for e in endpoints)
            if now == received:
                break
            received = now
        # Where packets went missing, from the relay's own counters (whole run, like ours):
        # caller legs are those whose SDP target is one of our endpoints.
        a_in = a_out = b_in = b_out = 0
        for _local, remote, _bridged, packets_in, packets_out in (await pbx.ask("legs"))["legs"]:
            if remote in wanted:
                a_in, a_out = a_in + packets_in, a_out + packets_out
            else:
                b_in, b_out = b_in + packets_in, b_out + packets_out
        path = {
            "sent_to_relay": sent,
            "relay_in_from_callers": a_in,
            "relay_out_to_callee": b_out,
            "relay_in_from_callee_echo": b_in,
            "relay_out_to_callers": a_out,
            "received_back": received,
        }
        if time.monotonic() > first_call + hold_s - 2.0:
            raise RuntimeError("the measured window overlapped the calls' end; figures void")
        result = await sipp  # SIPp hangs up every call and exits (bounded by its -timeout)
    finally:
        if not sipp.done():
            sipp.cancel()  # run_sipp stops SIPp by PID when cancelled
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sipp
        for e in endpoints:
            e.transport.close()

    counters = measured["counters"]
    relayed = counters.get("packets_out", 0)
    per_packet_us = 1e6 * measured["cpu"] / max(1, relayed)
    share = measured["cpu"] / measured["wall"]
    per_core = calls / share if share > 0 else float("inf")
    loss = 1.0 - received / sent if sent else 1.0
    # Lost at the PBX: never read from its sockets, or read and not forwarded, either way.
    # (The echo and our own receive side are outside the PBX: reported apart.)
    offered = sent + path["relay_in_from_callee_echo"]
    pbx_lost = (sent - path["relay_out_to_callee"]) + (
        path["relay_in_from_callee_echo"] - path["relay_out_to_callers"]
    )
    echo_lost = path["relay_out_to_callee"] - path["relay_in_from_callee_echo"]
    return {
        "media_calls": calls,
        "sipp_status": result.status,
        "calls_ok": result.successful,
        "calls_failed": result.failed,
        "seconds": round(measured["wall"], 2),
        "packets_sent": sent,
        "packets_echoed_back": received,
        "round_trip_loss": round(loss, 6),
        "pbx_loss": round(pbx_lost / offered, 6) if offered else 1.0,
        "lost_by_echo": echo_lost,
        "relayed_per_s": round(relayed / measured["wall"]),
        "nominal_relayed_per_s": calls * 2 * 50,
        "pbx_cpu_s": round(measured["cpu"], 3),
        "pbx_share_of_core": round(share, 3),
        "pbx_us_per_relayed_packet": round(per_packet_us, 2),
        "media_calls_per_core": round(per_core),
        "ratio_to_goal": round(per_core / GOAL_MEDIA_CALLS_PER_CORE, 2),
        "packet_path": path,
        "relay_counters": counters,
    }


async def drive(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    url, _prefix, caller, callee = prepare(folder, args.database_url)
    users = write_users(folder / "users.csv", [("101", caller, PASSWORD)])
    # the echo gets large socket buffers: its losses are not the PBX's
    echo = ["-rtp_echo", "-rtp_buffsize", "4194304"]
    uas = SippServer(SCENARIOS / "uas_late180.xml", folder / "uas", echo)
    await uas.start()
    command = [sys.executable, __file__, "--role", "pbx", "--database-url", url]
    command += ["--data-dir", str(folder / "data"), "--callee", callee]
    command += ["--uas-port", str(uas.port)]
    if args.profile:
        command += ["--profile", str(args.profile.resolve())]
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT
    )
    pbx = Pbx(process)
    try:
        hello = await pbx.read()
        target = "{}:{}".format(*hello["address"])
        steps = await signalling(pbx, target, users, args, folder)
        if uas.process is not None and uas.process.returncode is not None:
            died = await uas.stop()
            raise RuntimeError(f"the callee SIPp ended early:\n{died.explain()}")
        media_figures: dict[str, Any] | None = None
        if args.media_calls and hello["relay"]:
            media_figures = await media(pbx, target, ("101", caller, PASSWORD), args, folder)
        elif args.media_calls:
            print("media: skipped, the PBX has no media relay", flush=True)
        return {"steps": steps, "media": media_figures}
    finally:
        await pbx.quit()
        await uas.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rates", default="25,50,100,200,400", help="calls/s steps, comma-separated"
    )
    parser.add_argument("--step-seconds", type=float, default=10.0)
    parser.add_argument("--hold", type=int, default=1000, help="call length in ms")
    parser.add_argument("--media-calls", type=int, default=300, help="0: no media part")
    parser.add_argument("--media-seconds", type=float, default=10.0)
    parser.add_argument("--database-url", help="default: SQLite in a temporary folder")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--workdir", type=Path, help="keep SIPp's logs and the database here (default: temporary)"
    )
    parser.add_argument(
        "--profile", type=Path, help="cProfile the PBX's event loop thread into this file"
    )
    parser.add_argument("--role", choices=["run", "pbx"], default="run", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--callee", help=argparse.SUPPRESS)
    parser.add_argument("--uas-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.role == "pbx":
        import cProfile
        import logging

        # the PBX's warnings and errors (not its per-call INFO lines) go to stderr
        logging.basicConfig(level=logging.WARNING, format="pbx %(levelname)s %(name)s: %(message)s")

        from callgate.media.relay import run

        profile = cProfile.Profile() if args.profile else None
        if profile is not None:
            profile.enable()
        run(pbx_main(args))
        if profile is not None:
            profile.disable()
            profile.dump_stats(args.profile)
        return 0

    try:
        args.rates = [int(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        parser.error("--rates takes integers, e.g. 25,50,100")
    if not args.rates or not all(1 <= r <= MAX_RATE for r in args.rates):
        parser.error(f"--rates must lie within 1..{MAX_RATE}")
    if not 0 < args.step_seconds <= MAX_STEP_SECONDS or not 0 < args.media_seconds <= 60:
        parser.error(f"--step-seconds and --media-seconds must lie within 0..{MAX_STEP_SECONDS}")
    if not 0 <= args.media_calls <= MAX_MEDIA_CALLS or not 0 <= args.hold <= 60000:
        parser.error(f"--media-calls must be 0..{MAX_MEDIA_CALLS} and --hold 0..60000")

    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    from callgate.media.relay import run

    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        results = run(drive(args, args.workdir.resolve()))
    else:
        with tempfile.TemporaryDirectory(prefix="callgate-bench-sip-") as tmp:
            results = run(drive(args, Path(tmp)))
    steps = results["steps"]
    passed = [s for s in steps if s["sustained"]]
    figures: dict[str, Any] = {
        "load_average_at_start": [round(x, 2) for x in load],
        "sustained_calls_per_s": max((s["achieved_rate"] for s in passed), default=0),
        "hold_ms": args.hold,
        "steps": steps,
        "media": results["media"],
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    best = min((s["pbx_cpu_ms_per_call"] for s in passed), default=None)
    print(f"sustained with 0 failures: {figures['sustained_calls_per_s']} calls/s", flush=True)
    if best is not None:
        print(
            f"PBX CPU per call: {best} ms at best ({best / GOAL_CPU_PER_CALL_MS:.2f} x the "
            f"{GOAL_CPU_PER_CALL_MS} ms goal)"
        )
    m = results["media"]
    if m:
        print(
            f"media: {m['media_calls']} calls, {m['relayed_per_s']} packets/s relayed "
            f"(nominal {m['nominal_relayed_per_s']}), {m['pbx_us_per_relayed_packet']} µs CPU "
            f"per relayed packet, {100 * m['pbx_share_of_core']:.0f} % of a core -> "
            f"{m['media_calls_per_core']} media calls per core ({m['ratio_to_goal']} x the "
            f"goal of {GOAL_MEDIA_CALLS_PER_CORE}); loss at the PBX {100 * m['pbx_loss']:.3f} %, "
            f"round trip {100 * m['round_trip_loss']:.3f} % ({m['lost_by_echo']} packets lost "
            "by the SIPp echo)"
        )
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
