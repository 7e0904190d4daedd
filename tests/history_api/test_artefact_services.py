"""What the engine's services accept when storing recordings and voicemail: real WAV files only
(PCM or µ-law), extensions of the right client, one row per id; a refusal leaves no file."""

from __future__ import annotations

from pathlib import Path

import pytest

from callgate.common.errors import Conflict, InvalidInput
from callgate.recordings.models import Recording
from callgate.services import Services
from callgate.voicemail.models import Voicemail
from tests.history_api.conftest import pcm_wav, ulaw_wav
from tests.support.factories import World


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_mu_law_and_pcm_lengths_are_read_from_the_header(services: Services, world: World) -> None:
    ulaw = services.recordings.add(client_id=world.client.id, audio=[ulaw_wav(2250)])
    assert (ulaw.duration_ms, ulaw.size_bytes) == (2250, len(ulaw_wav(2250)))
    assert ulaw.extension_id is None and len(ulaw.record_uuid) == 32
    wide = services.voicemail.add(
        client_id=world.client.id, extension_id=world.ext101.id, audio=[pcm_wav(500, rate=16000)]
    )
    assert wide.duration_ms == 500
    stored = services.files.path_of(wide.storage_path)
    assert stored.read_bytes() == pcm_wav(500, rate=16000)
    assert stored.is_relative_to(services.settings.data_dir.resolve() / "voicemail")


@pytest.mark.parametrize(
    "audio",
    [b"", b"not a wav at all", b"RIFF\x00\x00\x00\x00WAVEdata\x00\x00\x00\x00", pcm_wav(100)[:30]],
)
def test_bad_audio_is_refused_and_leaves_nothing(
    services: Services, world: World, audio: bytes
) -> None:
    with pytest.raises(InvalidInput) as refused:
        services.recordings.add(client_id=world.client.id, audio=[audio])
    assert "audio" in refused.value.fields
    with pytest.raises(InvalidInput):
        services.voicemail.add(
            client_id=world.client.id, extension_id=world.ext101.id, audio=[audio]
        )
    assert files_under(services.settings.data_dir) == []
    with services.database.read() as session:
        assert session.query(Recording).count() == session.query(Voicemail).count() == 0


def test_wrong_extension_or_id_is_refused_and_leaves_nothing(
    services: Services, world: World
) -> None:
    with pytest.raises(InvalidInput) as refused:
        services.recordings.add(
            client_id=world.client.id, extension_id=world.other_ext.id, audio=[pcm_wav(100)]
        )
    assert refused.value.fields == {"extension_id": "not in this client"}
    with pytest.raises(InvalidInput):
        services.voicemail.add(
            client_id=world.client.id, extension_id=world.other_ext.id, audio=[pcm_wav(100)]
        )
    with pytest.raises(InvalidInput):
        services.recordings.add(
            client_id=world.client.id, audio=[pcm_wav(100)], record_uuid="../../etc"
        )
    assert files_under(services.settings.data_dir) == []


def test_an_id_is_stored_once_and_the_first_file_survives(services: Services, world: World) -> None:
    first = services.recordings.add(
        client_id=world.client.id, audio=[pcm_wav(300)], record_uuid="rec-1"
    )
    with pytest.raises(Conflict):
        services.recordings.add(
            client_id=world.client.id, audio=[pcm_wav(900)], record_uuid="rec-1"
        )
    assert files_under(services.settings.data_dir) == [services.files.path_of(first.storage_path)]
    assert services.files.path_of(first.storage_path).read_bytes() == pcm_wav(300)
