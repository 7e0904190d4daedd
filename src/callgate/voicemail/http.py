"""API routes of voicemail: ``/client/{id}/voicemail/`` and ``/extension/{id}/voicemail/``.

As with recordings, ``GET …/voicemail/{uuid}`` answers the WAV file, ``…/{uuid}/info`` the JSON
object of the list, and ``DELETE`` (a Call API operation) removes the message and its file.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import FileResponse

from callgate.calls.schemas import MAX_ID, PageRequest, PageRequestDep, TimeWindow, TimeWindowDep
from callgate.policy.http import ClientRealm, ExtensionRealmDep, PolicyRoute
from callgate.policy.operations import Operation, declare
from callgate.recordings.http import WAV_RESPONSES, wav_download
from callgate.services import Services, get_services
from callgate.voicemail.repository import VoicemailFilter
from callgate.voicemail.schemas import VoicemailOut
from callgate.voicemail.service import VoicemailService

router = APIRouter(route_class=PolicyRoute, tags=["voicemail"])

ServicesDep = Annotated[Services, Depends(get_services)]
MessageUuid = Annotated[str, Path(max_length=64, description="The message's uuid.")]


def _list(
    voicemail: VoicemailService, where: VoicemailFilter, paging: PageRequest, response: Response
) -> list[VoicemailOut]:
    result = voicemail.list(
        where, page=paging.page, per_page=paging.per_page, newest_first=paging.newest_first
    )
    response.headers["X-Total-Count"] = str(result.total)
    return [VoicemailOut.of(message) for message in result.items]


def _filter(client_id: int, extension_id: int | None, window: TimeWindow) -> VoicemailFilter:
    return VoicemailFilter(client_id, extension_id, window.start, window.end)


# -- the client realm ------------------------------------------------------------------------------


@router.get("/client/{client_id}/voicemail/", openapi_extra=declare(Operation.READ))
def list_client_voicemail(
    client_id: ClientRealm,
    services: ServicesDep,
    response: Response,
    window: TimeWindowDep,
    paging: PageRequestDep,
    extension_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only messages for this extension.")
    ] = None,
) -> list[VoicemailOut]:
    """Voicemail messages of the client's extensions, newest first."""
    return _list(services.voicemail, _filter(client_id, extension_id, window), paging, response)


@router.get(
    "/client/{client_id}/voicemail/{uuid}",
    response_class=FileResponse,
    responses=WAV_RESPONSES,
    openapi_extra=declare(Operation.READ),
)
def download_client_voicemail(
    client_id: ClientRealm, uuid: MessageUuid, services: ServicesDep
) -> FileResponse:
    """The message's WAV file."""
    message, path = services.voicemail.open(client_id, uuid)
    return wav_download(path, message.uuid)


@router.get("/client/{client_id}/voicemail/{uuid}/info", openapi_extra=declare(Operation.READ))
def get_client_voicemail(
    client_id: ClientRealm, uuid: MessageUuid, services: ServicesDep
) -> VoicemailOut:
    """The message's details, as in the list."""
    return VoicemailOut.of(services.voicemail.get(client_id, uuid))


@router.delete(
    "/client/{client_id}/voicemail/{uuid}",
    status_code=204,
    openapi_extra=declare(Operation.CALL_API),
)
def delete_client_voicemail(
    client_id: ClientRealm, uuid: MessageUuid, services: ServicesDep
) -> Response:
    """Delete the message and its file."""
    services.voicemail.delete(client_id, uuid)
    return Response(status_code=204)


# -- the extension realm ---------------------------------------------------------------------------


@router.get("/extension/{extension_id}/voicemail/", openapi_extra=declare(Operation.READ))
def list_extension_voicemail(
    extension: ExtensionRealmDep,
    services: ServicesDep,
    response: Response,
    window: TimeWindowDep,
    paging: PageRequestDep,
) -> list[VoicemailOut]:
    """Voicemail messages left for the extension, newest first."""
    where = _filter(extension.client_id, extension.id, window)
    return _list(services.voicemail, where, paging, response)


@router.get(
    "/extension/{extension_id}/voicemail/{uuid}",
    response_class=FileResponse,
    responses=WAV_RESPONSES,
    openapi_extra=declare(Operation.READ),
)
def download_extension_voicemail(
    extension: ExtensionRealmDep, uuid: MessageUuid, services: ServicesDep
) -> FileResponse:
    """The message's WAV file."""
    message, path = services.voicemail.open(extension.client_id, uuid, extension.id)
    return wav_download(path, message.uuid)


@router.get(
    "/extension/{extension_id}/voicemail/{uuid}/info", openapi_extra=declare(Operation.READ)
)
def get_extension_voicemail(
    extension: ExtensionRealmDep, uuid: MessageUuid, services: ServicesDep
) -> VoicemailOut:
    """The message's details, as in the list."""
    return VoicemailOut.of(services.voicemail.get(extension.client_id, uuid, extension.id))


@router.delete(
    "/extension/{extension_id}/voicemail/{uuid}",
    status_code=204,
    openapi_extra=declare(Operation.CALL_API),
)
def delete_extension_voicemail(
    extension: ExtensionRealmDep, uuid: MessageUuid, services: ServicesDep
) -> Response:
    """Delete the message and its file."""
    services.voicemail.delete(extension.client_id, uuid, extension.id)
    return Response(status_code=204)
