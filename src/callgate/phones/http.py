"""API routes of ``/extension/{extension_id}/phone/`` (phone extensions only; other types
answer 404) and ``/extension/{extension_id}/incom_rule/``. Both writes are configuration."""

from __future__ import annotations

from fastapi import APIRouter

from callgate.identity.service import KEEP
from callgate.phones.schemas import IncomingRuleOut, IncomingRuleUpdate, PhoneOut, PhoneUpdate
from callgate.policy.http import ExtensionRealmDep, PolicyRoute
from callgate.policy.operations import Operation, declare
from callgate.services import ServicesDep

router = APIRouter(route_class=PolicyRoute, tags=["phones"])


@router.get("/extension/{extension_id}/phone/", openapi_extra=declare(Operation.READ))
def get_phone(extension: ExtensionRealmDep, services: ServicesDep) -> PhoneOut:
    """The phone's SIP settings; the password is never shown, only ``password_set``."""
    return PhoneOut.of(services.phones.get_phone(extension.id))


@router.put("/extension/{extension_id}/phone/", openapi_extra=declare(Operation.CONFIG))
def update_phone(
    extension: ExtensionRealmDep, body: PhoneUpdate, services: ServicesDep
) -> PhoneOut:
    """Set the SIP password (write-only), recording, codecs."""
    given = body.model_fields_set
    view = services.phones.update_phone(
        extension.id,
        password=body.password if "password" in given else KEEP,
        record_enabled=KEEP if body.record_enabled is None else body.record_enabled,
        codecs=KEEP if body.codecs is None else list(body.codecs),
    )
    return PhoneOut.of(view)


@router.get("/extension/{extension_id}/incom_rule/", openapi_extra=declare(Operation.READ))
def get_incoming_rule(extension: ExtensionRealmDep, services: ServicesDep) -> IncomingRuleOut:
    """What happens to calls to the extension (defaults until first changed)."""
    return IncomingRuleOut.of(services.phones.get_rule(extension.id))


@router.put("/extension/{extension_id}/incom_rule/", openapi_extra=declare(Operation.CONFIG))
def update_incoming_rule(
    extension: ExtensionRealmDep, body: IncomingRuleUpdate, services: ServicesDep
) -> IncomingRuleOut:
    """Ring for ``ring_seconds``, then hang up, forward or go to voicemail."""
    given = body.model_fields_set
    view = services.phones.update_rule(
        extension.id,
        ring_seconds=KEEP if body.ring_seconds is None else body.ring_seconds,
        action=KEEP if body.action is None else body.action,
        forward_to=body.forward_to if "forward_to" in given else KEEP,
    )
    return IncomingRuleOut.of(view)
