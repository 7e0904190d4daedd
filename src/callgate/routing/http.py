"""API routes of ``/client/{client_id}/did/`` and ``/client/{client_id}/trunk/``. Lists are
JSON arrays with ``X-Total-Count``; every write is configuration (level ``all``)."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from callgate.api.schemas import MAX_PER_PAGE
from callgate.identity.schemas import MAX_ID
from callgate.identity.service import KEEP
from callgate.policy.http import ClientRealm, PolicyRoute
from callgate.policy.operations import Operation, declare
from callgate.routing.schemas import (
    DidCreate,
    DidOut,
    DidUpdate,
    TrunkCreate,
    TrunkOut,
    TrunkUpdate,
)
from callgate.routing.service import TrunkSpec
from callgate.services import ServicesDep

router = APIRouter(route_class=PolicyRoute, tags=["routing"])

PageDep = Annotated[int, Query(ge=1)]
PerPageDep = Annotated[int, Query(ge=1, le=MAX_PER_PAGE)]
DidId = Annotated[int, Path(ge=1, le=MAX_ID)]
TrunkId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/client/{client_id}/did/", openapi_extra=declare(Operation.READ))
def list_dids(
    client_id: ClientRealm,
    services: ServicesDep,
    response: Response,
    page: PageDep = 1,
    per_page: PerPageDep = 50,
) -> list[DidOut]:
    """The client's external numbers and where each routes."""
    result = services.routing.list_dids(client_id, page, per_page)
    response.headers["X-Total-Count"] = str(result.total)
    return [DidOut.of(did) for did in result.items]


@router.post("/client/{client_id}/did/", status_code=201, openapi_extra=declare(Operation.CONFIG))
def create_did(client_id: ClientRealm, body: DidCreate, services: ServicesDep) -> DidOut:
    """Add an external number (409 when the number is in use anywhere in the PBX)."""
    return DidOut.of(services.routing.create_did(client_id, body.number, body.extension_id))


@router.get("/client/{client_id}/did/{did_id}", openapi_extra=declare(Operation.READ))
def get_did(client_id: ClientRealm, did_id: DidId, services: ServicesDep) -> DidOut:
    return DidOut.of(services.routing.get_did(client_id, did_id))


@router.put("/client/{client_id}/did/{did_id}", openapi_extra=declare(Operation.CONFIG))
def update_did(
    client_id: ClientRealm, did_id: DidId, body: DidUpdate, services: ServicesDep
) -> DidOut:
    """Change the number or its extension (``extension_id: null``: not routed)."""
    given = body.model_fields_set
    did = services.routing.update_did(
        client_id,
        did_id,
        number=KEEP if body.number is None else body.number,
        extension_id=body.extension_id if "extension_id" in given else KEEP,
    )
    return DidOut.of(did)


@router.delete(
    "/client/{client_id}/did/{did_id}", status_code=204, openapi_extra=declare(Operation.CONFIG)
)
def delete_did(client_id: ClientRealm, did_id: DidId, services: ServicesDep) -> Response:
    services.routing.delete_did(client_id, did_id)
    return Response(status_code=204)


@router.get("/client/{client_id}/trunk/", openapi_extra=declare(Operation.READ))
def list_trunks(
    client_id: ClientRealm,
    services: ServicesDep,
    response: Response,
    page: PageDep = 1,
    per_page: PerPageDep = 50,
) -> list[TrunkOut]:
    """The client's SIP trunks in the order calls try them (priority, then age)."""
    result = services.routing.list_trunks(client_id, page, per_page)
    response.headers["X-Total-Count"] = str(result.total)
    return [TrunkOut.of(trunk) for trunk in result.items]


@router.post("/client/{client_id}/trunk/", status_code=201, openapi_extra=declare(Operation.CONFIG))
def create_trunk(client_id: ClientRealm, body: TrunkCreate, services: ServicesDep) -> TrunkOut:
    """Add a SIP trunk; its password is write-only."""
    fields = body.model_dump(by_alias=True)
    spec = TrunkSpec(**{field.name: fields[field.name] for field in dataclasses.fields(TrunkSpec)})
    return TrunkOut.of(services.routing.create_trunk(client_id, spec))


@router.get("/client/{client_id}/trunk/{trunk_id}", openapi_extra=declare(Operation.READ))
def get_trunk(client_id: ClientRealm, trunk_id: TrunkId, services: ServicesDep) -> TrunkOut:
    return TrunkOut.of(services.routing.get_trunk(client_id, trunk_id))


@router.put("/client/{client_id}/trunk/{trunk_id}", openapi_extra=declare(Operation.CONFIG))
def update_trunk(
    client_id: ClientRealm, trunk_id: TrunkId, body: TrunkUpdate, services: ServicesDep
) -> TrunkOut:
    """Change some fields; ``username``, ``password`` and ``caller_id_number`` may be null."""
    return TrunkOut.of(services.routing.update_trunk(client_id, trunk_id, body.changes()))


@router.delete(
    "/client/{client_id}/trunk/{trunk_id}",
    status_code=204,
    openapi_extra=declare(Operation.CONFIG),
)
def delete_trunk(client_id: ClientRealm, trunk_id: TrunkId, services: ServicesDep) -> Response:
    services.routing.delete_trunk(client_id, trunk_id)
    return Response(status_code=204)
