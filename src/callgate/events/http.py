"""API routes of event handlers: ``/extension/{extension_id}/event/`` and a client's
``/client/{client_id}/phone_events/`` (handlers for every phone extension of the client).

Managing event handlers is a Call API operation: a ``call_api`` application may create, change
and delete them. Both forms take the same bodies and answer the same shapes (a phone_events
handler has ``extension_id`` null). Lists are JSON arrays, as in the original API; the total is
in ``X-Total-Count``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from callgate.events.repository import HandlerOwner
from callgate.events.schemas import (
    DeliveryAttemptOut,
    EventHandlerCreate,
    EventHandlerCreated,
    EventHandlerOut,
    EventHandlerUpdate,
)
from callgate.events.service import EventHandlerService
from callgate.policy.http import ClientRealm, ExtensionRealmDep, PolicyRoute
from callgate.policy.operations import Operation, declare
from callgate.policy.principal import ExtensionRealm
from callgate.services import ServicesDep

router = APIRouter(route_class=PolicyRoute, tags=["events"])

MAX_PER_PAGE = 500
PageQuery = Annotated[int, Query(ge=1)]
PerPageQuery = Annotated[int, Query(ge=1, le=MAX_PER_PAGE)]
# Ids are 32-bit integer columns: a larger number is refused (422), not sent to the database.
EventId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _of_extension(extension: ExtensionRealm) -> HandlerOwner:
    return HandlerOwner(extension.client_id, extension.id)


def _list(
    events: EventHandlerService, owner: HandlerOwner, page: int, per_page: int, response: Response
) -> list[EventHandlerOut]:
    result = events.list(owner, page, per_page)
    response.headers["X-Total-Count"] = str(result.total)
    return [EventHandlerOut.of(handler) for handler in result.items]


def _create(
    events: EventHandlerService, owner: HandlerOwner, body: EventHandlerCreate
) -> EventHandlerCreated:
    created = events.create(
        client_id=owner.client_id,
        extension_id=owner.extension_id,
        url=body.url,
        method=body.method,
        event_type=body.event_type,
    )
    return EventHandlerCreated(
        **EventHandlerOut.of(created.handler).model_dump(), secret=created.secret
    )


def _update(
    events: EventHandlerService, owner: HandlerOwner, event_id: int, body: EventHandlerUpdate
) -> EventHandlerOut:
    handler = events.update(
        owner, event_id, url=body.url, method=body.method, event_type=body.event_type
    )
    return EventHandlerOut.of(handler)


def _attempts(
    events: EventHandlerService,
    owner: HandlerOwner,
    event_id: int,
    page: int,
    per_page: int,
    response: Response,
) -> list[DeliveryAttemptOut]:
    result = events.attempts(owner, event_id, page, per_page)
    response.headers["X-Total-Count"] = str(result.total)
    return [DeliveryAttemptOut.of(attempt, delivery) for attempt, delivery in result.items]


# -- handlers of one extension ---------------------------------------------------------------------


@router.get("/extension/{extension_id}/event/", openapi_extra=declare(Operation.READ))
def list_event_handlers(
    extension: ExtensionRealmDep,
    services: ServicesDep,
    response: Response,
    page: PageQuery = 1,
    per_page: PerPageQuery = 50,
) -> list[EventHandlerOut]:
    """The extension's event handlers, oldest first."""
    return _list(services.events, _of_extension(extension), page, per_page, response)


@router.post(
    "/extension/{extension_id}/event/",
    status_code=201,
    openapi_extra=declare(Operation.CALL_API),
)
def create_event_handler(
    extension: ExtensionRealmDep, body: EventHandlerCreate, services: ServicesDep
) -> EventHandlerCreated:
    """Add an event handler; the answer holds its signing secret, shown only this once."""
    return _create(services.events, _of_extension(extension), body)


@router.get("/extension/{extension_id}/event/{event_id}", openapi_extra=declare(Operation.READ))
def get_event_handler(
    extension: ExtensionRealmDep, event_id: EventId, services: ServicesDep
) -> EventHandlerOut:
    return EventHandlerOut.of(services.events.get(_of_extension(extension), event_id))


