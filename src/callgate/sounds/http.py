"""API routes of sounds: ``/client/{client_id}/sound/``.

Uploading and deleting sounds is configuration (level ``all``). The upload is
``multipart/form-data`` with a ``file`` part (the WAV) and an optional ``name`` field, read as
it arrives by ``api/files.py`` so that the file streams to disk under its size limit.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse

from callgate.api.files import (
    attachment,
    multipart_request_body,
    receive_upload,
    safe_filename,
    upload_responses,
)
from callgate.api.schemas import MAX_PER_PAGE
from callgate.common.errors import InvalidInput
from callgate.policy.http import ClientRealm, PolicyRoute
from callgate.policy.operations import Operation, declare
from callgate.services import ServicesDep
from callgate.sounds.schemas import SoundOut
from callgate.sounds.wav import looks_like_wav

router = APIRouter(route_class=PolicyRoute, tags=["sounds"])


_UPLOAD_BODY = multipart_request_body(
    {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "A mono WAV: 16-bit PCM, A-law or µ-law at 8000, 16000 or 48000 Hz.",
        },
        "name": {
            "type": "string",
            "maxLength": 200,
            "description": "The sound's name; the file's name without extension when left out.",
        },
    },
    ["file"],
)
_WAV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}}}
}


def _check_wav_head(head: bytes) -> None:
    problem = looks_like_wav(head)
    if problem is not None:
        raise InvalidInput(problem, {"file": problem})


@router.get("/client/{client_id}/sound/", openapi_extra=declare(Operation.READ))
def list_sounds(
    client_id: ClientRealm,
    services: ServicesDep,
    response: Response,
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = 50,
) -> list[SoundOut]:
    """The client's sounds, oldest first."""
    result = services.sounds.list_for_client(client_id, page, per_page)
    response.headers["X-Total-Count"] = str(result.total)
    return [SoundOut.of(sound) for sound in result.items]


@router.post(
    "/client/{client_id}/sound/",
    status_code=201,
    openapi_extra={**declare(Operation.CONFIG), **_UPLOAD_BODY},
    responses=upload_responses("The stored sound."),
)
async def upload_sound(client_id: ClientRealm, request: Request, services: ServicesDep) -> SoundOut:
    """Upload a WAV file (multipart/form-data: ``file``, optional ``name``)."""
    sounds = services.sounds
    plan = await run_in_threadpool(sounds.plan_upload, client_id)
    upload = await receive_upload(
        request,
        store=services.files,
        relative=plan.relative,
        file_field="file",
        text_fields=frozenset({"name"}),
        max_bytes=plan.max_bytes,
        too_large=plan.too_large,
        check_head=_check_wav_head,
        head_size=12,
    )
    sound = await run_in_threadpool(
        lambda: sounds.create(
            plan,
            name=upload.fields.get("name"),
            filename=upload.filename or "",
            size=upload.size,
        )
    )
    return SoundOut.of(sound)


@router.get("/client/{client_id}/sound/{sound_id}", openapi_extra=declare(Operation.READ))
def get_sound(client_id: ClientRealm, sound_id: int, services: ServicesDep) -> SoundOut:
    return SoundOut.of(services.sounds.get(client_id, sound_id))


@router.get(
    "/client/{client_id}/sound/{sound_id}/file",
    openapi_extra=declare(Operation.READ),
    response_class=FileResponse,
    responses=_WAV,
)
def download_sound(client_id: ClientRealm, sound_id: int, services: ServicesDep) -> FileResponse:
    """The WAV file itself."""
    sound, path = services.sounds.file_of(client_id, sound_id)
    filename = safe_filename(sound.name, f"sound-{sound.id}")
    if not filename.lower().endswith(".wav"):
        filename += ".wav"
    return attachment(path, "audio/wav", filename)


@router.delete(
    "/client/{client_id}/sound/{sound_id}",
    status_code=204,
    openapi_extra=declare(Operation.CONFIG),
)
def delete_sound(client_id: ClientRealm, sound_id: int, services: ServicesDep) -> Response:
    """Delete the sound and its file."""
    services.sounds.delete(client_id, sound_id)
    return Response(status_code=204)
