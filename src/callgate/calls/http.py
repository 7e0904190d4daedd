"""API routes of the call history: ``/client/{id}/call_history/`` and
``/extension/{id}/call_history/``, each with ``/{call_uuid}`` for one call.

The list answers the original API's object ``{"page", "per_page", "order", "call_history": [...]}``
(not a bare array: integrations read ``data.call_history``) and, as every list here, the total in
``X-Total-Count``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from callgate.calls.repository import CallFilter
from callgate.calls.schemas import (
    MAX_ID,
    CallHistoryPage,
    CallOut,
    FlowName,
    PageRequest,
    PageRequestDep,
    TimeWindowDep,
)
from callgate.calls.service import CallHistoryService
from callgate.policy.http import ClientRealm, ExtensionRealmDep, PolicyRoute
from callgate.policy.operations import Operation, declare
from callgate.services import ServicesDep

router = APIRouter(route_class=PolicyRoute, tags=["call history"])

FlowQuery = Annotated[FlowName | None, Query(description="Only calls of this flow.")]
CallUuid = Annotated[str, Path(max_length=64, description="The call's call_uuid.")]


def _answer(
    calls: CallHistoryService, where: CallFilter, paging: PageRequest, response: Response
) -> CallHistoryPage:
    result = calls.list(
        where, page=paging.page, per_page=paging.per_page, newest_first=paging.newest_first
    )
    response.headers["X-Total-Count"] = str(result.total)
    return CallHistoryPage(
        page=paging.page,
        per_page=paging.per_page,
        order=paging.order,
        call_history=[CallOut.of(call) for call in result.items],
    )


@router.get("/client/{client_id}/call_history/", openapi_extra=declare(Operation.READ))
def list_client_calls(
    client_id: ClientRealm,
    services: ServicesDep,
    response: Response,
    window: TimeWindowDep,
    paging: PageRequestDep,
    flow: FlowQuery = None,
    extension_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only calls of this extension.")
    ] = None,
) -> CallHistoryPage:
    """The client's finished calls, newest first unless ``order=asc``."""
    where = CallFilter(
        client_id=client_id,
        extension_id=extension_id,
        flow=flow,
        start=window.start,
        end=window.end,
    )
    return _answer(services.calls, where, paging, response)


@router.get("/client/{client_id}/call_history/{call_uuid}", openapi_extra=declare(Operation.READ))
def get_client_call(client_id: ClientRealm, call_uuid: CallUuid, services: ServicesDep) -> CallOut:
    return CallOut.of(services.calls.get(client_id, call_uuid))


@router.get("/extension/{extension_id}/call_history/", openapi_extra=declare(Operation.READ))
def list_extension_calls(
    extension: ExtensionRealmDep,
    services: ServicesDep,
    response: Response,
    window: TimeWindowDep,
    paging: PageRequestDep,
    flow: FlowQuery = None,
) -> CallHistoryPage:
    """The extension's finished calls, newest first unless ``order=asc``."""
    where = CallFilter(
        client_id=extension.client_id,
        extension_id=extension.id,
        flow=flow,
        start=window.start,
        end=window.end,
    )
    return _answer(services.calls, where, paging, response)


@router.get(
    "/extension/{extension_id}/call_history/{call_uuid}", openapi_extra=declare(Operation.READ)
)
def get_extension_call(
    extension: ExtensionRealmDep, call_uuid: CallUuid, services: ServicesDep
) -> CallOut:
    return CallOut.of(services.calls.get(extension.client_id, call_uuid, extension.id))
