"""A rig of real baresip phones on a running PBX, and audio checks on what they heard.

Each :class:`Phone` is one baresip process (PEERS.md) with its own config folder: it plays a
test tone as its microphone (``aufile``) and records what it receives (``sndfile`` writes
``dump-<time>-dec.wav``, 8 kHz 16-bit PCM, and ``dump-<time>-enc.wav`` for what it sent).
It is scripted over ctrl_tcp; one reader task per phone collects events and command answers.

:func:`pbx_with_phones` starts the PBX and the phones (registered, with a deadline) and stops the
phones before the PBX (a phone whose registrar is gone hangs while un-registering).

Audio checks (:func:`dominant_frequency`, :func:`has_tone`, :func:`tone_seen`) read those WAVs
with a Goertzel scan from :mod:`callgate.media.g711`. Tone files are written under the test's
``tmp_path`` by :func:`make_tones`; no media lives in git.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import struct
import wave
from array import array
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callgate.calls.live import CallControl, CallEvent, ListSink, LiveCall
from callgate.identity.models import Extension
from callgate.media import g711
from callgate.pbx.service import RunningPbx, start_pbx
from callgate.services import Services
from tests.conftest import free_port
from tests.pbx.baresip import MODULES, Baresip, free_udp_tcp_pair
from tests.pbx.helpers import PASSWORD

RATE = g711.RATE
TONE_SECONDS = 120  # longer than any test call: aufile stops the source at the end of the file
SILENCE_RMS = 300.0  # below this (of 32767) a window counts as silence
PURITY = 0.7  # share of a window's energy that must sit at its dominant frequency
FRESH_WINDOW = 0.3  # seconds of new audio a phone must have received to judge what it hears


# --- test tones and audio checks -------------------------------------------------------------


def write_tone(path: Path, hz: float, seconds: float = TONE_SECONDS) -> Path:
    """An 8 kHz mono 16-bit PCM WAV of a sine at ``hz`` (half of full scale)."""
    samples = g711.tone(hz, seconds, amplitude=0.5)
    if struct.pack("=h", 1) != struct.pack("<h", 1):
        samples.byteswap()  # WAV is little-endian
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.tobytes())
    return path


@dataclass(frozen=True)
class Tones:
    a440: Path
    a1000: Path


def make_tones(folder: Path) -> Tones:
    """The two source tones of the rig, written once per test under ``folder``."""
    return Tones(
        write_tone(folder / "tone_440.wav", 440), write_tone(folder / "tone_1000.wav", 1000)
    )


def read_samples(path: Path) -> array[int]:
    """The 16-bit samples of a mono PCM WAV, also while baresip is still writing it.

    libsndfile fixes the RIFF and data sizes only when it closes the file, so a size that is
    zero or runs past the end means "up to the end of the file".
    """
    data = path.read_bytes()
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path.name} is not a RIFF/WAVE file")
    offset = 12
    fmt: tuple[int, int, int, int] | None = None
    while offset + 8 <= len(data):
        chunk, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        if chunk == b"fmt ":
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, offset + 8)
            fmt = (tag, channels, rate, bits)
        elif chunk == b"data":
            if fmt != (1, 1, RATE, 16):
                raise ValueError(f"{path.name}: need 8 kHz mono 16-bit PCM, got {fmt}")
            end = offset + 8 + size
            if size == 0 or end > len(data):
                end = len(data)
            body = data[offset + 8 : end]
            samples = array("h")
            samples.frombytes(body[: len(body) & ~1])
            if struct.pack("=h", 1) != struct.pack("<h", 1):
                samples.byteswap()
            return samples
        offset += 8 + size + (size & 1)
    raise ValueError(f"{path.name} has no data chunk")


def _samples_so_far(path: Path) -> array[int]:
    """:func:`read_samples` of a recording baresip may have just created: until its header is
    written the file holds no audio yet (not an error)."""
    try:
        return read_samples(path)
    except ValueError:
        return array("h")


def _window(samples: Sequence[int], start: float, seconds: float) -> Sequence[int]:
    """``seconds`` of audio from ``start`` (seconds; negative counts from the end)."""
    first = round(start * RATE)
    if first < 0:
        first = max(0, len(samples) + first)
    return samples[first : first + round(seconds * RATE)]


def _rms(samples: Sequence[int]) -> float:
    return math.sqrt(sum(x * x for x in samples) / len(samples)) if samples else 0.0


def dominant_frequency(
    source: Path | Sequence[int], *, start: float = -0.75, seconds: float = 0.25
) -> float | None:
    """The frequency holding most of the energy of a window of a recording (Goertzel scan);
    None if the window is silent or holds no single tone.

    The default window ends half a second before the end of what is written so far: the tail
    of a recording in progress is where the latest audio is.
    """
    samples = read_samples(source) if isinstance(source, Path) else source
    window = _window(samples, start, seconds)
    if len(window) < RATE // 20 or _rms(window) < SILENCE_RMS:
        return None
    frequency = g711.estimate_frequency(window)
    if g711.goertzel_ratio(window, frequency) < PURITY:
        return None
    return frequency


def has_tone(
    source: Path | Sequence[int],
    hz: float,
    tolerance: float = 15.0,
    *,
    start: float = -0.75,
    seconds: float = 0.25,
) -> bool:
    """Whether the window (see :func:`dominant_frequency`) is a tone of ``hz`` ± ``tolerance``."""
    found = dominant_frequency(source, start=start, seconds=seconds)
    return found is not None and abs(found - hz) <= tolerance


def tone_seen(path: Path, hz: float, *, window: float = 0.1, ratio: float = PURITY) -> bool:
    """Whether ``hz`` sounds alone in any ``window`` of the whole recording (one Goertzel bin per
    window, so cheap enough for a minute of audio)."""
    samples = read_samples(path)
    step = round(window * RATE)
    for first in range(0, max(0, len(samples) - step) + 1, step):
        part = samples[first : first + step]
        if _rms(part) >= SILENCE_RMS and g711.goertzel_ratio(part, hz) >= ratio:
            return True
    return False


# --- phones ----------------------------------------------------------------------------------


def phone_config(
    folder: Path, *, sip_port: int, ctrl_port: int, tone: Path, account_line: str
) -> None:
    """baresip's ``config`` and ``accounts`` for a scripted phone playing ``tone``."""
    recordings = folder / "rec"
    recordings.mkdir(parents=True, exist_ok=True)
    lines = [
        "poll_method epoll",
        f"sip_listen 127.0.0.1:{sip_port}",
        "net_interface 127.0.0.1",
        f"audio_source aufile,{tone}",
        "audio_player aubridge,nil_a",
        "audio_alert aubridge,nil_a",
        f"module_path {MODULES}",
        "module g711.so",
        "module aufile.so",
        "module aubridge.so",
        "module sndfile.so",
        "module ctrl_tcp.so",
        "module_tmp uuid.so",
        "module_tmp account.so",
        "module_app menu.so",
        f"ctrl_tcp_listen 127.0.0.1:{ctrl_port}",
        f"snd_path {recordings}",
        "",
    ]
    (folder / "config").write_text("\n".join(lines))
    (folder / "accounts").write_text(account_line + "\n")


