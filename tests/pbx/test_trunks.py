"""SIP trunks: digest answers towards a provider, outbound routes, inbound matching, registration.

The digest answers are checked by the server side of the SIP core (``DigestServer``) acting as
the provider; the registration runs against a real SIPp provider on 127.0.0.1 that verifies the
credentials itself (``<verifyauth>``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from callgate.pbx.endpoint import Incoming, SipEndpoint
from callgate.pbx.registrar import Binding, Bindings
from callgate.pbx.trunks import (
    InboundCall,
    TrunkRoute,
    TrunkService,
    authorize,
    source_ip_towards,
)
from callgate.routing.service import TrunkSpec
from callgate.services import Services
from callgate.sip.digest import DigestServer, Ha1Pair, ha1
from callgate.sip.message import Request, Response
from callgate.sip.parser import make_response, parse
from callgate.sip.uri import parse_uri
from tests.pbx.sippeer import AVAILABLE as SIPP_AVAILABLE
from tests.pbx.sippeer import SippPeer
from tests.support.factories import World

NOW = 1_800_000_000.0
REALM = "provider.test"
USER = "trunkuser"
PASSWORD = "trunk-s3cret"


def route(
    *, username: str | None = USER, password: str | None = PASSWORD, port: int = 5060
) -> TrunkRoute:
    return TrunkRoute(
        trunk_id=7,
        client_id=1,
        host="sip.provider.test",
        port=port,
        transport="udp",
        username=username,
        password=password,
        caller_id_number="4930123456",
        address=("192.0.2.10", port),
    )


def invite(extra: list[str] | None = None) -> Request:
    lines = [
        "INVITE sip:4930999@sip.provider.test SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK{secrets.token_hex(6)};rport",
        "Max-Forwards: 70",
        "From: <sip:4930123456@sip.provider.test>;tag=abc",
        "To: <sip:4930999@sip.provider.test>",
        "Call-ID: call-1@callgate",
        "CSeq: 1 INVITE",
        "Contact: <sip:4930123456@127.0.0.1:5060>",
        *(extra or []),
    ]
    message = parse(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(message, Request)
    return message


def provider() -> DigestServer:
    return DigestServer(b"provider-key-0123456789abcdef", REALM)


def lookup(name: str) -> Ha1Pair | None:
    if name != USER:
        return None
    return Ha1Pair(ha1("MD5", USER, REALM, PASSWORD), ha1("SHA-256", USER, REALM, PASSWORD))


def challenge(request: Request, server: DigestServer, status: int, **kw: bool) -> Response:
    response = make_response(request, status)
    name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    for value in server.challenge(NOW, **kw):
        response.headers.add(name, value)
    return response


# ---------------------------------------------------------------------- authorize (pure)


@pytest.mark.parametrize(
    ("status", "header"), [(401, "Authorization"), (407, "Proxy-Authorization")]
)
def test_authorize_answers_the_challenge_the_provider_accepts(status: int, header: str) -> None:
    server = provider()
    request = invite()
    retry = authorize(request, challenge(request, server, status), route())
    assert retry is not None
    assert retry.branch != request.branch and retry.branch is not None
    assert retry.branch.startswith("z9hG4bK")
    assert retry.cseq.seq == 2 and retry.cseq.method == "INVITE"
    assert retry.call_id == request.call_id and retry.to.tag is None
    assert request.headers.get(header) is None  # the original is untouched
    values = retry.headers.get_all(header)
    assert len(values) == 1
    verdict = server.verify(values[0], "INVITE", NOW + 1, lookup, request_uri=str(request.uri))
    assert verdict.ok, verdict
    assert verdict.algorithm == "SHA-256"  # the strongest offered


def test_authorize_with_a_wrong_password_is_refused_by_the_provider() -> None:
    server = provider()
    request = invite()
    retry = authorize(request, challenge(request, server, 401), route(password="not-it"))
    assert retry is not None
    verdict = server.verify(retry.headers.get_all("Authorization")[0], "INVITE", NOW, lookup)
    assert not verdict.ok


def test_authorize_does_not_loop() -> None:
    server = provider()
    request = invite()
    first = challenge(request, server, 407)
    retry = authorize(request, first, route())
    assert retry is not None
    # the provider refuses the credentials with the same nonce: no second try
    same = make_response(retry, 407)
    for value in first.headers.get_all("Proxy-Authenticate"):
        same.headers.add("Proxy-Authenticate", value)
    assert authorize(retry, same, route()) is None
    # a new nonce without stale=true means wrong credentials: no second try either
    assert authorize(retry, challenge(retry, server, 407), route()) is None
    # stale=true: the password was right, the nonce old; answer once more, replacing the old one
    again = authorize(retry, challenge(retry, server, 407, stale=True), route())
    assert again is not None and again.cseq.seq == 3
    assert len(again.headers.get_all("Proxy-Authorization")) == 1


def test_authorize_needs_credentials_and_a_digest_challenge() -> None:
    request = invite()
    server = provider()
    assert authorize(request, challenge(request, server, 401), route(password=None)) is None
    assert authorize(request, challenge(request, server, 401), route(username=None)) is None
    assert authorize(request, make_response(request, 486), route()) is None
    basic = make_response(request, 401)
    basic.headers.add("WWW-Authenticate", 'Basic realm="x"')
    assert authorize(request, basic, route()) is None
    garbled = make_response(request, 407)
    garbled.headers.add("Proxy-Authenticate", "Digest ,,,=")
    assert authorize(request, garbled, route()) is None


def test_contact_address_towards_a_provider() -> None:
    assert source_ip_towards("127.0.0.1") == "127.0.0.1"
    assert source_ip_towards("not an address") is None


def test_route_shows_no_password_and_builds_uris() -> None:
    plain = route()
    assert PASSWORD not in repr(plain)
    assert plain.request_uri("+4930999") == "sip:+4930999@sip.provider.test"
    assert plain.request_uri("0#1*2") == "sip:0%231*2@sip.provider.test"
    assert plain.from_domain == "sip.provider.test"
    other = route(port=5090)
    assert other.request_uri("123") == "sip:123@sip.provider.test:5090"
    tcp = TrunkRoute(7, 1, "::1", 5070, "tcp", None, None, None, ("::1", 5070))
    assert tcp.request_uri("123") == "sip:123@[::1]:5070;transport=tcp"


# ---------------------------------------------------------------------- routing on the database


def add_trunk(services: Services, client_id: int, **fields: object) -> int:
    spec = TrunkSpec(**{"name": f"trunk-{secrets.token_hex(3)}", "host": "127.0.0.1", **fields})  # type: ignore[arg-type]
    return services.routing.create_trunk(client_id, spec).id


def test_outbound_route_takes_the_enabled_trunk_with_the_lowest_priority(
    services: Services, world: World
) -> None:
    trunks = TrunkService(services.database, services.settings)
    assert trunks.outbound_route(world.client.id, "4930999") is None  # no trunk yet
    add_trunk(services, world.client.id, priority=20, port=5070)
    best = add_trunk(
        services,
        world.client.id,
        priority=5,
        port=5080,
        username=USER,
        password=PASSWORD,
        caller_id_number="+4930123",
    )
    add_trunk(services, world.client.id, priority=1, port=5090, enabled=False)
    add_trunk(services, world.other_client.id, priority=0, port=5100)
    found = trunks.outbound_route(world.client.id, "+4930999")
    assert found is not None
    assert (found.trunk_id, found.client_id, found.address) == (
        best,
        world.client.id,
        ("127.0.0.1", 5080),
    )
    assert (found.username, found.password, found.caller_id_number) == (
        USER,
        PASSWORD,
        "+4930123",
    )
    assert found.request_uri("+4930999") == "sip:+4930999@127.0.0.1:5080"
    for bad in ["", "12 34", "abc", "1" * 40, "sip:123@x", "+", "12;x=1"]:
        assert trunks.outbound_route(world.client.id, bad) is None, bad
    assert trunks.outbound_route(world.client.id, "*21#") is not None


def test_outbound_route_by_host_name(services: Services, world: World) -> None:
    trunks = TrunkService(services.database, services.settings)
    add_trunk(services, world.client.id, host="localhost", port=5070)
    found = trunks.outbound_route(world.client.id, "123")
    assert found is not None and found.address[0] in ("127.0.0.1", "::1")
    assert found.request_uri("123") == "sip:123@localhost:5070"


def request_from_provider(uri_user: str, to_user: str | None = None) -> Request:
    to_user = to_user if to_user is not None else uri_user
    lines = [
        f"INVITE sip:{uri_user}@127.0.0.1:5060 SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKprov1",
        "Max-Forwards: 70",
        "From: <sip:+4930555@provider.test>;tag=p1",
        f"To: <sip:{to_user}@callgate.test>",
        "Call-ID: in-1@provider",
        "CSeq: 1 INVITE",
        "Contact: <sip:+4930555@127.0.0.1:5090>",
    ]
    message = parse(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(message, Request)
    return message


def test_inbound_matches_the_trunk_and_routes_the_did(services: Services, world: World) -> None:
    trunks = TrunkService(services.database, services.settings)
    source = ("127.0.0.1", 5090)
    assert trunks.inbound(source, request_from_provider("4930777")) is None  # no trunk at all
    trunk = add_trunk(services, world.client.id, port=5090)
    services.routing.create_did(world.client.id, "+4930777", world.ext102.id)
    services.routing.create_did(world.client.id, "4930778", None)
    services.routing.create_did(world.other_client.id, "4930779", world.other_ext.id)

    expected = InboundCall(world.client.id, trunk, "4930777", world.ext102.id, "102")
    assert trunks.inbound(source, request_from_provider("+4930777")) == expected
    assert trunks.inbound(source, request_from_provider("4930777")) == expected
    # a registered trunk's provider puts our Contact user in the Request-URI, the DID in To
    assert trunks.inbound(source, request_from_provider(USER, "4930777")) == expected
    # a DID that routes nowhere, an unknown number, another client's DID: no extension (404)
    assert trunks.inbound(source, request_from_provider("4930778")) == InboundCall(
        world.client.id, trunk, "4930778", None, None
    )
    unknown = trunks.inbound(source, request_from_provider("4930000"))
    assert unknown is not None and unknown.extension_id is None
    foreign = trunks.inbound(source, request_from_provider("4930779"))
    assert foreign is not None and foreign.extension_id is None
    assert foreign.client_id == world.client.id
    # a tel: Request-URI, a To user with visual separators
    tel = request_from_provider("x")
    tel.uri = parse_uri("tel:+4930777;phone-context=+49")
    assert trunks.inbound(source, tel) == expected
    dashed = request_from_provider("nobody", "+49-30-777")
    assert trunks.inbound(source, dashed) == expected
    # not from a trunk host
    assert trunks.inbound(("127.0.0.2", 5090), request_from_provider("4930777")) is None
    assert trunks.inbound(("not an ip", 5090), request_from_provider("4930777")) is None


def test_inbound_tells_trunks_on_one_host_apart_by_port(services: Services, world: World) -> None:
    trunks = TrunkService(services.database, services.settings)
    ours = add_trunk(services, world.client.id, port=5090)
    theirs = add_trunk(services, world.other_client.id, host="localhost", port=5092)
    add_trunk(services, world.client.id, port=5094, enabled=False)
    services.routing.create_did(world.client.id, "4930701", world.ext101.id)
    services.routing.create_did(world.other_client.id, "4930702", world.other_ext.id)

    mine = trunks.inbound(("127.0.0.1", 5090), request_from_provider("4930701"))
    assert mine == InboundCall(world.client.id, ours, "4930701", world.ext101.id, "101")
    # the other client's trunk may not reach our extensions, even for our DID
    other = trunks.inbound(("127.0.0.1", 5092), request_from_provider("4930701"))
    assert other is not None and (other.trunk_id, other.extension_id) == (theirs, None)
    other = trunks.inbound(("127.0.0.1", 5092), request_from_provider("4930702"))
    assert other == InboundCall(world.other_client.id, theirs, "4930702", world.other_ext.id, "101")
    # an unknown source port on a shared host: the DID's owner among the host's trunks
    either = trunks.inbound(("127.0.0.1", 40000), request_from_provider("4930702"))
    assert either is not None and (either.trunk_id, either.extension_id) == (
        theirs,
        world.other_ext.id,
    )


def test_inbound_leaves_registered_phones_on_a_trunk_host_alone(
    services: Services, world: World
) -> None:
    bindings = Bindings()
    trunks = TrunkService(
        services.database, services.settings, bindings=bindings, clock=lambda: NOW
    )
    add_trunk(services, world.client.id, port=5090)
    services.routing.create_did(world.client.id, "4930777", world.ext102.id)
    phone_user = f"{world.client.prefix}*101"
    bindings.put(
        phone_user,
        Binding(f"sip:{phone_user}@127.0.0.1:40002", ("127.0.0.1", 40002), "udp", NOW + 60, "r", 1),
    )
    from_phone = request_from_provider("4930777")
    from_phone.headers.set("From", f"<sip:{phone_user}@127.0.0.1>;tag=ph")
    # the phone's INVITE (its From user registered from this very address) is the phone's
    assert trunks.inbound(("127.0.0.1", 40002), from_phone) is None
    # the same From from another port, or once the binding expired, is the trunk's
    assert trunks.inbound(("127.0.0.1", 40004), from_phone) is not None
    later = TrunkService(
        services.database, services.settings, bindings=bindings, clock=lambda: NOW + 61
    )
    assert later.inbound(("127.0.0.1", 40002), from_phone) is not None


# ---------------------------------------------------------------------- registration with SIPp


async def refuse(incoming: Incoming) -> Response:
    return make_response(incoming.request, 405)


async def poll(condition: Callable[[], bool], seconds: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.mark.skipif(not SIPP_AVAILABLE, reason="needs SIPp (sip-tester)")
@pytest.mark.parametrize(
    ("password", "ending", "transport"),
    [
        (PASSWORD, "stop", "udp"),
        (PASSWORD, "stop", "tcp"),
        (PASSWORD, "disable", "udp"),
        ("wrong-password", "stop", "udp"),
    ],
)
def test_registration_with_a_real_provider(
    services: Services,
    world: World,
    tmp_path: Path,
    password: str,
    ending: str,
    transport: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    right = password == PASSWORD
    peer = SippPeer(
        "trunk_register.xml",
        tmp_path / "sipp",
        timeout=30,
        args=["-t", "t1"] if transport == "tcp" else [],
    )
    # a trunk that does not register is left alone
    add_trunk(services, world.client.id, port=peer.port + 2, username=USER, password="x")
    trunks = TrunkService(services.database, services.settings, reload_interval=0.3, retry_min=60)
    trunk = 0

    async def main() -> None:
        nonlocal trunk
        endpoint = SipEndpoint(refuse)
        await endpoint.start("127.0.0.1", 0)
        await peer.start()
        if transport == "tcp":
            await peer.listening_tcp()
        try:
            await trunks.start(endpoint)
            # created while running: the next reload picks it up
            trunk = await asyncio.to_thread(
                add_trunk,
                services,
                world.client.id,
                port=peer.port,
                username=USER,
                password=password,
                register=True,
                register_expires=300,
                transport=transport,
            )
            if right:
                # registered, then refreshed (granted 2 s) before the provider's expiry
                await poll(lambda: trunks.status().get(trunk) == "registered", 15)
                await poll(lambda: registered_lines() >= 2, 10)
            else:
                await poll(lambda: trunks.status().get(trunk) == "failed: 403 Forbidden", 15)
            assert list(trunks.status()) == [trunk]
            if ending == "disable":
                await asyncio.to_thread(
                    services.routing.update_trunk, world.client.id, trunk, {"enabled": False}
                )
                await poll(lambda: trunks.status() == {}, 10)
            else:
                await trunks.stop()
                assert trunks.status() == {}
            status = await peer.wait(15)
            assert status == 0, peer.output()
        finally:
            await trunks.stop()
            await peer.stop()
            await endpoint.stop()

    def registered_lines() -> int:
        return sum(1 for line in messages() if line.startswith(f"trunk {trunk} registered to"))

    def messages() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "callgate.sip"]

    with caplog.at_level(logging.INFO, logger="callgate.sip"):
        asyncio.run(asyncio.wait_for(main(), timeout=60))
    lines = messages()
    if right:
        assert f"trunk {trunk} registered to 127.0.0.1:{peer.port} expires=2" in lines, lines
        assert f"trunk {trunk} registered to 127.0.0.1:{peer.port} expires=60" in lines, lines
        assert f"trunk {trunk} unregistered from 127.0.0.1:{peer.port}" in lines, lines
    else:
        assert f"trunk {trunk} registration failed: 403 Forbidden" in lines, lines
        assert not any("unregistered" in line for line in lines), lines
    assert not any(password in line for line in lines)
