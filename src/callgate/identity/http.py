"""API routes of the identity resources: ``/user``, ``/client/{client_id}/``, the client's users
(``/client/{client_id}/user/``), extensions (``/client/{client_id}/extension/``,
``/extension/{extension_id}/``) and quotas (``/client/{client_id}/limit/``).

The access policy has already run when these are called: the principal is valid and the
path's client or extension is inside the user's realm and exists. Every write here is
configuration (level ``all``); changing quotas is for admins only besides.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from callgate.api.schemas import MAX_PER_PAGE
from callgate.identity.schemas import (
    MAX_ID,
    ClientOut,
    ClientUpdate,
    ClientUserCreate,
    ClientUserOut,
    ClientUserUpdate,
    ExtensionCreate,
    ExtensionOut,
    ExtensionTypeName,
    ExtensionUpdate,
    LimitOut,
    LimitUpdate,
    UserOut,
)
from callgate.identity.service import KEEP, Actor
from callgate.policy.http import ClientRealm, CurrentPrincipal, ExtensionRealmDep, PolicyRoute
from callgate.policy.operations import Operation, declare
from callgate.policy.principal import Principal
from callgate.services import ServicesDep

router = APIRouter(route_class=PolicyRoute, tags=["identity"])

PageDep = Annotated[int, Query(ge=1)]
PerPageDep = Annotated[int, Query(ge=1, le=MAX_PER_PAGE)]
UserId = Annotated[int, Path(ge=1, le=MAX_ID)]


def actor_of(principal: Principal) -> Actor:
    return Actor(principal.user.id, principal.app.app_id, principal.user.is_admin)


@router.get("/user", openapi_extra=declare(Operation.READ))
async def get_user(principal: CurrentPrincipal) -> UserOut:
    """The user the access token acts for."""
    # Everything is in the principal already: no query, and no thread-pool hop.
    return UserOut.of(principal)


# -- the client -----------------------------------------------------------------------------------


@router.get("/client/{client_id}/", openapi_extra=declare(Operation.READ))
def get_client(client_id: ClientRealm, services: ServicesDep) -> ClientOut:
    """The client (the customer PBX)."""
    return ClientOut.of(services.identity.get_client(client_id))


@router.put("/client/{client_id}/", openapi_extra=declare(Operation.CONFIG))
def update_client(
    client_id: ClientRealm, body: ClientUpdate, principal: CurrentPrincipal, services: ServicesDep
) -> ClientOut:
    """Change the client's name."""
    client = services.identity.update_client(
        client_id, actor_of(principal), name=KEEP if body.name is None else body.name
    )
    return ClientOut.of(client)


# -- the client's users ---------------------------------------------------------------------------


@router.get("/client/{client_id}/user/", openapi_extra=declare(Operation.READ))
def list_client_users(
    client_id: ClientRealm,
    services: ServicesDep,
    response: Response,
    page: PageDep = 1,
    per_page: PerPageDep = 50,
) -> list[ClientUserOut]:
    """The client's users (managers and extension owners), oldest first."""
    result = services.identity.list_client_users(client_id, page, per_page)
    response.headers["X-Total-Count"] = str(result.total)
    return [ClientUserOut.of(user) for user in result.items]


