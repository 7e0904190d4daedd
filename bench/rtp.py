"""RTP relay benchmark: N bridged calls of G.711 through ``callgate.media`` on 127.0.0.1.

One run starts the relay in its own process (``--role relay``, uvloop by default) with 2 x N legs
bridged in pairs, then generates the calls from this process: two endpoints per call, each
sending 50 packets/s of 12 + 160 bytes (20 ms PCMU) to its leg for ``--duration`` seconds,
spread over ten send slots per 20 ms. The relay measures its own CPU time
(``resource.getrusage``) between the start and stop of the traffic, and the run prints:

- packets relayed per second, CPU seconds of the relay process per packet relayed;
- packet loss per direction (A->B, B->A) from what the endpoints sent and received;
- the ratio to PEERS.md's reference: 5 µs/packet for a bare uvloop UDP relay.

``--core`` instead times the relay's per-packet function alone (``Leg.datagram_received``
forwarding one source's packets to a bridged leg whose ``send`` does nothing), in-process, best
of five rounds: the engine's own share of the per-packet cost, without the kernel and the loop.

Bounded: ``--calls`` at most 2000, ``--duration`` at most 120 s, every wait has a deadline, and
the relay process is stopped (by its PID) at the end. Only 127.0.0.1 is used. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_US = 5.0  # PEERS.md: bare asyncio UDP relay on uvloop, CPU per packet
PACKET_INTERVAL = 0.020
PAYLOAD = bytes([0xFF]) * 160
SLOTS = 10  # send slots per 20 ms, so that packets do not all leave in one burst
MAX_CALLS = 2000
MAX_DURATION = 120.0
DEADLINE = 30.0

Address = tuple[str, int]


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------- relay process


async def relay_main(calls: int, port_min: int) -> None:
    from callgate.media.relay import MediaRelay

    loop = asyncio.get_running_loop()
    relay = MediaRelay("127.0.0.1", port_min, port_min + 4 * calls + 100)
    legs = [(await relay.open_leg(f"a{i}"), await relay.open_leg(f"b{i}")) for i in range(calls)]
    print(json.dumps({"ports": [[a.local[1], b.local[1]] for a, b in legs]}), flush=True)

    async def command() -> Any:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        return json.loads(line)

    endpoints = (await command())["endpoints"]
    for (leg_a, leg_b), (port_a, port_b) in zip(legs, endpoints, strict=True):
        leg_a.expect("127.0.0.1", port_a)
        leg_b.expect("127.0.0.1", port_b)
        relay.bridge(leg_a, leg_b)
    print(json.dumps({"ready": True}), flush=True)

    def totals() -> dict[str, int]:
        out: dict[str, int] = {}
        for pair in legs:
            for leg in pair:
                for name, value in leg.counters.as_dict().items():
                    out[name] = out.get(name, 0) + value
        return out

    await command()  # start
    cpu0, wall0, count0 = cpu_seconds(), time.monotonic(), totals()
    await command()  # stop
    cpu1, wall1, count1 = cpu_seconds(), time.monotonic(), totals()
    delta = {k: count1[k] - count0.get(k, 0) for k in count1}
    print(json.dumps({"cpu": cpu1 - cpu0, "wall": wall1 - wall0, "counters": delta}), flush=True)
    await command()  # quit, once the generator has drained the packets still in flight
    print(json.dumps({"totals": totals()}), flush=True)
    await relay.close()


# --------------------------------------------------------------------------- core only


def core_benchmark(packets: int = 200_000, rounds: int = 5) -> dict[str, Any]:
    """µs of CPU per packet of ``Leg.datagram_received`` alone (best round), forwarding."""
    from callgate.media.leg import Leg, link

    def send(data: Any, address: Address) -> None:
        pass

    a, b = Leg("a", send), Leg("b", send)
    a.expect("127.0.0.1", 4000)
    b.expect("127.0.0.1", 5000)
    link(a, b)
    header = struct.Struct("!BBHII")
    frames = [
        header.pack(0x80, 0, i & 0xFFFF, (i * 160) & 0xFFFFFFFF, 0x1234) + PAYLOAD
        for i in range(1000)
    ]
    receive, source = a.datagram_received, ("127.0.0.1", 4000)
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(packets // len(frames)):
            for frame in frames:
                receive(frame, source)
        best = min(best, time.process_time() - start)
    count = packets // len(frames) * len(frames)
    assert b.counters.packets_out == rounds * count
    return {"core_us_per_packet": round(1e6 * best / count, 3), "packets": count, "rounds": rounds}


# --------------------------------------------------------------------------- generator


class Endpoint(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received = 0
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.received += 1


async def open_endpoint(loop: asyncio.AbstractEventLoop) -> Endpoint:
    _, endpoint = await loop.create_datagram_endpoint(Endpoint, local_addr=("127.0.0.1", 0))
    return endpoint


async def generate(
    relay: subprocess.Popen[str], calls: int, duration: float, warmup: float
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    assert relay.stdout is not None and relay.stdin is not None
    stdout, stdin = relay.stdout, relay.stdin

    async def reply() -> Any:
        line = await asyncio.wait_for(loop.run_in_executor(None, stdout.readline), DEADLINE)
        if not line:
            raise RuntimeError("the relay process exited")
        return json.loads(line)

    def tell(message: dict[str, Any]) -> None:
        stdin.write(json.dumps(message) + "\n")
        stdin.flush()

    ports = (await reply())["ports"]
    pairs = [(await open_endpoint(loop), await open_endpoint(loop)) for _ in range(calls)]
    tell(
        {
            "endpoints": [
                [
                    a.transport.get_extra_info("sockname")[1],
                    b.transport.get_extra_info("sockname")[1],
                ]
                for a, b in pairs
            ]
        }
    )
    await reply()  # ready

    # Each sender: (endpoint, its leg's address, its SSRC); seq/ts advance together per tick.
    senders = []
    for (a, b), (port_a, port_b) in zip(pairs, ports, strict=True):
        senders.append((a, ("127.0.0.1", port_a), random.getrandbits(32)))
        senders.append((b, ("127.0.0.1", port_b), random.getrandbits(32)))
    slots = [senders[i::SLOTS] for i in range(SLOTS)]
    header = struct.Struct("!BBHII")
    sent = [0, 0]  # A->B, B->A, over the whole run (warm-up included, like the receipts)
    ticks = 0

    def tick(slot: int, due: float, end: float) -> None:
        nonlocal ticks
        if due >= end or loop.time() >= end:
            return  # a starved generator must not keep sending after the measured window
        seq = ticks & 0xFFFF
        for index, (endpoint, address, ssrc) in enumerate(slots[slot]):
            endpoint.transport.sendto(
                header.pack(0x80, 0, seq, (ticks * 160) & 0xFFFFFFFF, ssrc) + PAYLOAD, address
            )
            sent[(index * SLOTS + slot) & 1] += 1
        if slot == SLOTS - 1:
            ticks += 1
        loop.call_at(due + PACKET_INTERVAL, tick, slot, due + PACKET_INTERVAL, end)

    start = loop.time() + 0.05
    end = start + warmup + duration
    for slot in range(SLOTS):
        due = start + slot * PACKET_INTERVAL / SLOTS
        loop.call_at(due, tick, slot, due, end)

    async def at(when: float) -> None:
        await asyncio.sleep(max(0.0, when - loop.time()))

    await at(start + warmup)
    cpu0 = cpu_seconds()
    tell({"start": True})  # the relay's CPU is measured from here ...
    await at(end)
    tell({"stop": True})  # ... to here
    result = await reply()

    def receipts() -> list[int]:
        return [sum(b.received for _, b in pairs), sum(a.received for a, _ in pairs)]

    # Drain: a starved generator may still have packets queued in its sockets' buffers.
    drain_end = loop.time() + 5.0
    received = receipts()
    while loop.time() < drain_end:
        await asyncio.sleep(0.3)
        if receipts() == received:
            break
        received = receipts()
    tell({"quit": True})
    totals = (await reply())["totals"]
    result.update(sent=sent, received=received, generator_cpu=cpu_seconds() - cpu0)
    # Where packets were lost: before the relay read them, or after it sent them.
    result["lost_before_relay"] = sum(sent) - totals["packets_in"]
    result["lost_after_relay"] = totals["packets_out"] - sum(received)
    return dict(result)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--port-min", type=int, default=40000)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--core", action="store_true", help="time the per-packet core function alone, no sockets"
    )
    parser.add_argument("--role", choices=["run", "relay"], default="run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 1 <= args.calls <= MAX_CALLS or not 0 < args.duration <= MAX_DURATION:
        parser.error(f"--calls must be 1..{MAX_CALLS} and --duration 0..{MAX_DURATION}")

    if args.core:
        figures = core_benchmark()
        figures["python"] = platform.python_version()
        print(json.dumps(figures, indent=2))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
        return 0

    if args.role == "relay":
        loop = new_loop(args.loop)
        try:
            loop.run_until_complete(relay_main(args.calls, args.port_min))
        finally:
            loop.close()
        return 0

    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.2f} at start; the figures will be pessimistic")
    command = [sys.executable, __file__, "--role", "relay", "--calls", str(args.calls)]
    command += ["--loop", args.loop, "--port-min", str(args.port_min)]
    relay = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        loop = new_loop("uvloop")
        try:
            result = loop.run_until_complete(
                asyncio.wait_for(
                    generate(relay, args.calls, args.duration, args.warmup),
                    args.duration + args.warmup + 4 * DEADLINE,
                )
            )
        finally:
            loop.close()
        relay.wait(timeout=DEADLINE)
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait(timeout=5)

    relayed = result["counters"]["packets_out"]
    per_packet_us = 1e6 * result["cpu"] / max(1, relayed)
    losses = [
        1.0 - received / sent if sent else 0.0
        for sent, received in zip(result["sent"], result["received"], strict=True)
    ]
    figures = {
        "calls": args.calls,
        "loop": args.loop,
        "duration_s": round(result["wall"], 2),
        "load_average_at_start": round(load, 2),
        "packets_relayed": relayed,
        "packets_per_s": round(relayed / result["wall"]),  # the relay's measured window
        "offered_packets_per_s": round(sum(result["sent"]) / (args.warmup + args.duration)),
        "nominal_packets_per_s": args.calls * 2 * 50,
        "relay_cpu_s": round(result["cpu"], 3),
        "relay_cpu_share_of_core": round(result["cpu"] / result["wall"], 3),
        "relay_us_per_packet": round(per_packet_us, 2),
        "ratio_to_reference": round(per_packet_us / REFERENCE_US, 2),
        "loss_a_to_b": round(losses[0], 6),
        "loss_b_to_a": round(losses[1], 6),
        "lost_before_relay": result["lost_before_relay"],
        "lost_after_relay": result["lost_after_relay"],
        "sent": result["sent"],
        "received": result["received"],
        "generator_cpu_s": round(result["generator_cpu"], 3),
        "relay_counters": result["counters"],
        "python": platform.python_version(),
    }
    print(
        f"{args.calls} calls, {args.loop}, {figures['duration_s']} s: "
        f"{figures['packets_per_s']} packets/s relayed, "
        f"relay CPU {figures['relay_cpu_s']} s ({100 * figures['relay_cpu_share_of_core']:.0f} % "
        f"of a core), {per_packet_us:.2f} µs/packet = {figures['ratio_to_reference']} x the "
        f"{REFERENCE_US} µs bare-uvloop reference; loss A->B {100 * losses[0]:.3f} %, "
        f"B->A {100 * losses[1]:.3f} %"
    )
    if figures["offered_packets_per_s"] < 0.9 * figures["nominal_packets_per_s"]:
        print(
            f"warning: the generator offered only {figures['offered_packets_per_s']} of "
            f"{figures['nominal_packets_per_s']} packets/s (CPU-starved); per-packet figures hold"
        )
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
