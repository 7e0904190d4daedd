"""API routes of live calls: ``POST /extension/{id}/callback/`` starts a call;
``/client/{id}/current_calls/`` and ``/extension/{id}/current_calls/`` list the calls in progress,
and ``PUT``/``DELETE …/current_calls/{call_api_id}`` act on one (transfer, hold, offhold) or hang
it up.

The routes ask the call engine through ``services.call_control`` (the ``CallControl`` contract of
``calls/live.py``), which lives in this process or behind the control channel. Without one — no
PBX to reach — every route answers 503 ``pbx_unavailable``, and so does an engine that does not
answer within ``CONTROL_TIMEOUT`` seconds. The engine's own errors (``NotFound``,
``InvalidInput``, ``Conflict``) go through the one error table like any other domain error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Response
from starlette.concurrency import run_in_threadpool

from callgate.calls.live import CallAction, CallbackRequest, CallControl, LiveCall
from callgate.calls.schemas import (
    ActionDone,
    CallActionBody,
    CallbackCreate,
    CallbackCreated,
    LiveCallOut,
    PageRequest,
    PageRequestDep,
)
from callgate.common.errors import Conflict, InvalidInput, NotFound, PbxUnavailable
from callgate.identity.models import ExtensionType, Status
from callgate.policy.http import ClientRealm, ExtensionRealmDep, PolicyRoute
from callgate.policy.operations import Operation, declare
from callgate.policy.principal import ExtensionRealm
from callgate.services import Services, ServicesDep

T = TypeVar("T")

router = APIRouter(route_class=PolicyRoute, tags=["live calls"])

# The engine answers from memory (originate returns once the call is started, not answered);
# a longer wait means it is stuck or unreachable, and the client is better told so.
CONTROL_TIMEOUT = 15.0
# The original API's actions that Callgate does not perform yet: refused with a sentence.
LATER_ACTIONS = frozenset(
    {"attended_transfer", "eavesdrop", "whisper", "conference", "park", "pickup", "record"}
)
SUPPORTED = ", ".join(CallAction)

UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "The PBX is not running or does not answer (pbx_unavailable).",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
}
CallApiId = Annotated[str, Path(min_length=1, max_length=36, description="The call's call_api_id.")]


def _control(services: Services) -> CallControl:
    control = services.call_control
    if control is None:
        raise PbxUnavailable(
            "The PBX is not running, so calls cannot be placed, listed or controlled now."
        )
    return control


async def _ask(step: Awaitable[T]) -> T:
    try:
        async with asyncio.timeout(CONTROL_TIMEOUT):
            return await step
    except TimeoutError:
        raise PbxUnavailable(
            f"The PBX did not answer within {CONTROL_TIMEOUT:g} seconds; try again."
        ) from None


def _page(calls: list[LiveCall], paging: PageRequest, response: Response) -> list[LiveCallOut]:
    ordered = sorted(
        calls, key=lambda call: (call.init_time, call.call_api_id), reverse=paging.newest_first
    )
    response.headers["X-Total-Count"] = str(len(ordered))
    window = ordered[paging.offset : paging.offset + paging.per_page]
    return [LiveCallOut.of(call) for call in window]


def _action(body: CallActionBody) -> tuple[CallAction, str | None]:
    name = body.action.strip().lower()
    if name not in set(CallAction):
        what = "is not supported yet" if name in LATER_ACTIONS else "is not an action"
        raise InvalidInput(
            f"The action {body.action!r} {what}; Callgate supports {SUPPORTED}.",
            {"action": f"{what}; use one of {SUPPORTED}"},
        )
    action = CallAction(name)
    if action is not CallAction.TRANSFER:
        return action, None
    if body.send_dst is None:
        raise InvalidInput(
            "transfer needs send_dst, the number to send the call to.",
            {"send_dst": "is required for transfer"},
        )
    return action, body.send_dst


def _check_caller(services: Services, extension: ExtensionRealm) -> None:
    """The extension places the call, so it must be an active phone extension."""
    row, _prefix = services.identity.get_extension(extension.id)
    if row.type != ExtensionType.PHONE:
        raise NotFound(
            f"Extension {extension.id} is a {row.type} extension; only phone extensions place "
            "calls."
        )
    if row.status != Status.ACTIVE:
        raise Conflict(f"Extension {extension.id} is blocked; it cannot place calls.")


# -- callback -------------------------------------------------------------------------------------


@router.post(
    "/extension/{extension_id}/callback/",
    status_code=201,
    responses=UNAVAILABLE,
    openapi_extra=declare(Operation.CALL_API),
)
async def callback(
    extension: ExtensionRealmDep, body: CallbackCreate, services: ServicesDep
) -> CallbackCreated:
    """Start a call: ring every src_num at once; the first to answer is connected to dst_num."""
    await run_in_threadpool(_check_caller, services, extension)
    control = _control(services)
    started = await _ask(
        control.originate(
            CallbackRequest(
                client_id=extension.client_id,
                extension_id=extension.id,
                src_num=body.sources,
                dst_num=body.dst_num,
                caller_id_name=body.caller_id_name,
                caller_id_number=body.caller_id_number,
                call_duration=body.call_duration,
                wait_for_pickup=body.wait_for_pickup,
            )
        )
    )
    return CallbackCreated(call_api_id=started.call_api_id, call_id=started.call_id)


# -- current calls of a client --------------------------------------------------------------------


@router.get(
    "/client/{client_id}/current_calls/",
    responses=UNAVAILABLE,
    openapi_extra=declare(Operation.READ),
)
async def list_client_current_calls(
    client_id: ClientRealm, services: ServicesDep, response: Response, paging: PageRequestDep
) -> list[LiveCallOut]:
    """The client's calls in progress, newest first unless ``order=asc``."""
    calls = await _ask(_control(services).current_calls(client_id, None))
    return _page(calls, paging, response)


