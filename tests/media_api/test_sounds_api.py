"""Sounds through the API: upload, list, metadata, download, delete; who may write them."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from callgate.services import Services
from callgate.sounds.models import Sound
from tests.api.helpers import assert_error
from tests.media_api.conftest import ActAs
from tests.media_api.media import row_count, stored_files, wav_by_hand, wav_pcm
from tests.support.factories import World


def test_sound_lifecycle(services: Services, world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    sounds = f"/client/{world.client.id}/sound/"
    audio = wav_pcm(seconds=1.5, rate=16000)
    created = api.post(
        sounds, data={"name": "Welcome greeting"}, files={"file": ("hello.wav", audio, "audio/wav")}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "Welcome greeting" and body["client_id"] == world.client.id
    assert (body["format"], body["sample_rate"], body["channels"]) == ("pcm16", 16000, 1)
    assert body["duration"] == 1.5 and body["size"] == len(audio)
    sound = f"{sounds}{body['id']}"

    assert api.get(sound).json() == body
    listed = api.get(sounds)
    assert listed.headers["x-total-count"] == "1" and listed.json() == [body]

    download = api.get(f"{sound}/file")
    assert download.status_code == 200
    assert download.content == audio
    assert download.headers["content-type"] == "audio/wav"
    assert download.headers["content-disposition"] == (
        'attachment; filename="Welcome greeting.wav"'
    )
    assert len(stored_files(services)) == 1

    deleted = api.delete(sound)
    assert deleted.status_code == 204 and deleted.content == b""
    assert stored_files(services) == [] and row_count(services, Sound) == 0
    assert_error(api.get(sound), 404, "not_found")
    assert_error(api.get(f"{sound}/file"), 404, "not_found")
    assert_error(api.delete(sound), 404, "not_found")


@pytest.mark.parametrize(
    ("audio", "expected"),
    [
        (wav_by_hand(7, seconds=2), ("ulaw", 8000, 2.0)),
        (wav_by_hand(6, seconds=1, rate=16000), ("alaw", 16000, 1.0)),
        (wav_pcm(seconds=0.25, rate=48000), ("pcm16", 48000, 0.25)),
    ],
    ids=["ulaw", "alaw", "pcm48k"],
)
def test_accepted_formats(
    world: World, act_as: ActAs, audio: bytes, expected: tuple[str, int, float]
) -> None:
    api = act_as(world.admin, "all")
    created = api.post(
        f"/client/{world.client.id}/sound/", files={"file": ("prompt.wav", audio, "audio/wav")}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["format"], body["sample_rate"], body["duration"]) == expected
    # Without a name field the file's name without its extension is the sound's name.
    assert body["name"] == "prompt"
    assert api.get(f"/client/{world.client.id}/sound/{body['id']}/file").content == audio


def test_list_pages_and_client_separation(world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    sounds = f"/client/{world.client.id}/sound/"
    for name in ("one", "two", "three"):
        files = {"file": (f"{name}.wav", wav_pcm(0.1), "audio/wav")}
        assert api.post(sounds, files=files).status_code == 201
    page = api.get(sounds, params={"page": 2, "per_page": 2})
    assert page.headers["x-total-count"] == "3"
    assert [item["name"] for item in page.json()] == ["three"]

    other = act_as(world.other_manager, "all")
    assert other.get(f"/client/{world.other_client.id}/sound/").json() == []
    first = page.json()[0]["id"]
    assert_error(other.get(f"{sounds}{first}"), 403, "access_denied")
    # The sound exists, but not under the other client: 404, not someone else's file.
    other_sounds = f"/client/{world.other_client.id}/sound/{first}"
    assert_error(other.get(other_sounds), 404, "not_found")
    assert_error(other.get(f"{other_sounds}/file"), 404, "not_found")
    assert_error(other.delete(other_sounds), 404, "not_found")


def test_who_may_upload(services: Services, world: World, act_as: ActAs) -> None:
    sounds = f"/client/{world.client.id}/sound/"
    files = {"file": ("a.wav", wav_pcm(0.1), "audio/wav")}
    # Sounds are configuration: a Call API application may read them but not write them.
    call_api = act_as(world.manager, "call_api")
    assert_error(call_api.post(sounds, files=files), 403, "app_access_type_deny")
    assert call_api.get(sounds).status_code == 200
    reader = act_as(world.reader, "all")
    assert_error(reader.post(sounds, files=files), 403, "user_access_type_deny")
    # An extension user has no /client/ realm.
    assert_error(act_as(world.ext_user, "all").get(sounds), 403, "access_denied")
    assert row_count(services, Sound) == 0 and stored_files(services) == []

    created = act_as(world.manager, "all").post(sounds, files=files).json()
    assert_error(call_api.delete(f"{sounds}{created['id']}"), 403, "app_access_type_deny")
    assert row_count(services, Sound) == 1


def test_a_vanished_file_is_a_clean_404(services: Services, world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    sounds = f"/client/{world.client.id}/sound/"
    created = api.post(sounds, files={"file": ("a.wav", wav_pcm(0.1), "audio/wav")}).json()
    for path in stored_files(services):
        path.unlink()
    body = assert_error(api.get(f"{sounds}{created['id']}/file"), 404, "not_found")
    assert "missing" in body["message"]
    # The row can still be deleted.
    assert api.delete(f"{sounds}{created['id']}").status_code == 204


def test_names_are_stored_as_given(services: Services, world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    name = "Ансамбль '; DROP TABLE sounds; -- <b>"
    created = api.post(
        f"/client/{world.client.id}/sound/",
        data={"name": name},
        files={"file": ("a.wav", wav_pcm(0.1), "audio/wav")},
    )
    assert created.status_code == 201, created.text
    with services.database.read() as session:
        assert session.scalars(select(Sound.name)).all() == [name]
    download = api.get(f"/client/{world.client.id}/sound/{created.json()['id']}/file")
    # Non-ASCII names travel as RFC 6266 filename* after an ASCII stand-in; the quote and the
    # semicolons of the name never reach the header.
    assert download.headers["content-disposition"] == (
        "attachment; filename=\"________ ' DROP TABLE sounds -- <b>.wav\"; filename*=UTF-8''"
        "%D0%90%D0%BD%D1%81%D0%B0%D0%BC%D0%B1%D0%BB%D1%8C%20%27%20DROP%20TABLE%20sounds%20--%20"
        "%3Cb%3E.wav"
    )
