"""API routes of event handlers: ``/extension/{extension_id}/event/``.

Managing event handlers is a Call API operation: a ``call_api`` application may create, change
and delete them. Lists are JSON arrays, as in the original API; the total is in
``X-Total-Count``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from callgate.events.schemas import (
    EventHandlerCreate,
    EventHandlerCreated,
    EventHandlerOut,
    EventHandlerUpdate,
)
from callgate.policy.http import ExtensionRealmDep, PolicyRoute
from callgate.policy.operations import Operation, declare
from callgate.services import Services, get_services

router = APIRouter(route_class=PolicyRoute, tags=["events"])

ServicesDep = Annotated[Services, Depends(get_services)]
MAX_PER_PAGE = 500


@router.get("/extension/{extension_id}/event/", openapi_extra=declare(Operation.READ))
def list_event_handlers(
    extension: ExtensionRealmDep,
    services: ServicesDep,
    response: Response,
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = 50,
) -> list[EventHandlerOut]:
    """The extension's event handlers, oldest first."""
    result = services.events.list_for_extension(extension.id, page, per_page)
    response.headers["X-Total-Count"] = str(result.total)
    return [EventHandlerOut.of(handler) for handler in result.items]


@router.post(
    "/extension/{extension_id}/event/",
    status_code=201,
    openapi_extra=declare(Operation.CALL_API),
)
def create_event_handler(
    extension: ExtensionRealmDep, body: EventHandlerCreate, services: ServicesDep
) -> EventHandlerCreated:
    """Add an event handler; the answer holds its signing secret, shown only this once."""
    created = services.events.create(
        client_id=extension.client_id,
        extension_id=extension.id,
        url=body.url,
        method=body.method,
        event_type=body.event_type,
    )
    return EventHandlerCreated(
        **EventHandlerOut.of(created.handler).model_dump(), secret=created.secret
    )


@router.get("/extension/{extension_id}/event/{event_id}", openapi_extra=declare(Operation.READ))
def get_event_handler(
    extension: ExtensionRealmDep, event_id: int, services: ServicesDep
) -> EventHandlerOut:
    return EventHandlerOut.of(services.events.get(extension.id, event_id))


@router.put("/extension/{extension_id}/event/{event_id}", openapi_extra=declare(Operation.CALL_API))
def update_event_handler(
    extension: ExtensionRealmDep, event_id: int, body: EventHandlerUpdate, services: ServicesDep
) -> EventHandlerOut:
    """Change a handler's url, method or event type; its secret stays."""
    handler = services.events.update(
        extension.id, event_id, url=body.url, method=body.method, event_type=body.event_type
    )
    return EventHandlerOut.of(handler)


@router.delete(
    "/extension/{extension_id}/event/{event_id}",
    status_code=204,
    openapi_extra=declare(Operation.CALL_API),
)
def delete_event_handler(
    extension: ExtensionRealmDep, event_id: int, services: ServicesDep
) -> Response:
    services.events.delete(extension.id, event_id)
    return Response(status_code=204)