@router.put(
    "/client/{client_id}/current_calls/{call_api_id}",
    responses=UNAVAILABLE,
    openapi_extra=declare(Operation.CALL_API),
)
async def act_on_client_call(
    client_id: ClientRealm, call_api_id: CallApiId, body: CallActionBody, services: ServicesDep
) -> ActionDone:
    """Transfer (blind, to send_dst), hold or take off hold one of the client's calls."""
    action, send_dst = _action(body)
    await _ask(_control(services).act(client_id, None, call_api_id, action, send_dst))
    return ActionDone()


@router.delete(
    "/client/{client_id}/current_calls/{call_api_id}",
    status_code=204,
    responses=UNAVAILABLE,
    openapi_extra=declare(Operation.CALL_API),
)
async def hang_up_client_call(
    client_id: ClientRealm, call_api_id: CallApiId, services: ServicesDep
) -> Response:
    """Hang up one of the client's calls."""
    await _ask(_control(services).hangup(client_id, None, call_api_id))
    return Response(status_code=204)


# -- current calls of an extension ----------------------------------------------------------------


@router.get(
    "/extension/{extension_id}/current_calls/",
    responses=UNAVAILABLE,
    openapi_extra=declare(Operation.READ),
)
async def list_extension_current_calls(
    extension: ExtensionRealmDep,
    services: ServicesDep,
    response: Response,
    paging: PageRequestDep,
) -> list[LiveCallOut]:
    """The calls the extension takes part in, newest first unless ``order=asc``."""
    control = _control(services)
    calls = await _ask(control.current_calls(extension.client_id, extension.id))
    return _page(calls, paging, response)


@router.put(
    "/extension/{extension_id}/current_calls/{call_api_id}",
    responses=UNAVAILABLE,
    openapi_extra=declare(Operation.CALL_API),
)
async def act_on_extension_call(
    extension: ExtensionRealmDep,
    call_api_id: CallApiId,
    body: CallActionBody,
    services: ServicesDep,
) -> ActionDone:
    """Transfer (blind, to send_dst), hold or take off hold a call of the extension."""
    action, send_dst = _action(body)
    control = _control(services)
    await _ask(control.act(extension.client_id, extension.id, call_api_id, action, send_dst))
    return ActionDone()


@router.delete(
    "/extension/{extension_id}/current_calls/{call_api_id}",
    status_code=204,
    responses=UNAVAILABLE,
    openapi_extra=declare(Operation.CALL_API),
)
async def hang_up_extension_call(
    extension: ExtensionRealmDep, call_api_id: CallApiId, services: ServicesDep
) -> Response:
    """Hang up a call of the extension."""
    await _ask(_control(services).hangup(extension.client_id, extension.id, call_api_id))
    return Response(status_code=204)
