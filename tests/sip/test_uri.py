"""SIP URI parsing and RFC 3261 §19.1.4 comparison."""

from __future__ import annotations

import pytest

from callgate.sip.uri import AbsoluteUri, SipUri, UriError, parse_sip_uri, parse_uri


def test_full_uri() -> None:
    uri = parse_sip_uri("sips:alice:secret@[2001:db8::1]:5061;transport=TCP;lr?subject=hi&x=y")
    assert uri.scheme == "sips" and uri.secure
    assert (uri.user, uri.password, uri.host, uri.port) == (
        "alice",
        "secret",
        "[2001:db8::1]",
        5061,
    )
    assert uri.transport == "tcp" and uri.loose_route
    assert uri.headers == [("subject", "hi"), ("x", "y")]
    assert str(uri) == "sips:alice:secret@[2001:db8::1]:5061;transport=TCP;lr?subject=hi&x=y"


def test_star_in_user_and_escapes() -> None:
    uri = parse_sip_uri("sip:00012*101@127.0.0.1")
    assert uri.user == "00012*101" and uri.port is None
    assert parse_sip_uri("sip:%61lice@h") == parse_sip_uri("sip:alice@h")
    assert parse_sip_uri("sip:alice@h") != parse_sip_uri("sip:ALICE@h")  # user is case-sensitive


def test_param_names_and_token_values_are_case_insensitive() -> None:
    upper = parse_sip_uri("sip:bob@Example.COM;TRANSPORT=UDP")
    lower = parse_sip_uri("sip:bob@example.com;transport=udp")
    assert upper == lower
    assert upper.params["transport"] == "UDP"  # the spelling is kept
    assert upper.transport == "udp"
    assert parse_sip_uri("sip:bob@h;transport=udp") != parse_sip_uri("sip:bob@h")
    assert parse_sip_uri("sip:bob@h;foo=1") == parse_sip_uri("sip:bob@h")  # unknown: ignored
    assert parse_sip_uri("sip:bob@h:5060") != parse_sip_uri("sip:bob@h")


def test_other_schemes_are_opaque() -> None:
    uri = parse_uri("tel:+1-201-555-0123")
    assert isinstance(uri, AbsoluteUri) and str(uri) == "tel:+1-201-555-0123"
    assert isinstance(parse_uri("SIP:a@b"), SipUri)


@pytest.mark.parametrize(
    "text",
    [
        "sip:",
        "sip:a@",
        "sip:a b@h",
        "sip:a@h:99999",
        "sip:a@h:x",
        "sip:a@[::1",
        "sip:a@h;=x",
        "sip:a@h;;",
        "sip:a@h?noval",
        "<sip:a@h>",
        "sip:a@-bad-.com",
        "nourischeme",
    ],
)
def test_malformed_uris(text: str) -> None:
    with pytest.raises(UriError):
        parse_uri(text)
