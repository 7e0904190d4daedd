"""Webhook delivery benchmark: call events through the outbox to a local HTTP receiver.

A receiver process (uvicorn on uvloop and httptools, a raw ASGI app) answers 200 to every POST
and notes when each event id arrived. This process migrates a database, creates a client, an
extension and a POST handler on it, and runs the outbox sink and the delivery worker (on uvloop,
as the SIP process would). Two phases:

1. **Throughput**: ``--events`` events (one call each) are written to the outbox first, then the
   worker starts; deliveries per second = events / time until the receiver has them all.
2. **Latency**: with the worker running, events are emitted at ``--rate`` per second for
   ``--seconds`` (paced, as a busy PBX would raise them); latency = the receiver's arrival time
   minus the moment ``emit`` was called (both ``time.time()`` on this machine).

Prints one JSON object and writes it to ``bench/results/webhooks-<time>.json``. Bounded: every
wait has a deadline, at most 100 000 events; the receiver (and a throwaway PostgreSQL cluster,
with ``--database postgresql``) are stopped at the end. Only 127.0.0.1 is used. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEADLINE = 120.0
MAX_EVENTS = 100_000

# ------------------------------------------------------------------------------ receiver process


def run_receiver(port: int) -> None:
    import uvicorn

    arrivals: dict[str, float] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        if scope["method"] == "POST":
            for name, value in scope["headers"]:
                if name == b"x-callgate-event-id":
                    arrivals.setdefault(value.decode(), time.time())
            body = b"ok"
        elif scope["path"] == "/count":
            body = str(len(arrivals)).encode()
        else:
            body = json.dumps(arrivals).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="off",
        interface="asgi3",
    )


# ------------------------------------------------------------------------------ the bench


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def receiver_process(port: int) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, __file__, "--receiver", str(port)])
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the receiver did not start")
            time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def database_url(kind: str, given: str | None) -> Iterator[str]:
    if given:
        yield given
    elif kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.sqlite3"
    else:
        from tests.support.pgcluster import throwaway_postgres

        with throwaway_postgres() as url:
            yield url


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def bench(args: argparse.Namespace, url: str, port: int) -> dict[str, Any]:
    import httpx

    from callgate.calls.live import CallEvent, CallStatus
    from callgate.common.clock import utcnow
    from callgate.composition import build_services
    from callgate.config import Settings
    from callgate.events.delivery import start_delivery
    from callgate.events.models import EventType
    from callgate.events.sink import OutboxSink
    from callgate.migrations import upgrade

    upgrade(url)
    settings = Settings(
        database_url=url,
        data_dir=Path(tempfile.mkdtemp(prefix="callgate-bench-")),
        webhook_allow_private=True,
        webhook_concurrency=args.concurrency,
    )
    services = build_services(settings)
    client = services.identity.create_client(f"Bench {os.getpid()}", f"9{os.getpid()}")
    extension = services.identity.create_extension(client.id, "101")
    services.events.create(
        client_id=client.id,
        extension_id=extension.id,
        url=f"http://127.0.0.1:{port}/hook",
        method="POST",
        event_type="dial-in",
    )

    def call_event(number: int) -> CallEvent:
        return CallEvent(
            event_type=EventType.DIAL_IN,
            client_id=client.id,
            extension_id=extension.id,
            call_id=f"bench-{number}",
            sub_call_id=f"leg-{number}",
            call_api_id=f"api-{number}",
            call_flow="in",
            call_status=CallStatus.CALLING,
            event_time=utcnow(),
            caller_id_num="102",
            called_number="101",
        )

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as receiver:

        async def wait_for(count: int) -> float:
            deadline = time.monotonic() + DEADLINE
            while int((await receiver.get("/count")).text) < count:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"fewer than {count} events arrived in {DEADLINE} s")
                await asyncio.sleep(0.02)
            return time.monotonic()

        sink = OutboxSink(services.database, settings)
        await sink.start()
        # 1. throughput
        for number in range(args.events):
            sink.emit(call_event(number))
        if not await sink.drained(DEADLINE):
            raise RuntimeError("the outbox did not take the events")
        cpu0, started = cpu_seconds(), time.monotonic()
        worker = await start_delivery(settings, services.database)
        finished = await wait_for(args.events)
        throughput = args.events / (finished - started)
        cpu_per_delivery = (cpu_seconds() - cpu0) / args.events

        # 2. latency at a steady rate
        emitted: dict[str, float] = {}
        total = int(args.rate * args.seconds)
        begin = time.monotonic()
        for number in range(total):
            slot = begin + number / args.rate
            delay = slot - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            raised = call_event(args.events + number)
            emitted[raised.event_id] = time.time()
            sink.emit(raised)
        offered = total / (time.monotonic() - begin)
        await wait_for(args.events + total)
        arrivals: dict[str, float] = (await receiver.get("/dump")).json()
        await sink.stop()
        await worker.stop()
    services.database.dispose()
    latencies = [(arrivals[event_id] - sent) * 1000 for event_id, sent in emitted.items()]
    return {
        "database": "sqlite" if url.startswith("sqlite") else "postgresql",
        "concurrency": args.concurrency,
        "throughput_events": args.events,
        "deliveries_per_s": round(throughput, 1),
        "bench_cpu_ms_per_delivery": round(cpu_per_delivery * 1000, 3),
        "latency_rate_offered": round(offered, 1),
        "latency_events": total,
        "latency_ms_p50": round(statistics.median(latencies), 2),
        "latency_ms_p99": round(percentile(latencies, 0.99), 2),
        "latency_ms_max": round(max(latencies), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--database-url", help="an existing, empty database (default: throwaway)")
    parser.add_argument("--events", type=int, default=5000, help="throughput phase (default 5000)")
    parser.add_argument("--rate", type=float, default=200.0, help="latency phase events/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="latency phase length")
    parser.add_argument("--concurrency", type=int, default=64, help="CALLGATE_WEBHOOK_CONCURRENCY")
    args = parser.parse_args()
    if args.receiver:
        run_receiver(args.receiver)
        return 0
    if not 1 <= args.events <= MAX_EVENTS or not 0 < args.rate * args.seconds <= MAX_EVENTS:
        parser.error(f"at most {MAX_EVENTS} events per phase")
    import uvloop

    port = free_port()
    load_before = os.getloadavg()
    with receiver_process(port), database_url(args.database, args.database_url) as url:
        result = uvloop.run(bench(args, url, port))
    result.update(
        {
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()],
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "time": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        }
    )
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results" / f"webhooks-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
