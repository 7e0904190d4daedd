"""Bad uploads: every refusal is a clear 4xx naming what was wrong, and writes nothing — no row,
no file (temporary ones included) under the data directory."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from callgate.identity.models import Client
from callgate.services import Services
from callgate.sounds.models import Sound
from tests.api.helpers import assert_error
from tests.media_api.conftest import ActAs
from tests.media_api.media import multipart, row_count, stored_files, wav_by_hand, wav_pcm
from tests.support.factories import World

BAD_WAVS = {
    "empty": (b"", "empty"),
    "not a wav": (b"just some text, clearly not audio", "not a WAV"),
    "stereo": (wav_pcm(0.2, channels=2), "mono"),
    "44.1 kHz": (wav_pcm(0.2, rate=44100), "sample rate 44100"),
    "8-bit pcm": (wav_pcm(0.2, sample_width=1), "16 bits"),
    "float": (wav_by_hand(3, bits=32), "audio format 3"),
    "16-bit ulaw": (wav_by_hand(7, bits=16), "8 bits"),
    "no audio": (wav_by_hand(7, data=b""), "no audio"),
    "truncated": (wav_by_hand(7, data_size=100000), "truncated"),
    "no data chunk": (wav_by_hand(7)[:36], "no data chunk"),
}


def _assert_nothing_written(services: Services) -> None:
    assert row_count(services, Sound) == 0
    assert stored_files(services) == []


@pytest.fixture
def sounds_url(world: World) -> str:
    return f"/client/{world.client.id}/sound/"


@pytest.mark.parametrize("case", list(BAD_WAVS), ids=list(BAD_WAVS))
def test_a_bad_wav_is_refused_and_nothing_is_written(
    services: Services, world: World, act_as: ActAs, sounds_url: str, case: str
) -> None:
    audio, words = BAD_WAVS[case]
    answer = act_as(world.manager, "all").post(
        sounds_url, data={"name": case}, files={"file": ("x.wav", audio, "audio/wav")}
    )
    body = assert_error(answer, 422, "invalid_input")
    assert "file" in body["fields"] and words in body["message"], body
    _assert_nothing_written(services)


def test_size_and_duration_limits(
    services: Services, world: World, act_as: ActAs, sounds_url: str
) -> None:
    api = act_as(world.manager, "all")
    services.settings.sound_max_seconds = 1
    long = api.post(sounds_url, files={"file": ("long.wav", wav_pcm(1.5), "audio/wav")})
    assert "limit is 1 s" in assert_error(long, 422, "invalid_input")["message"]
    _assert_nothing_written(services)

    services.settings.sound_max_bytes = 8000
    # 80 kB: refused on its Content-Length, past the limit and the framing allowance, unread.
    sized = api.post(sounds_url, files={"file": ("big.wav", wav_pcm(5), "audio/wav")})
    assert assert_error(sized, 422, "invalid_input")["fields"] == {"file": "too large"}
    audio = wav_pcm(0.9)  # about 14 kB
    body, content_type = multipart({}, {"file": ("big.wav", audio, "audio/wav")})
    services.settings.sound_max_bytes = len(body) - 1000  # within the framing allowance

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 1024):
            yield body[start : start + 1024]

    # Without a Content-Length the file streams until it passes the limit.
    for content in (body, chunks()):
        answer = api.post(sounds_url, content=content, headers={"Content-Type": content_type})
        refused = assert_error(answer, 422, "invalid_input")
        assert refused["fields"] == {"file": "too large"}
        assert f"limit of {len(body) - 1000} bytes" in refused["message"]
        _assert_nothing_written(services)


def test_the_storage_quota(
    services: Services, world: World, act_as: ActAs, sounds_url: str
) -> None:
    with services.database.write() as session:
        client = session.get(Client, world.client.id)
        assert client is not None
        client.storage_quota_mb = 1
    api = act_as(world.manager, "all")
    audio = wav_pcm(40)  # 640 kB: one fits in 1 MB, two do not
    assert api.post(sounds_url, files={"file": ("a.wav", audio, "audio/wav")}).status_code == 201
    refused = api.post(sounds_url, files={"file": ("b.wav", audio, "audio/wav")})
    assert "1 MB storage quota" in assert_error(refused, 422, "invalid_input")["message"]
    assert row_count(services, Sound) == 1 and len(stored_files(services)) == 1
    # Another client's quota is its own.
    other = act_as(world.other_manager, "all")
    other_url = f"/client/{world.other_client.id}/sound/"
    assert other.post(other_url, files={"file": ("b.wav", audio, "audio/wav")}).status_code == 201


MALFORMED = {
    "no boundary": ("multipart/form-data", b"--x\r\n"),
    "garbage": ("multipart/form-data; boundary=x", b"this is not multipart at all"),
    "bad part header": (
        "multipart/form-data; boundary=x",
        b"--x\r\nContent-Disposition form-data\r\n\r\nabc\r\n--x--\r\n",
    ),
    "truncated": (
        "multipart/form-data; boundary=x",
        b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        + wav_pcm(0.1),
    ),
    "no name": (
        "multipart/form-data; boundary=x",
        b'--x\r\nContent-Disposition: form-data; filename="a.wav"\r\n\r\nRIFF\r\n--x--\r\n',
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_malformed_multipart_is_a_422(
    services: Services, world: World, act_as: ActAs, sounds_url: str, case: str
) -> None:
    content_type, content = MALFORMED[case]
    answer = act_as(world.manager, "all").post(
        sounds_url, content=content, headers={"Content-Type": content_type}
    )
    body = assert_error(answer, 422, "invalid_input")
    assert "body" in body["fields"] or "file" in body["fields"], body
    _assert_nothing_written(services)


def test_fields_and_body_types(
    services: Services, world: World, act_as: ActAs, sounds_url: str
) -> None:
    api = act_as(world.manager, "all")
    wav = ("a.wav", wav_pcm(0.1), "audio/wav")

    def refused(answer: httpx.Response, field: str) -> None:
        body = assert_error(answer, 422, "invalid_input")
        assert field in body["fields"], body
        _assert_nothing_written(services)

    # Parts without a filename are text fields.
    refused(api.post(sounds_url, files={"name": (None, "no file")}), "file")
    refused(
        api.post(sounds_url, data={"name": "x", "colour": "red"}, files={"file": wav}), "colour"
    )
    refused(api.post(sounds_url, files={"file": (None, "not a file part")}), "file")
    refused(api.post(sounds_url, data={"name": " "}, files={"file": wav}), "name")
    refused(api.post(sounds_url, data={"name": "x" * 201}, files={"file": wav}), "name")
    refused(api.post(sounds_url, data={"name": "a\x07b"}, files={"file": wav}), "name")
    refused(api.post(sounds_url, files=[("file", wav), ("file", wav)]), "file")
    for content_type, content in (
        ("application/json", b'{"name": "x"}'),
        ("application/x-www-form-urlencoded", b"name=x"),
        ("audio/wav", wav_pcm(0.1)),
    ):
        answer = api.post(sounds_url, content=content, headers={"Content-Type": content_type})
        assert (
            "multipart/form-data" in assert_error(answer, 415, "unsupported_media_type")["message"]
        )
    _assert_nothing_written(services)
