"""A local RTP source (music on hold, announcements), sans-I/O: the caller supplies the time.

A :class:`Player` cuts G.711 audio into 20 ms frames and turns them into RTP packets with its own
SSRC, a sequence number and timestamp that only ever increase, and the marker bit on the first
packet. It reads no clock: the asyncio layer (:mod:`callgate.media.relay`) asks
:meth:`Player.due` for the packets whose send time has come and schedules itself at
:attr:`Player.next_deadline`. Deadlines are ``start + n * ptime`` (no drift); when the loop falls
more than :attr:`Player.max_burst` frames behind, the timestamps of the missed frames are
skipped, so the receiver sees a gap rather than a burst (the audio resumes where it was, so an
announcement loses no words). The leg that sends the packets rewrites their SSRC, sequence number
and timestamp into its one output stream (:mod:`callgate.media.leg`), so the phone never sees the
player's own SSRC.
"""

from __future__ import annotations

from callgate.media.g711 import Law
from callgate.media.rtp import RtpStream
from callgate.media.wav import G711Audio

LAW_OF_PAYLOAD_TYPE: dict[int, Law] = {0: "ulaw", 8: "alaw"}


class Player:
    def __init__(
        self,
        audio: G711Audio,
        payload_type: int = 0,
        *,
        ssrc: int,
        sequence: int = 0,
        timestamp: int = 0,
        loop: bool = True,
        ptime_ms: int = 20,
        max_burst: int = 5,
    ) -> None:
        law = LAW_OF_PAYLOAD_TYPE.get(payload_type)
        if law is None:
            raise ValueError(
                f"a player sends PCMU (0) or PCMA (8), not payload type {payload_type}"
            )
        if not audio.data:
            raise ValueError("no audio to play")
        self._data = audio.as_law(law).data
        self.samples_per_frame = 8 * ptime_ms
        self.ptime = ptime_ms / 1000.0
        self.stream = RtpStream(ssrc, payload_type, sequence & 0xFFFF, timestamp & 0xFFFFFFFF)
        self.loop = loop
        self.max_burst = max_burst
        self._position = 0
        self._start: float | None = None
        self._frames_sent = 0
        self.finished = False

    @property
    def next_deadline(self) -> float | None:
        """When the next packet is due (None before :meth:`start` or once finished)."""
        if self._start is None or self.finished:
            return None
        return self._start + self._frames_sent * self.ptime

    def start(self, now: float) -> None:
        self._start = now
        self._frames_sent = 0

    def _frame(self) -> bytes | None:
        size = self.samples_per_frame
        data = self._data
        out = bytearray()
        while len(out) < size:
            if self._position >= len(data):
                if not self.loop:
                    break
                # Wrap around so that every frame is full and a looped tone stays continuous.
                self._position = 0
            piece = data[self._position : self._position + size - len(out)]
            out += piece
            self._position += len(piece)
        if not out:
            return None
        silence = 0xFF if self.stream.payload_type == 0 else 0xD5
        out += bytes([silence]) * (size - len(out))
        return bytes(out)

    def due(self, now: float) -> list[bytes]:
        """The packets to send now; empty when nothing is due yet."""
        deadline = self.next_deadline
        if deadline is None or now < deadline:
            return []
        start = self._start
        assert start is not None
        # Index of the latest frame due; the epsilon keeps float error from losing a frame.
        latest = int((now - start) / self.ptime + 1e-6)
        behind = latest - self._frames_sent + 1
        if behind > self.max_burst:
            skipped = behind - 1
            self._frames_sent += skipped
            self.stream.timestamp = (
                self.stream.timestamp + skipped * self.samples_per_frame
            ) & 0xFFFFFFFF
            behind = 1
        out = []
        for _ in range(behind):
            frame = self._frame()
            if frame is None:
                self.finished = True
                break
            out.append(self.stream.packet(frame, self.samples_per_frame))
            self._frames_sent += 1
        return out
