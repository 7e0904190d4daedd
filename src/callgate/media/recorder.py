"""Call recording to a µ-law WAV, sans-I/O: packets in (with an injected clock), WAV bytes out.

The :class:`Recorder` is a tap on a bridge: the relay core hands it every valid RTP packet each
leg *receives* (what that party says). The hot-path cost is small and involves no transcoding:
skip the header, drop non-audio payload types (telephone-event, comfort noise), translate A-law
bytes to µ-law bytes if needed (one ``bytes.translate``, a 256-entry table), and copy the payload
into that direction's byte track at its place in time.

Placement: within one SSRC, a packet goes at ``base + (timestamp - base_timestamp)``, so jitter
does not smear the audio; on a new SSRC, a timestamp jump, or drift of more than a second from
the arrival clock, the track re-bases on the arrival time (``clock()`` x 8000). Gaps are µ-law
silence. Music on hold sent by Callgate is not recorded (it is not received from a leg).

:meth:`Recorder.wav` builds the file when the call ends: ``"stereo"`` interleaves the two tracks
untouched (channel 1 = first leg), ``"mixed"`` sums them through the 64 K-entry µ-law mixing table
of :func:`callgate.media.g711.mix_ulaw`. The tracks are kept in memory (8 KB/s per direction);
streaming to disk during long calls is left to the engine layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from callgate.media.g711 import ALAW_TO_ULAW, ULAW_SILENCE, mix_ulaw
from callgate.media.leg import Leg
from callgate.media.wav import g711_wav

RecordingMode = Literal["mixed", "stereo"]

# A timestamp step larger than this (10 s) is treated as a discontinuity.
_MAX_STEP = 80000
_MAX_DRIFT = 8000


@dataclass(slots=True)
class _Track:
    data: bytearray
    ssrc: int = -1
    base_timestamp: int = 0
    base_position: int = 0


class Recorder:
    def __init__(self, first: Leg, second: Leg, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._t0: float | None = None
        self._tracks = {id(first): _Track(bytearray()), id(second): _Track(bytearray())}
        self._order = (id(first), id(second))
        self.packets = 0

    def __call__(self, leg: Leg, data: bytes) -> None:
        """The tap: ``data`` is a valid RTP packet received on ``leg``."""
        track = self._tracks.get(id(leg))
        if track is None:
            return
        payload_type = data[1] & 0x7F
        if payload_type not in (0, 8):
            return
        offset = 12 + 4 * (data[0] & 0x0F)
        if data[0] & 0x10:
            if len(data) < offset + 4:
                return
            offset += 4 + 4 * int.from_bytes(data[offset + 2 : offset + 4], "big")
        end = len(data) - (data[-1] if data[0] & 0x20 else 0)
        payload = data[offset:end]
        if not payload:
            return
        if payload_type == 8:
            payload = payload.translate(ALAW_TO_ULAW)
        now = self._clock()
        if self._t0 is None:
            self._t0 = now
        arrival = int((now - self._t0) * 8000)
        ssrc = int.from_bytes(data[8:12], "big")
        timestamp = int.from_bytes(data[4:8], "big")
        step = (timestamp - track.base_timestamp) & 0xFFFFFFFF
        position = track.base_position + step
        if ssrc != track.ssrc or step > _MAX_STEP or abs(position - arrival) > _MAX_DRIFT:
            track.ssrc, track.base_timestamp, track.base_position = ssrc, timestamp, arrival
            position = arrival
        buffer = track.data
        if position > len(buffer):
            buffer.extend(bytes([ULAW_SILENCE]) * (position - len(buffer)))
        buffer[position : position + len(payload)] = payload
        self.packets += 1

    def tracks(self) -> tuple[bytes, bytes]:
        """Both directions as µ-law, padded with silence to the same length."""
        first, second = (self._tracks[key].data for key in self._order)
        length = max(len(first), len(second))
        pad = bytes([ULAW_SILENCE])
        return (
            bytes(first) + pad * (length - len(first)),
            bytes(second) + pad * (length - len(second)),
        )

    def wav(self, mode: RecordingMode = "mixed") -> bytes:
        first, second = self.tracks()
        if mode == "stereo":
            return g711_wav([first, second])
        return g711_wav([mix_ulaw(first, second)])
