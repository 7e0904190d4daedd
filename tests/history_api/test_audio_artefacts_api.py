"""Recordings and voicemail through the API — the same rules for both: list, details, download
(bytes and headers), delete with the file, a vanished file, realms and access levels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from callgate.recordings.models import Recording
from callgate.services import Services
from callgate.voicemail.models import Voicemail
from tests.api.conftest import ActAs
from tests.api.helpers import assert_error
from tests.history_api.conftest import add_call, at, pcm_wav
from tests.support.factories import World


@dataclass(frozen=True)
class Kind:
    """One artefact kind: its path segment, id field and how the engine stores one."""

    segment: str
    id_field: str
    model: type[Recording] | type[Voicemail]
    add: Callable[[Services, int, int, bytes, float], str]


def _add_recording(
    services: Services, client_id: int, extension_id: int, audio: bytes, minutes: float
) -> str:
    call = add_call(services, client_id, minutes, extension_id=extension_id)
    return services.recordings.add(
        client_id=client_id,
        extension_id=extension_id,
        call_uuid=call,
        audio=[audio[:100], audio[100:]],
        started_at=at(minutes),
    ).record_uuid


def _add_voicemail(
    services: Services, client_id: int, extension_id: int, audio: bytes, minutes: float
) -> str:
    return services.voicemail.add(
        client_id=client_id,
        extension_id=extension_id,
        audio=[audio],
        caller_id_number="+15550001",
        caller_id_name="Alice",
        left_at=at(minutes),
    ).uuid


KINDS = [
    Kind("record", "record_uuid", Recording, _add_recording),
    Kind("voicemail", "uuid", Voicemail, _add_voicemail),
]


@pytest.fixture(params=KINDS, ids=lambda kind: kind.segment)
def kind(request: pytest.FixtureRequest) -> Kind:
    value: Kind = request.param
    return value


@dataclass
class Stored:
    on101: str
    on102: str
    other: str
    audio: bytes


@pytest.fixture
def stored(services: Services, world: World, kind: Kind) -> Stored:
    audio = pcm_wav(1500)
    return Stored(
        on101=kind.add(services, world.client.id, world.ext101.id, audio, 0),
        on102=kind.add(services, world.client.id, world.ext102.id, pcm_wav(200), 10),
        other=kind.add(services, world.other_client.id, world.other_ext.id, audio, 5),
        audio=audio,
    )


def stored_path(services: Services, kind: Kind, uuid: str) -> Path:
    with services.database.read() as session:
        row = session.get(kind.model, uuid)
        assert isinstance(row, Recording | Voicemail)
        return services.files.path_of(row.storage_path)


def test_list_details_and_download(
    services: Services, world: World, act_as: ActAs, kind: Kind, stored: Stored
) -> None:
    api = act_as(world.reader)  # read_only: every GET is allowed
    listed = api.get(f"/client/@me/{kind.segment}/")
    assert listed.status_code == 200, listed.text
    assert listed.headers["x-total-count"] == "2"
    items = listed.json()
    assert [item[kind.id_field] for item in items] == [stored.on102, stored.on101]
    first = items[1]
    assert (first["duration"], first["duration_ms"]) == (1, 1500)
    assert first["extension_id"] == world.ext101.id
    assert first["client_owner_id"] == world.client.id
    assert first["file_name"] == f"{stored.on101}.wav"
    if kind.segment == "record":
        assert first["record_file_size"] == len(stored.audio)
        assert (first["flow"], first["init_time_gmt"]) == ("out", "2024-03-01 12:00:00")
        assert first["start_time_gmt"] == "2024-03-01 12:00:00"
    else:
        assert first["file_size"] == len(stored.audio)
        assert (first["caller_id_number"], first["heard"]) == ("+15550001", False)
        assert first["created"] == "2024-03-01 12:00:00"

    asc = api.get(f"/client/@me/{kind.segment}/", params={"order": "asc", "per_page": 1})
    assert [item[kind.id_field] for item in asc.json()] == [stored.on101]
    windowed = api.get(
        f"/client/@me/{kind.segment}/", params={"start_datetime": "2024-03-01 12:05:00"}
    )
    assert [item[kind.id_field] for item in windowed.json()] == [stored.on102]
    only101 = api.get(f"/client/@me/{kind.segment}/", params={"extension_id": world.ext101.id})
    assert [item[kind.id_field] for item in only101.json()] == [stored.on101]
    bad = api.get(f"/client/@me/{kind.segment}/", params={"end_datetime": "soon"})
    assert assert_error(bad, 422, "invalid_input")["fields"] == {
        "end_datetime": "is not a valid time"
    }

    info = api.get(f"/client/@me/{kind.segment}/{stored.on101}/info")
    assert info.status_code == 200 and info.json() == first

    download = api.get(f"/client/@me/{kind.segment}/{stored.on101}")
    assert download.status_code == 200
    assert download.content == stored.audio
    assert download.headers["content-type"] == "audio/wav"
    assert download.headers["content-disposition"] == f'attachment; filename="{stored.on101}.wav"'
    ext_download = act_as(world.ext_user).get(f"/extension/@me/{kind.segment}/{stored.on101}")
    assert ext_download.content == stored.audio


def test_delete_removes_row_and_file(
    services: Services, world: World, act_as: ActAs, kind: Kind, stored: Stored
) -> None:
    path = stored_path(services, kind, stored.on101)
    assert path.read_bytes() == stored.audio
    api = act_as(world.manager, "call_api")  # deleting is a Call API operation
    target = f"/client/{world.client.id}/{kind.segment}/{stored.on101}"
    deleted = api.delete(target)
    assert deleted.status_code == 204 and deleted.content == b""
    assert not path.exists()
    with services.database.read() as session:
        assert session.get(kind.model, stored.on101) is None
    assert_error(api.delete(target), 404, "not_found")
    assert_error(api.get(target), 404, "not_found")
    assert_error(api.get(f"{target}/info"), 404, "not_found")
    # Through its own realm, an extension user cannot reach another extension's item.
    mine = act_as(world.ext_user)
    assert_error(mine.delete(f"/extension/@me/{kind.segment}/{stored.on102}"), 404, "not_found")
    assert stored_path(services, kind, stored.on102).exists()


def test_a_vanished_file_is_a_clean_404(
    services: Services, world: World, act_as: ActAs, kind: Kind, stored: Stored
) -> None:
    stored_path(services, kind, stored.on101).unlink()
    api = act_as(world.manager)
    body = assert_error(api.get(f"/client/@me/{kind.segment}/{stored.on101}"), 404, "not_found")
    assert set(body) == {"status", "message"}
    # The row is still listed and may still be deleted.
    assert api.get(f"/client/@me/{kind.segment}/{stored.on101}/info").status_code == 200
    assert api.delete(f"/client/@me/{kind.segment}/{stored.on101}").status_code == 204


def test_levels_and_realms(
    services: Services, world: World, act_as: ActAs, kind: Kind, stored: Stored
) -> None:
    own = f"/client/{world.client.id}/{kind.segment}/{stored.on101}"
    reader = act_as(world.reader, "all")
    assert_error(reader.delete(own), 403, "user_access_type_deny")
    ext_user = act_as(world.ext_user)
    assert_error(ext_user.get(f"/client/{world.client.id}/{kind.segment}/"), 403, "access_denied")
    assert_error(
        ext_user.get(f"/extension/{world.ext102.id}/{kind.segment}/"), 403, "access_denied"
    )
    listed = ext_user.get(f"/extension/@me/{kind.segment}/").json()
    assert [item[kind.id_field] for item in listed] == [stored.on101]
    # Another extension's item under one's own extension, and another client's item under
    # one's own client: not there (404). Another client's realm: refused (403).
    assert_error(ext_user.get(f"/extension/@me/{kind.segment}/{stored.on102}"), 404, "not_found")
    manager = act_as(world.manager, "all")
    mine_path = f"/client/@me/{kind.segment}/{stored.other}"
    assert_error(manager.get(mine_path), 404, "not_found")
    assert_error(manager.delete(mine_path), 404, "not_found")
    other = f"/client/{world.other_client.id}/{kind.segment}/{stored.other}"
    assert_error(manager.get(other), 403, "access_denied")
    assert_error(manager.delete(other), 403, "access_denied")
    assert stored_path(services, kind, stored.other).exists()
    assert act_as(world.admin, "all").delete(other).status_code == 204
