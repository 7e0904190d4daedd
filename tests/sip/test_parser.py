"""Parser, serializer and response helpers, including the RFC 4475 torture messages."""

from __future__ import annotations

import pytest

from callgate.sip.headers import AuthHeader, Headers, NameAddr, Via
from callgate.sip.message import Request, Response
from callgate.sip.parser import (
    ParseError,
    StreamFramer,
    can_respond,
    error_response,
    make_response,
    parse,
)
from callgate.sip.uri import SipUri
from tests.sip.torture import INVALID, VALID

# RFC 4475 §3.1.2/§3.3: what a server does with each invalid message (400/505 answered, or dropped
# because no response can be built: no From/To/Call-ID, or it is a response).
EXPECTED_INVALID = {
    "badinv01": 400,
    "clerr": 400,
    "ncl": 400,
    "scalar02": 400,
    "quotbal": 400,
    "ltgtruri": 400,
    "lwsruri": 400,
    "lwsstart": 400,
    "trws": 400,
    "escruri": 400,
    "mcl01": 400,
    "multi01": 400,
    "mismatch01": 400,
    "badvers": 505,
    "baddn": 400,
    "badaspec": 400,
    "regbadct": 400,
    "insuf": None,
    "scalarlg": None,
    "bigcode": None,
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_torture_messages_parse_and_round_trip(name: str) -> None:
    message = parse(VALID[name])
    again = parse(bytes(message))
    assert type(again) is type(message)
    assert again.headers == message.headers
    assert again.body == message.body


@pytest.mark.parametrize("name", sorted(EXPECTED_INVALID))
def test_invalid_torture_messages_get_400_or_are_dropped(name: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(INVALID[name])
    expected = EXPECTED_INVALID[name]
    assert can_respond(caught.value) is (expected is not None)
    if expected is not None:
        response = error_response(caught.value)
        assert response.status == expected
        assert response.call_id and response.headers.get("CSeq")
        # the others' bad Via/To/CSeq is copied as it came
        if name in (
            "clerr",
            "ncl",
            "lwsruri",
            "lwsstart",
            "trws",
            "escruri",
            "mcl01",
            "multi01",
            "mismatch01",
            "badvers",
            "ltgtruri",
            "regbadct",
        ):
            reparsed = parse(bytes(response))
            assert isinstance(reparsed, Response) and reparsed.to.tag is not None


def test_wsinv_reads_folded_and_compact_headers() -> None:
    request = parse(VALID["wsinv"])
    assert isinstance(request, Request)
    assert request.to.tag == "1918181833n"
    assert request.from_.tag == "98asjd8"
    assert request.from_.display_name == 'J Rosenberg \\"'
    assert request.max_forwards == 68
    assert request.cseq.seq == 9 and request.cseq.method == "INVITE"
    vias = request.vias
    assert [(v.transport, v.host) for v in vias] == [
        ("UDP", "192.0.2.2"),
        ("TCP", "spindle.example.com"),
        ("UDP", "192.168.255.111"),
    ]
    assert vias[2].branch == "z9hG4bK30239"
    assert request.headers.get("Subject") == ""
    assert request.headers.get("newfangledheader") == "newfangled value continued newfangled value"
    assert request.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    (contact,) = request.contacts
    assert contact.display_name == 'Quoted string ""'
    assert contact.params["NEWPARAM"] == "newvalue" and contact.params["q"] == "0.33"
    assert "secondparam" in contact.params
    assert isinstance(request.uri, SipUri) and "unknownparam" in request.uri.params
    assert len(request.body) == 150


def test_dblreq_keeps_only_the_first_message() -> None:
    request = parse(VALID["dblreq"])
    assert isinstance(request, Request) and request.method == "REGISTER"
    assert request.body == b""
    assert request.call_id.startswith("dblreq.0ha0isndaksdj99")


def test_semiuri_user_with_semicolon_and_escape() -> None:
    request = parse(VALID["semiuri"])
    assert isinstance(request.uri, SipUri)
    assert request.uri.user == "user;par=u%40example.net"
    assert request.uri.user_unescaped == "user;par=u@example.net"
    assert request.uri.params.items() == []


def test_transports_and_reasons() -> None:
    request = parse(VALID["transports"])
    assert [v.transport for v in request.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    no_reason = parse(VALID["noreason"])
    assert isinstance(no_reason, Response) and no_reason.status == 100 and no_reason.reason == ""
    unreason = parse(VALID["unreason"])
    assert isinstance(unreason, Response) and unreason.status == 200
    assert bytes(unreason).split(b"\r\n")[0] == VALID["unreason"].split(b"\r\n")[0]


def test_mpart01_binary_body_is_framed_exactly() -> None:
    message = parse(VALID["mpart01"])
    assert b"\x00" in message.body
    assert len(message.body) == message.content_length


def test_compact_forms_are_expanded() -> None:
    raw = (
        b"OPTIONS sip:100@pbx SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nf: <sip:a@h>;tag=1\r\n"
        b"t: <sip:b@h>\r\ni: abc\r\nCSeq: 1 OPTIONS\r\nm: <sip:a@1.2.3.4>\r\nk: replaces\r\n"
        b"l: 0\r\n\r\n"
    )
    message = parse(raw)
    names = [name for name, _ in message.headers]
    assert names == [
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Supported",
        "Content-Length",
    ]
    assert b"\r\nCall-ID: abc\r\n" in bytes(message)


def test_udp_content_length_rules() -> None:
    base = b"MESSAGE sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
    base += b"From: <sip:a@h>;tag=1\r\n"
    base += b"To: <sip:b@h>\r\nCall-ID: x\r\nCSeq: 1 MESSAGE\r\n"
    assert parse(base + b"\r\nhello").body == b"hello"  # no Content-Length: rest of datagram
    assert parse(base + b"Content-Length: 2\r\n\r\nhello").body == b"he"
    with pytest.raises(ParseError):
        parse(base + b"Content-Length: 9\r\n\r\nhello")
    with pytest.raises(ParseError):
        parse(base + b"Content-Length: five\r\n\r\nhello")


def test_serialization_sets_content_length() -> None:
    request = parse(VALID["lwsdisp"])
    request.body = b"abc"
    assert parse(bytes(request)).body == b"abc"
    assert bytes(request).count(b"Content-Length") == 1


def test_make_response_copies_and_tags() -> None:
    request = parse(VALID["lwsdisp"])
    assert isinstance(request, Request)
    request.headers.add("Record-Route", "<sip:proxy.example.com;lr>")
    response = make_response(request, 200, to_tag="abc")
    assert response.to.tag == "abc"
    assert response.headers.get_all("Via") == request.headers.get_all("Via")
    assert response.call_id == request.call_id and str(response.cseq) == "60 OPTIONS"
    assert response.headers.get("Record-Route") == "<sip:proxy.example.com;lr>"
    trying = make_response(request, 100)
    assert trying.to.tag is None and trying.reason == "Trying"
    assert make_response(request, 486).to.tag  # a random tag when none is given


def test_stream_framer_splits_and_waits() -> None:
    one = bytes(parse(VALID["wsinv"]))
    two = bytes(parse(VALID["lwsdisp"]))
    framer = StreamFramer()
    stream = b"\r\n\r\n" + one + two
    got = []
    for i in range(0, len(stream), 7):  # byte-dribbled
        got += framer.feed(stream[i : i + 7])
    assert [type(m).__name__ for m in got] == ["Request", "Request"]
    assert framer.pings == 1
    assert got[0].body == parse(one).body


def test_stream_framer_requires_content_length_and_limits() -> None:
    no_length = VALID["lwsdisp"].replace(b"l: 0\r\n", b"")
    with pytest.raises(ParseError) as caught:
        StreamFramer().feed(no_length)
    assert caught.value.fatal and can_respond(caught.value)
    with pytest.raises(ParseError):
        StreamFramer(max_header_bytes=100).feed(b"OPTIONS sip:a@h SIP/2.0\r\n" + b"X: y\r\n" * 40)
    with pytest.raises(ParseError):
        StreamFramer(max_body_bytes=10).feed(VALID["wsinv"])


def test_stream_framer_returns_recoverable_errors_in_line() -> None:
    bad = INVALID["mismatch01"]
    items = StreamFramer().feed(bad + VALID["lwsdisp"])
    assert isinstance(items[0], ParseError) and isinstance(items[1], Request)


def test_headers_container() -> None:
    headers = Headers([("via", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b"), ("X-A", "1")])
    headers.add_first("Via", "SIP/2.0/TCP c;branch=z9hG4bK2")
    assert len(headers.values("VIA")) == 3
    assert headers.get("x-a") == "1"
    headers.set("X-A", "2")
    headers.remove("via")
    assert list(headers) == [("X-A", "2")]


def test_typed_values() -> None:
    via = Via.parse("SIP/2.0/udp 10.0.0.1:5062;branch=z9hG4bKx;rport;received=1.2.3.4")
    assert via.transport == "UDP" and via.port == 5062 and via.wants_rport and via.rport is None
    assert via.received == "1.2.3.4"
    star = NameAddr.parse("*")
    assert star.wildcard and str(star) == "*"
    contact = NameAddr.parse("<sip:00012*101@10.0.0.5:5071;transport=UDP>;expires=300")
    assert contact.expires == 300 and contact.sip_uri.user == "00012*101"
    auth = AuthHeader.parse('Digest realm="pbx", nonce="a\\"b", algorithm=MD5, qop="auth"')
    assert auth.get("NONCE") == 'a"b' and auth.get("algorithm") == "MD5"
