"""API routes of recordings: ``/client/{id}/record/`` and ``/extension/{id}/record/``.

``GET …/record/{record_uuid}`` answers the WAV file itself, as the original API does
(``audio/wav``, ``Content-Disposition: attachment; filename="<record_uuid>.wav"``);
``GET …/record/{record_uuid}/info`` answers the same JSON object as the list. Deleting a
recording is a Call API operation and removes the file with the row.
"""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import FileResponse

from callgate.api.files import attachment
from callgate.calls.schemas import MAX_ID, PageRequest, PageRequestDep, TimeWindow, TimeWindowDep
from callgate.policy.http import ClientRealm, ExtensionRealmDep, PolicyRoute
from callgate.policy.operations import Operation, declare
from callgate.recordings.repository import RecordingFilter
from callgate.recordings.schemas import RecordOut
from callgate.recordings.service import RecordingService
from callgate.services import Services, get_services

router = APIRouter(route_class=PolicyRoute, tags=["recordings"])

ServicesDep = Annotated[Services, Depends(get_services)]
RecordUuid = Annotated[str, Path(max_length=64, description="The recording's record_uuid.")]

WAV_MEDIA_TYPE = "audio/wav"
WAV_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The WAV file, as an attachment named <uuid>.wav.",
        "content": {WAV_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}


def wav_download(path: FilePath, name: str) -> FileResponse:
    """A stored WAV as a download named ``<name>.wav``."""
    return attachment(path, WAV_MEDIA_TYPE, f"{name}.wav")


def _list(
    records: RecordingService,
    where: RecordingFilter,
    paging: PageRequest,
    response: Response,
) -> list[RecordOut]:
    result = records.list(
        where, page=paging.page, per_page=paging.per_page, newest_first=paging.newest_first
    )
    response.headers["X-Total-Count"] = str(result.total)
    return [RecordOut.of(view) for view in result.items]


def _filter(client_id: int, extension_id: int | None, window: TimeWindow) -> RecordingFilter:
    return RecordingFilter(client_id, extension_id, window.start, window.end)


# -- the client realm ------------------------------------------------------------------------------


@router.get("/client/{client_id}/record/", openapi_extra=declare(Operation.READ))
def list_client_records(
    client_id: ClientRealm,
    services: ServicesDep,
    response: Response,
    window: TimeWindowDep,
    paging: PageRequestDep,
    extension_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only recordings of this extension.")
    ] = None,
) -> list[RecordOut]:
    """The client's recordings (a JSON array, as in the original API), newest first."""
    return _list(services.recordings, _filter(client_id, extension_id, window), paging, response)


@router.get(
    "/client/{client_id}/record/{record_uuid}",
    response_class=FileResponse,
    responses=WAV_RESPONSES,
    openapi_extra=declare(Operation.READ),
)
def download_client_record(
    client_id: ClientRealm, record_uuid: RecordUuid, services: ServicesDep
) -> FileResponse:
    """The recording's WAV file."""
    recording, path = services.recordings.open(client_id, record_uuid)
    return wav_download(path, recording.record_uuid)


@router.get("/client/{client_id}/record/{record_uuid}/info", openapi_extra=declare(Operation.READ))
def get_client_record(
    client_id: ClientRealm, record_uuid: RecordUuid, services: ServicesDep
) -> RecordOut:
    """The recording's details, as in the list."""
    return RecordOut.of(services.recordings.get(client_id, record_uuid))


@router.delete(
    "/client/{client_id}/record/{record_uuid}",
    status_code=204,
    openapi_extra=declare(Operation.CALL_API),
)
def delete_client_record(
    client_id: ClientRealm, record_uuid: RecordUuid, services: ServicesDep
) -> Response:
    """Delete the recording and its file."""
    services.recordings.delete(client_id, record_uuid)
    return Response(status_code=204)


# -- the extension realm ---------------------------------------------------------------------------


@router.get("/extension/{extension_id}/record/", openapi_extra=declare(Operation.READ))
def list_extension_records(
    extension: ExtensionRealmDep,
    services: ServicesDep,
    response: Response,
    window: TimeWindowDep,
    paging: PageRequestDep,
) -> list[RecordOut]:
    """The extension's recordings, newest first."""
    where = _filter(extension.client_id, extension.id, window)
    return _list(services.recordings, where, paging, response)


@router.get(
    "/extension/{extension_id}/record/{record_uuid}",
    response_class=FileResponse,
    responses=WAV_RESPONSES,
    openapi_extra=declare(Operation.READ),
)
def download_extension_record(
    extension: ExtensionRealmDep, record_uuid: RecordUuid, services: ServicesDep
) -> FileResponse:
    """The recording's WAV file."""
    recording, path = services.recordings.open(extension.client_id, record_uuid, extension.id)
    return wav_download(path, recording.record_uuid)


@router.get(
    "/extension/{extension_id}/record/{record_uuid}/info", openapi_extra=declare(Operation.READ)
)
def get_extension_record(
    extension: ExtensionRealmDep, record_uuid: RecordUuid, services: ServicesDep
) -> RecordOut:
    """The recording's details, as in the list."""
    return RecordOut.of(services.recordings.get(extension.client_id, record_uuid, extension.id))


@router.delete(
    "/extension/{extension_id}/record/{record_uuid}",
    status_code=204,
    openapi_extra=declare(Operation.CALL_API),
)
def delete_extension_record(
    extension: ExtensionRealmDep, record_uuid: RecordUuid, services: ServicesDep
) -> Response:
    """Delete the recording and its file."""
    services.recordings.delete(extension.client_id, record_uuid, extension.id)
    return Response(status_code=204)
