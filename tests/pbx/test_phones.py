"""The phone rig itself: tone files and the audio checks measure what they should, and phones
of several extensions register to a running PBX (no calls needed)."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import pytest

from callgate.media import g711
from callgate.services import Services
from tests.pbx.baresip import AVAILABLE
from tests.pbx.phones import (
    PhoneSpec,
    dominant_frequency,
    ensure_extension,
    has_tone,
    make_tones,
    pbx_with_phones,
    read_samples,
    tone_seen,
)
from tests.support.factories import World


def test_tone_files_are_8khz_mono_16bit_of_the_right_frequency(tmp_path: Path) -> None:
    tones = make_tones(tmp_path)
    for path, hz in ((tones.a440, 440), (tones.a1000, 1000)):
        with wave.open(str(path)) as wav:
            assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        found = dominant_frequency(path, start=1.0)
        assert found is not None and abs(found - hz) < 2, (path.name, found)
        assert has_tone(path, hz, 5) and tone_seen(path, hz)
    assert not has_tone(tones.a440, 1000) and not tone_seen(tones.a440, 1000)


def test_silence_and_mixtures_have_no_dominant_tone() -> None:
    silence = [0] * 4000
    assert dominant_frequency(silence, start=0) is None and not has_tone(silence, 440, start=0)
    mix = [a + b for a, b in zip(g711.tone(440, 0.5), g711.tone(1000, 0.5), strict=True)]
    assert dominant_frequency(mix, start=0) is None
    quiet = list(g711.tone(440, 0.5, amplitude=0.001))
    assert dominant_frequency(quiet, start=0) is None


def test_a_recording_in_progress_is_read_to_its_end(tmp_path: Path) -> None:
    """libsndfile writes the data size only on close: a size of 0 means "to the end"."""
    tones = make_tones(tmp_path)
    data = bytearray(tones.a1000.read_bytes())
    offset = data.index(b"data")
    data[offset + 4 : offset + 8] = b"\0\0\0\0"
    partial = tmp_path / "partial.wav"
    partial.write_bytes(bytes(data))
    assert len(read_samples(partial)) == len(read_samples(tones.a1000))
    assert has_tone(partial, 1000)
    with pytest.raises(ValueError, match="not a RIFF"):
        (tmp_path / "junk.wav").write_bytes(b"junk")
        read_samples(tmp_path / "junk.wav")


@pytest.mark.skipif(not AVAILABLE, reason="needs Debian's baresip")
def test_three_phones_register_and_answer_commands(
    services: Services, world: World, tmp_path: Path
) -> None:
    tones = make_tones(tmp_path)
    ext103 = ensure_extension(services, world.client.id, "103")
    assert ensure_extension(services, world.client.id, "103").id == ext103.id
    specs = [
        PhoneSpec(world.ext101, tones.a440),
        PhoneSpec(world.ext102, tones.a1000, "manual"),
        PhoneSpec(ext103, tones.a440),
    ]

    async def main() -> None:
        async with pbx_with_phones(services, specs, tmp_path) as rig:
            registrar = rig.pbx.service.registrar
            for name in ("101", "102", "103"):
                phone = rig[name]
                assert phone.user == f"{world.client.prefix}*{name}"
                bindings = registrar.bindings.lookup(phone.user, rig.pbx.service.clock())
                assert [b.source for b in bindings] == [("127.0.0.1", phone.sip_port)]
                assert "OK" in await phone.command("reginfo")
            with pytest.raises(TimeoutError, match="CALL_INCOMING"):
                await rig["101"].wait_event("CALL_INCOMING", limit=0.2)
        for phone in rig.phones.values():
            assert phone.baresip.process is not None
            assert phone.baresip.process.returncode is not None

    asyncio.run(asyncio.wait_for(main(), timeout=60))