class PhoneError(RuntimeError):
    """baresip refused a command or did not answer in time."""


_tokens = itertools.count(1)


class Phone:
    """One scripted baresip phone of an extension.

    Events are kept in ``events`` in arrival order (``_at``: the loop time it arrived);
    :meth:`wait_event` hands each one out once, so an event that arrived before the wait began
    is not missed. A phone with ``answermode=auto`` reports no ``CALL_INCOMING``, only
    ``CALL_ESTABLISHED``; a ``manual`` one reports ``CALL_INCOMING`` and waits for :meth:`accept`.
    """

    def __init__(
        self,
        extension: Extension,
        user: str,
        folder: Path,
        tone: Path,
        *,
        answermode: str = "auto",
        password: str = PASSWORD,
    ) -> None:
        if answermode not in ("auto", "manual"):
            raise ValueError(f"answermode must be auto or manual, not {answermode!r}")
        self.extension = extension
        self.name = extension.name
        self.user = user
        self.folder = folder
        self.tone = tone
        self.answermode = answermode
        self.password = password
        self.sip_port = free_udp_tcp_pair()
        self.ctrl_port = free_port()
        self.baresip = Baresip(folder, self.ctrl_port)
        self.pbx: tuple[str, int] | None = None
        self.events: list[dict[str, Any]] = []
        self._taken: set[int] = set()
        self._changed = asyncio.Event()
        self._answers: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Phone {self.user} sip:{self.sip_port}>"

    # lifecycle

    async def start(self, pbx: tuple[str, int]) -> None:
        self.pbx = pbx
        host, port = pbx
        account = (
            f"<sip:{self.user}@{host}:{port}>;auth_pass={self.password};"
            f"answermode={self.answermode};regint=300;audio_codecs=pcmu"
        )
        phone_config(
            self.folder,
            sip_port=self.sip_port,
            ctrl_port=self.ctrl_port,
            tone=self.tone,
            account_line=account,
        )
        await self.baresip.start()
        self._reader = asyncio.create_task(self._read(), name=f"phone {self.user}")

    async def _read(self) -> None:
        try:
            while True:
                message = await self.baresip._read_one()
                if message.get("event"):
                    message["_at"] = asyncio.get_running_loop().time()  # arrival, for ordering
                    self.events.append(message)
                    self.baresip.events.append(message)
                    self._changed.set()
                elif message.get("response"):
                    future = self._answers.pop(str(message.get("token")), None)
                    if future is not None and not future.done():
                        future.set_result(message)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass  # baresip quit or closed the control connection
        finally:
            for future in self._answers.values():
                if not future.done():
                    future.set_exception(PhoneError(f"{self.user}: control connection closed"))
            self._answers.clear()
            self._changed.set()

    async def stop(self, limit: float = 5.0) -> None:
        """Quit baresip (kill it after ``limit`` seconds) and end the reader."""
        await self.baresip.stop(limit)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None

    # commands

    async def command(self, command: str, params: str = "", *, limit: float = 5.0) -> str:
        """Send a ctrl_tcp command, return its ``data``; :class:`PhoneError` if not ok."""
        writer = self.baresip._writer
        if writer is None or self._reader is None or self._reader.done():
            raise PhoneError(f"{self.user}: not running")
        token = f"t{next(_tokens)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._answers[token] = future
        body = json.dumps({"command": command, "params": params, "token": token}).encode()
        writer.write(str(len(body)).encode() + b":" + body + b",")
        await writer.drain()
        try:
            answer = await asyncio.wait_for(future, limit)
        except TimeoutError:
            self._answers.pop(token, None)
            raise PhoneError(f"{self.user}: no answer to {command} in {limit} s") from None
        if not answer.get("ok"):
            raise PhoneError(f"{self.user}: {command} {params}: {answer.get('data')!r}")
        return str(answer.get("data") or "")

    def uri(self, number: str) -> str:
        """The SIP URI of ``number`` at the PBX the phone is registered with."""
        assert self.pbx is not None
        host, port = self.pbx
        return f"sip:{number}@{host}:{port}"

    async def dial(self, number: str) -> str:
        return await self.command("dial", self.uri(number))

    async def accept(self) -> str:
        return await self.command("accept")

    async def hangup(self) -> str:
        return await self.command("hangup")

    async def hold(self) -> str:
        return await self.command("hold")

    async def resume(self) -> str:
        return await self.command("resume")

    async def transfer(self, number: str) -> str:
        return await self.command("transfer", self.uri(number))

    async def sndcode(self, digit: str) -> str:
        return await self.command("sndcode", digit)

    # events

    async def wait_event(
        self,
        *types: str,
        limit: float = 10.0,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """The oldest event of one of ``types`` not handed out yet (waiting at most ``limit``
        seconds); :class:`TimeoutError` naming what did arrive otherwise."""
        loop = asyncio.get_running_loop()
        end = loop.time() + limit
        while True:
            for index, event in enumerate(self.events):
                if index in self._taken or event.get("type") not in types:
                    continue
                if where is None or where(event):
                    self._taken.add(index)
                    return event
            left = end - loop.time()
            if left <= 0 or self._reader is None or self._reader.done():
                seen = [e.get("type") for e in self.events]
                raise TimeoutError(f"{self.user}: no {'/'.join(types)} in {limit} s; saw {seen}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    def seen(self, *types: str) -> list[dict[str, Any]]:
        """Every event of ``types`` so far (handed out or not)."""
        return [e for e in self.events if e.get("type") in types]

    # recordings

    def recordings(self, kind: str = "dec") -> list[Path]:
        """sndfile's WAVs, oldest first: ``dec`` = what the phone received, ``enc`` = sent."""
        return sorted(
            (self.folder / "rec").glob(f"dump-*-{kind}.wav"), key=lambda p: p.stat().st_mtime_ns
        )

    def received(self) -> Path:
        """The newest recording of received audio (the current or last call)."""
        found = self.recordings("dec")
        if not found:
            raise AssertionError(f"{self.user} has recorded no received audio")
        return found[-1]

    def _mark(self) -> tuple[Path | None, int]:
        """Where the received audio ends now: (newest recording, samples in it)."""
        found = self.recordings("dec")
        if not found:
            return None, 0
        return found[-1], len(_samples_so_far(found[-1]))

    def fresh_audio(self, mark: tuple[Path | None, int]) -> array[int]:
        """The audio received since ``mark`` (a new recording counts from its start)."""
        found = self.recordings("dec")
        if not found:
            return array("h")
        samples = _samples_so_far(found[-1])
        return samples[mark[1] :] if found[-1] == mark[0] else samples

    async def hears(
        self, hz: float, *, tolerance: float = 15.0, limit: float = 8.0, hold_for: float = 0.0
    ) -> bool:
        """Whether the phone hears a tone of ``hz`` within ``limit`` seconds: the latest
        ``FRESH_WINDOW`` of audio received *after this call* is that tone (audio recorded before
        does not count, so a stale recording cannot pass). With ``hold_for``, it must hear the
        tone again in audio received that many seconds later."""
        loop = asyncio.get_running_loop()
        end = loop.time() + limit
        mark = await asyncio.to_thread(self._mark)
        while loop.time() < end:
            if await asyncio.to_thread(self._hears_since, mark, hz, tolerance):
                if hold_for <= 0:
                    return True
                mark = await asyncio.to_thread(self._mark)
                await asyncio.sleep(hold_for)  # audio has to keep flowing for this long
                return await self.hears(hz, tolerance=tolerance, limit=max(1.0, end - loop.time()))
            await asyncio.sleep(0.1)  # the recording grows in real time
        return False

    def _hears_since(self, mark: tuple[Path | None, int], hz: float, tolerance: float) -> bool:
        fresh = self.fresh_audio(mark)
        if len(fresh) < FRESH_WINDOW * RATE:
            return False
        return has_tone(fresh, hz, tolerance, start=-FRESH_WINDOW, seconds=FRESH_WINDOW)

    async def heard(self, seconds: float = 1.0) -> float | None:
        """The dominant frequency of the next ``seconds`` of received audio (None: silence,
        nothing received, or a mix)."""
        mark = await asyncio.to_thread(self._mark)
        await asyncio.sleep(seconds)  # let that much audio arrive
        fresh = await asyncio.to_thread(self.fresh_audio, mark)
        window = min(FRESH_WINDOW, len(fresh) / RATE)
        return await asyncio.to_thread(dominant_frequency, fresh, start=-window, seconds=window)


# --- the rig ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhoneSpec:
    """A phone to start: the extension (a phone extension), its tone, its answer mode."""

    extension: Extension
    tone: Path
    answermode: str = "auto"


@dataclass
class Rig:
    """The running PBX and its phones by extension name, with what call tests ask the engine."""

    pbx: RunningPbx
    phones: dict[str, Phone] = field(default_factory=dict)  # by extension name

    def __getitem__(self, name: str) -> Phone:
        return self.phones[name]

    @property
    def control(self) -> CallControl:
        control = self.pbx.control
        assert control is not None, "start_pbx gave no call control"
        return control

    @property
    def events(self) -> list[CallEvent]:
        """The call events so far (the PBX's default :class:`ListSink`)."""
        sink = self.pbx.events
        assert isinstance(sink, ListSink), "the PBX was started with another event sink"
        return sink.events

    async def live_call(self, client_id: int, state: str = "answered") -> LiveCall:
        """The client's one call in progress, once it is in ``state`` (polled, 8 s at most)."""
        found: list[LiveCall] = []

        async def check() -> bool:
            found[:] = await self.control.current_calls(client_id, None)
            return len(found) == 1 and found[0].state == state

        await until(check, f"one call {state}")
        return found[0]

    async def no_calls(self, client_id: int) -> None:
        """Until the client has no call in progress (8 s at most)."""

        async def check() -> bool:
            return await self.control.current_calls(client_id, None) == []

        await until(check, "no call left")

    async def call(self, caller: Phone, callee: Phone, client_id: int) -> LiveCall:
        """``caller`` dials ``callee`` (answering by itself); the call once both are in it."""
        await caller.dial(callee.name)
        await callee.wait_event("CALL_ESTABLISHED")
        await caller.wait_event("CALL_ESTABLISHED")
        return await self.live_call(client_id)


async def until(
    check: Callable[[], Awaitable[bool]], what: str, limit: float = 8.0, every: float = 0.1
) -> None:
    """Poll ``check`` until it is true; AssertionError naming ``what`` after ``limit`` s."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not await check():
        if loop.time() > end:
            raise AssertionError(f"not within {limit} s: {what}")
        await asyncio.sleep(every)  # polling state that changes on its own


def ensure_extension(services: Services, client_id: int, name: str) -> Extension:
    """The client's phone extension ``name``, created if it does not exist (e.g. 103)."""
    listed = services.identity.list_extensions(client_id, None, 1, 1000)
    for extension, _prefix in listed.items:
        if extension.name == name:
            return extension
    return services.identity.create_extension(client_id, name)


async def wait_registered(pbx: RunningPbx, phone: Phone, limit: float = 10.0) -> None:
    """Until the PBX holds a binding of the phone (or the phone reports REGISTER_FAIL)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    registrar = pbx.service.registrar
    while True:
        bindings = registrar.bindings.lookup(phone.user, pbx.service.clock())
        if any(b.source == ("127.0.0.1", phone.sip_port) for b in bindings):
            return
        if phone.seen("REGISTER_FAIL"):
            raise PhoneError(f"{phone.user}: registration refused")
        if loop.time() > end:
            raise TimeoutError(f"{phone.user} did not register in {limit} s")
        await asyncio.sleep(0.05)  # polling the registrar's table


@asynccontextmanager
async def running_phones(
    pbx: RunningPbx,
    services: Services,
    specs: Sequence[PhoneSpec],
    folder: Path,
    *,
    register_limit: float = 10.0,
) -> AsyncIterator[Rig]:
    """Start one phone per spec against ``pbx`` (SIP password set, registered); stop them all
    on the way out (each killed after a few seconds if it hangs)."""
    rig = Rig(pbx)
    try:
        for spec in specs:
            extension = spec.extension
            client = await asyncio.to_thread(services.identity.get_client, extension.client_id)
            await asyncio.to_thread(services.phones.update_phone, extension.id, password=PASSWORD)
            phone = Phone(
                extension,
                f"{client.prefix}*{extension.name}",
                folder / f"phone-{extension.name}",
                spec.tone,
                answermode=spec.answermode,
            )
            rig.phones[extension.name] = phone
            await phone.start(pbx.address)
        await asyncio.gather(
            *(wait_registered(pbx, p, register_limit) for p in rig.phones.values())
        )
        yield rig
    finally:
        await asyncio.gather(*(p.stop() for p in rig.phones.values()), return_exceptions=True)


@asynccontextmanager
async def pbx_with_phones(
    services: Services,
    specs: Sequence[PhoneSpec],
    folder: Path,
    *,
    pbx_options: Mapping[str, Any] | None = None,
) -> AsyncIterator[Rig]:
    """Start the PBX on a free port, then the phones; stop the phones first, then the PBX."""
    pbx = await start_pbx(services.settings, services.database, port=0, **(pbx_options or {}))
    try:
        async with running_phones(pbx, services, specs, folder) as rig:
            yield rig
    finally:
        await asyncio.wait_for(pbx.stop(), 15)
