"""Test media made on the spot: WAV files (``wave`` for PCM, G.711 headers by hand), PDF through
``ps2pdf`` and TIFF through Ghostscript's ``tiffg4`` device; and what a test checks after an
upload (rows and files)."""

from __future__ import annotations

import io
import math
import struct
import subprocess
import wave
from pathlib import Path

import httpx
from sqlalchemy import func, select

from callgate.fax.models import FaxJob, ReceivedFax
from callgate.services import Services
from callgate.sounds.models import Sound

PAGE_PS = """%!PS
/Helvetica findfont 24 scalefont setfont
72 720 moveto (Callgate test fax, page {page}) show
showpage
"""


def wav_pcm(
    seconds: float = 0.5, rate: int = 8000, channels: int = 1, sample_width: int = 2
) -> bytes:
    """A 440 Hz tone as linear PCM."""
    frames = int(seconds * rate)
    peak = 2 ** (8 * sample_width - 1) - 1
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(sample_width)
        writer.setframerate(rate)
        samples = bytearray()
        for n in range(frames):
            value = int(peak * 0.5 * math.sin(2 * math.pi * 440 * n / rate))
            if sample_width == 1:
                samples += bytes([value + 128]) * channels
            else:
                samples += value.to_bytes(sample_width, "little", signed=True) * channels
        writer.writeframes(bytes(samples))
    return out.getvalue()


def wav_by_hand(
    format_tag: int,
    *,
    seconds: float = 0.5,
    rate: int = 8000,
    bits: int = 8,
    channels: int = 1,
    data: bytes | None = None,
    data_size: int | None = None,
) -> bytes:
    """A WAV with any format tag (7 µ-law, 6 A-law, …), written field by field."""
    block = channels * bits // 8
    audio = data if data is not None else b"\xff" * int(seconds * rate) * block
    fmt = struct.pack("<HHIIHH", format_tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(audio) if data_size is None else data_size) + audio
    return b"RIFF" + struct.pack("<I", len(body)) + body


def make_pdf(folder: Path, pages: int = 1) -> Path:
    source = folder / f"doc{pages}.ps"
    source.write_text("".join(PAGE_PS.format(page=n + 1) for n in range(pages)))
    target = folder / f"doc{pages}.pdf"
    subprocess.run(["ps2pdf", str(source), str(target)], check=True, timeout=60)
    return target


def make_tiff(pdf: Path) -> Path:
    target = pdf.with_suffix(".tif")
    subprocess.run(
        [
            "gs", "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=tiffg4", "-r204x196",
            "-sPAPERSIZE=a4", "-dFIXEDMEDIA", "-dPDFFitPage", f"-sOutputFile={target}", str(pdf),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    return target


def stored_files(services: Services) -> list[Path]:
    """Every file under the data directory, temporary upload files included."""
    root = services.settings.data_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def row_count(services: Services, model: type[Sound] | type[FaxJob] | type[ReceivedFax]) -> int:
    with services.database.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def multipart(
    fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]
) -> tuple[bytes, str]:
    """A multipart body as httpx builds it, and its Content-Type."""
    request = httpx.Request("POST", "http://127.0.0.1/", data=fields, files=files)
    return request.read(), request.headers["content-type"]
