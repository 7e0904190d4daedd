"""API routes of the identity resources: ``/user`` and ``/client/{client_id}/``.

The access policy has already run when these are called: the principal is valid and the
path's client is inside the user's realm and exists.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from callgate.audit.service import record
from callgate.common.errors import NotFound
from callgate.identity.repository import IdentityRepository
from callgate.identity.schemas import ClientOut, ClientUpdate, UserOut
from callgate.policy.http import ClientRealm, CurrentPrincipal, PolicyRoute
from callgate.policy.operations import Operation, declare
from callgate.services import Services, get_services

router = APIRouter(route_class=PolicyRoute, tags=["identity"])

ServicesDep = Annotated[Services, Depends(get_services)]


@router.get("/user", openapi_extra=declare(Operation.READ))
async def get_user(principal: CurrentPrincipal) -> UserOut:
    """The user the access token acts for."""
    # Everything is in the principal already: no query, and no thread-pool hop.
    return UserOut.of(principal)


@router.get("/client/{client_id}/", openapi_extra=declare(Operation.READ))
def get_client(client_id: ClientRealm, services: ServicesDep) -> ClientOut:
    """The client (the customer PBX)."""
    with services.database.read() as session:
        client = IdentityRepository(session).client(client_id)
        if client is None:
            raise NotFound(f"There is no client {client_id}.")
        return ClientOut.of(client)


@router.put("/client/{client_id}/", openapi_extra=declare(Operation.CONFIG))
def update_client(
    client_id: ClientRealm, body: ClientUpdate, principal: CurrentPrincipal, services: ServicesDep
) -> ClientOut:
    """Change the client's name."""
    with services.database.write() as session:
        client = IdentityRepository(session).client(client_id)
        if client is None:
            raise NotFound(f"There is no client {client_id}.")
        changed = body.model_dump(exclude_unset=True)
        if "name" in changed and changed["name"] is not None:
            client.name = changed["name"]
        session.flush()
        record(
            session,
            "client_updated",
            user_id=principal.user.id,
            app_id=principal.app.app_id,
            detail=f"client={client_id} fields={','.join(sorted(changed))}",
        )
        return ClientOut.of(client)