@router.post("/client/{client_id}/user/", status_code=201, openapi_extra=declare(Operation.CONFIG))
def create_client_user(
    client_id: ClientRealm,
    body: ClientUserCreate,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> ClientUserOut:
    """Add a user: a manager of the client, or with ``extension_id`` an extension's owner."""
    user = services.identity.create_client_user(
        client_id,
        actor_of(principal),
        login=body.login,
        password=body.password,
        access=body.access,
        status=body.status,
        extension_id=body.extension_id,
        timezone=body.timezone,
    )
    return ClientUserOut.of(user)


@router.get("/client/{client_id}/user/{user_id}", openapi_extra=declare(Operation.READ))
def get_client_user(
    client_id: ClientRealm, user_id: UserId, services: ServicesDep
) -> ClientUserOut:
    return ClientUserOut.of(services.identity.get_client_user(client_id, user_id))


@router.put("/client/{client_id}/user/{user_id}", openapi_extra=declare(Operation.CONFIG))
def update_client_user(
    client_id: ClientRealm,
    user_id: UserId,
    body: ClientUserUpdate,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> ClientUserOut:
    """Change some of a user's fields. A new password or blocking revokes the user's tokens;
    you cannot block yourself."""
    given = body.model_fields_set
    user = services.identity.update_client_user(
        client_id,
        user_id,
        actor_of(principal),
        login=KEEP if body.login is None else body.login,
        password=KEEP if body.password is None else body.password,
        access=KEEP if body.access is None else body.access,
        status=KEEP if body.status is None else body.status,
        extension_id=body.extension_id if "extension_id" in given else KEEP,
        timezone=KEEP if body.timezone is None else body.timezone,
    )
    return ClientUserOut.of(user)


@router.delete(
    "/client/{client_id}/user/{user_id}", status_code=204, openapi_extra=declare(Operation.CONFIG)
)
def delete_client_user(
    client_id: ClientRealm, user_id: UserId, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    """Delete a user, with its tokens and the applications it owns; not yourself."""
    services.identity.delete_client_user(client_id, user_id, actor_of(principal))
    return Response(status_code=204)


# -- extensions -----------------------------------------------------------------------------------


@router.get("/client/{client_id}/extension/", openapi_extra=declare(Operation.READ))
def list_extensions(
    client_id: ClientRealm,
    services: ServicesDep,
    response: Response,
    type: ExtensionTypeName | None = None,
    page: PageDep = 1,
    per_page: PerPageDep = 50,
) -> list[ExtensionOut]:
    """The client's extensions, oldest first; ``type`` keeps one type only."""
    result = services.identity.list_extensions(client_id, type, page, per_page)
    response.headers["X-Total-Count"] = str(result.total)
    return [ExtensionOut.of(extension, prefix) for extension, prefix in result.items]


@router.post(
    "/client/{client_id}/extension/", status_code=201, openapi_extra=declare(Operation.CONFIG)
)
def create_extension(
    client_id: ClientRealm, body: ExtensionCreate, services: ServicesDep
) -> ExtensionOut:
    """Add an extension, within the client's ``max_extensions`` (409 past it)."""
    extension, prefix = services.identity.create_extension_for(
        client_id, name=body.name, type_=body.type, label=body.label, status=body.status
    )
    return ExtensionOut.of(extension, prefix)


@router.get("/extension/{extension_id}/", openapi_extra=declare(Operation.READ))
def get_extension(extension: ExtensionRealmDep, services: ServicesDep) -> ExtensionOut:
    return ExtensionOut.of(*services.identity.get_extension(extension.id))


@router.put("/extension/{extension_id}/", openapi_extra=declare(Operation.CONFIG))
def update_extension(
    extension: ExtensionRealmDep, body: ExtensionUpdate, services: ServicesDep
) -> ExtensionOut:
    """Change the name, label or status. Renaming a phone extension clears its SIP password
    (the digest HA1 depends on the SIP user name); set a new one on ``/phone/``."""
    changed, prefix = services.identity.update_extension(
        extension.id,
        name=KEEP if body.name is None else body.name,
        label=KEEP if body.label is None else body.label,
        status=KEEP if body.status is None else body.status,
    )
    return ExtensionOut.of(changed, prefix)


@router.delete(
    "/extension/{extension_id}/", status_code=204, openapi_extra=declare(Operation.CONFIG)
)
def delete_extension(extension: ExtensionRealmDep, services: ServicesDep) -> Response:
    """Delete the extension with its settings, handlers, voicemail and faxes; refused (409)
    while users belong to it."""
    services.identity.delete_extension(extension.id)
    return Response(status_code=204)


# -- quotas ---------------------------------------------------------------------------------------


@router.get("/client/{client_id}/limit/", openapi_extra=declare(Operation.READ))
def get_limits(client_id: ClientRealm, services: ServicesDep) -> LimitOut:
    """The client's quotas: its own values (null: the system default) and those in force."""
    return LimitOut.of(services.identity.get_limits(client_id))


@router.put("/client/{client_id}/limit/", openapi_extra=declare(Operation.CONFIG))
def update_limits(
    client_id: ClientRealm, body: LimitUpdate, principal: CurrentPrincipal, services: ServicesDep
) -> LimitOut:
    """Change quotas; system administrators only (others: 403 ``permission_denied``)."""
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    return LimitOut.of(services.identity.update_limits(client_id, actor_of(principal), changes))