@router.put("/extension/{extension_id}/event/{event_id}", openapi_extra=declare(Operation.CALL_API))
def update_event_handler(
    extension: ExtensionRealmDep, event_id: EventId, body: EventHandlerUpdate, services: ServicesDep
) -> EventHandlerOut:
    """Change a handler's url, method or event type; its secret stays."""
    return _update(services.events, _of_extension(extension), event_id, body)


@router.delete(
    "/extension/{extension_id}/event/{event_id}",
    status_code=204,
    openapi_extra=declare(Operation.CALL_API),
)
def delete_event_handler(
    extension: ExtensionRealmDep, event_id: EventId, services: ServicesDep
) -> Response:
    services.events.delete(_of_extension(extension), event_id)
    return Response(status_code=204)


@router.get(
    "/extension/{extension_id}/event/{event_id}/deliveries/",
    openapi_extra=declare(Operation.READ),
)
def list_event_deliveries(
    extension: ExtensionRealmDep,
    event_id: EventId,
    services: ServicesDep,
    response: Response,
    page: PageQuery = 1,
    per_page: PerPageQuery = 50,
) -> list[DeliveryAttemptOut]:
    """The handler's recent delivery attempts, newest first: time, status code or error,
    duration and the next retry."""
    return _attempts(services.events, _of_extension(extension), event_id, page, per_page, response)


# -- a client's phone_events -----------------------------------------------------------------------


@router.get("/client/{client_id}/phone_events/", openapi_extra=declare(Operation.READ))
def list_phone_events(
    client_id: ClientRealm,
    services: ServicesDep,
    response: Response,
    page: PageQuery = 1,
    per_page: PerPageQuery = 50,
) -> list[EventHandlerOut]:
    """The client's phone_events handlers (for every phone extension), oldest first."""
    return _list(services.events, HandlerOwner(client_id), page, per_page, response)


@router.post(
    "/client/{client_id}/phone_events/",
    status_code=201,
    openapi_extra=declare(Operation.CALL_API),
)
def create_phone_event(
    client_id: ClientRealm, body: EventHandlerCreate, services: ServicesDep
) -> EventHandlerCreated:
    """Add a handler for every phone extension of the client; its secret is shown only now."""
    return _create(services.events, HandlerOwner(client_id), body)


@router.get("/client/{client_id}/phone_events/{event_id}", openapi_extra=declare(Operation.READ))
def get_phone_event(
    client_id: ClientRealm, event_id: EventId, services: ServicesDep
) -> EventHandlerOut:
    return EventHandlerOut.of(services.events.get(HandlerOwner(client_id), event_id))


@router.put(
    "/client/{client_id}/phone_events/{event_id}", openapi_extra=declare(Operation.CALL_API)
)
def update_phone_event(
    client_id: ClientRealm, event_id: EventId, body: EventHandlerUpdate, services: ServicesDep
) -> EventHandlerOut:
    """Change a handler's url, method or event type; its secret stays."""
    return _update(services.events, HandlerOwner(client_id), event_id, body)


@router.delete(
    "/client/{client_id}/phone_events/{event_id}",
    status_code=204,
    openapi_extra=declare(Operation.CALL_API),
)
def delete_phone_event(
    client_id: ClientRealm, event_id: EventId, services: ServicesDep
) -> Response:
    services.events.delete(HandlerOwner(client_id), event_id)
    return Response(status_code=204)


@router.get(
    "/client/{client_id}/phone_events/{event_id}/deliveries/",
    openapi_extra=declare(Operation.READ),
)
def list_phone_event_deliveries(
    client_id: ClientRealm,
    event_id: EventId,
    services: ServicesDep,
    response: Response,
    page: PageQuery = 1,
    per_page: PerPageQuery = 50,
) -> list[DeliveryAttemptOut]:
    """The handler's recent delivery attempts, newest first: time, status code or error,
    duration and the next retry."""
    return _attempts(services.events, HandlerOwner(client_id), event_id, page, per_page, response)
