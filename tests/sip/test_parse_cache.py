"""Parsed header values and URIs are cached by their text: callers still get values of their own,
and the header container built by the parser is the one ``add`` would build."""

from __future__ import annotations

import pytest

from callgate.sip.headers import HeaderError, Headers, NameAddr, Via
from callgate.sip.parser import ParseError, parse
from callgate.sip.uri import Params, SipUri, parse_uri
from tests.sip.test_digest import _answer, _lookup, _server

INVITE = (
    b"INVITE sip:bob@example.com SIP/2.0\r\n"
    b"v: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKcache1;rport\r\n"
    b'f: "Alice" <sip:alice@example.com>;tag=a1\r\n'
    b"t: <sip:bob@example.com>\r\n"
    b"i: cache-1@192.0.2.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"m: <sip:alice@192.0.2.1:5060;transport=UDP>\r\n"
    b"X-Custom: one\r\n"
    b"X-Custom: two,\r\n three\r\n"
    b"l: 0\r\n\r\n"
)


def test_changing_a_parsed_value_does_not_change_the_next_one() -> None:
    message = parse(INVITE)
    first = message.from_
    first.params["tag"] = "changed"
    assert isinstance(first.uri, SipUri)
    first.uri.params["lr"] = None
    first.uri.host = "elsewhere.example.com"
    again = parse(INVITE).from_
    assert again.tag == "a1" and str(again) == '"Alice" <sip:alice@example.com>;tag=a1'
    assert message.from_.tag == "a1"

    via = message.top_via
    via.params["received"] = "198.51.100.7"
    assert parse(INVITE).top_via.received is None
    assert str(message.top_via) == "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKcache1;rport"

    uri = parse_uri("sip:bob@example.com;transport=tcp")
    assert isinstance(uri, SipUri)
    uri.params["transport"] = "udp"
    assert str(parse_uri("sip:bob@example.com;transport=tcp")) == (
        "sip:bob@example.com;transport=tcp"
    )


def test_a_bad_value_is_refused_every_time() -> None:
    for _ in range(3):
        with pytest.raises(HeaderError):
            NameAddr.parse("<sip:bob@exa mple.com>")
        with pytest.raises(HeaderError):
            Via.check("SIP/2.0/UDP")
        with pytest.raises(HeaderError):
            NameAddr.check('"unterminated <sip:a@b>')


def test_parsed_headers_equal_the_ones_add_builds() -> None:
    message = parse(INVITE)
    built = Headers()
    for name, value in [
        ("v", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKcache1;rport"),
        ("f", '"Alice" <sip:alice@example.com>;tag=a1'),
        ("t", "<sip:bob@example.com>"),
        ("i", "cache-1@192.0.2.1"),
        ("CSeq", "1 INVITE"),
        ("m", "<sip:alice@192.0.2.1:5060;transport=UDP>"),
        ("X-Custom", "one"),
        ("X-Custom", "two, three"),
        ("l", "0"),
    ]:
        built.add(name, value)
    assert message.headers == built
    assert list(message.headers) == list(built)
    assert [name for name, _ in message.headers][:3] == ["Via", "From", "To"]
    assert message.headers.count("x-custom") == 2 and message.headers.count("Route") == 0
    assert message.headers.get_all("X-CUSTOM") == ["one", "two, three"]


def test_a_lone_cr_inside_a_header_value_is_still_refused() -> None:
    with pytest.raises(ParseError):
        parse(INVITE.replace(b"X-Custom: one", b"X-Custom: o\rne"))


def test_expired_nonces_leave_the_replay_table() -> None:
    server = _server(max_tracked=100, nonce_lifetime=10.0)
    for i in range(5):
        assert server.verify(_answer(server, float(i), "MD5"), "REGISTER", i + 0.5, _lookup).ok
    assert server.tracked == 5
    # a second later all five have expired: the next new nonce sweeps them
    assert server.verify(_answer(server, 30.0, "MD5"), "REGISTER", 30.5, _lookup).ok
    assert server.tracked == 1


def test_a_full_replay_table_is_swept_before_anything_is_evicted() -> None:
    server = _server(max_tracked=3, nonce_lifetime=10.0)
    answers = [_answer(server, 0.0, "MD5") for _ in range(2)]
    for value in answers:
        assert server.verify(value, "REGISTER", 0.1, _lookup).ok
    late = _answer(server, 9.5, "MD5")
    assert server.verify(late, "REGISTER", 9.6, _lookup).ok
    # within the same second: the two expired entries go, the live one stays tracked
    fresh = _answer(server, 10.2, "MD5")
    assert server.verify(fresh, "REGISTER", 10.3, _lookup).ok
    assert server.tracked == 2
    assert server.verify(late, "REGISTER", 10.4, _lookup).outcome.name == "REPLAY"


def test_copies_of_parameters_share_nothing_once_either_side_changes() -> None:
    original = Params([("transport", "udp"), ("lr", None)])
    clone = original.copy()
    clone["transport"] = "tcp"
    del clone["lr"]
    assert original.items() == [("transport", "udp"), ("lr", None)]
    assert clone.items() == [("transport", "tcp")]
    second = original.copy()
    assert original.pop("transport") == "udp"
    original["maddr"] = "192.0.2.9"
    assert second.items() == [("transport", "udp"), ("lr", None)]
    assert original.items() == [("lr", None), ("maddr", "192.0.2.9")]
    third = second.copy()
    assert third.pop("nothing") is None and second.copy() == third == second


def test_a_header_checked_by_the_parser_is_handed_out_as_a_copy() -> None:
    text = "<sip:carol@192.0.2.4>;tag=check-only"
    NameAddr.check(text)
    via_text = "SIP/2.0/UDP 192.0.2.4:5070;branch=z9hG4bKcheck-only"
    Via.check(via_text)
    addr = NameAddr.parse(text)
    addr.params["tag"] = "mine"
    assert NameAddr.parse(text).tag == "check-only"
    via = Via.parse(via_text)
    via.params["branch"] = "z9hG4bKother"
    assert Via.parse(via_text).branch == "z9hG4bKcheck-only"
