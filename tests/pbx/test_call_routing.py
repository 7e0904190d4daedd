"""Who a dialled number is (``callgate.pbx.routing.Router``), on both databases."""

from __future__ import annotations

from callgate.identity.models import ExtensionType
from callgate.pbx.routing import ExternalTarget, InternalTarget, Router
from callgate.phones.models import NoAnswerAction
from callgate.services import Services
from tests.support.factories import World


class FixedTrunks:
    """A trunk hook that routes every number starting with 0 (the engine only reads it)."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, str]] = []

    def outbound_route(self, client_id: int, number: str) -> object | None:
        self.asked.append((client_id, number))
        return "route" if number.startswith("0") else None

    def inbound(self, source: object, request: object) -> None:
        return None

    def authorize(self, request: object, challenge: object, route: object) -> None:
        return None


def test_extensions_of_the_client_with_their_rule_codecs_and_recording(
    services: Services, world: World
) -> None:
    services.phones.update_phone(world.ext102.id, record_enabled=True, codecs=["PCMA"])
    services.phones.update_rule(
        world.ext102.id, ring_seconds=12, action="forward", forward_to="101"
    )
    router = Router(services.database, ring_seconds=25)
    target = router.resolve(world.client.id, "102")
    assert isinstance(target, InternalTarget)
    party = target.party
    assert (party.extension_id, party.number, party.client_id) == (
        world.ext102.id,
        "102",
        world.client.id,
    )
    assert party.username == f"{world.client.prefix}*102"
    assert party.record_enabled and party.codecs == ("PCMA",)
    assert (target.rule.ring_seconds, target.rule.action, target.rule.forward_to) == (
        12,
        NoAnswerAction.FORWARD,
        "101",
    )
    assert target.is_phone and not target.blocked
    # no phone settings, no rule: the defaults
    plain = router.extension(world.ext101.id)
    assert plain is not None
    assert (plain.rule.ring_seconds, plain.rule.action) == (25, NoAnswerAction.HANGUP)
    assert plain.party.codecs == ("PCMU", "PCMA") and not plain.party.record_enabled


def test_other_clients_and_bad_numbers_route_nowhere_without_a_trunk(
    services: Services, world: World
) -> None:
    router = Router(services.database)
    # 101 exists in the other client too: each client sees its own
    own = router.resolve(world.client.id, "101")
    other = router.resolve(world.other_client.id, "101")
    assert isinstance(own, InternalTarget) and isinstance(other, InternalTarget)
    assert own.party.extension_id == world.ext101.id
    assert other.party.extension_id == world.other_ext.id
    for number in ("999", "", "10 1", "sip:101", "1" * 41, "101;x"):
        assert router.resolve(world.client.id, number) is None, number
    assert router.extension(10**9) is None


def test_numbers_that_are_no_extension_go_to_the_trunk_hook(
    services: Services, world: World
) -> None:
    trunks = FixedTrunks()
    router = Router(services.database, trunks)  # type: ignore[arg-type]
    found = router.resolve(world.client.id, "0301234567")
    assert isinstance(found, ExternalTarget) and found.number == "0301234567"
    assert router.resolve(world.client.id, "4930") is None
    assert isinstance(router.resolve(world.client.id, "102"), InternalTarget)
    assert trunks.asked == [(world.client.id, "0301234567"), (world.client.id, "4930")]


def test_a_fax_extension_is_internal_but_not_a_phone(services: Services, world: World) -> None:
    fax = services.identity.create_extension(world.client.id, "150", type_=ExtensionType.FAX)
    target = Router(services.database).resolve(world.client.id, "150")
    assert isinstance(target, InternalTarget)
    assert target.party.extension_id == fax.id and not target.is_phone
