"""Digest authentication: RFC 7616 vectors, challenges, verification, expiry, stale and replay."""

from __future__ import annotations

import itertools

from callgate.sip.digest import (
    DigestServer,
    Ha1Pair,
    Outcome,
    answer_challenge,
    digest_response,
    ha1,
    select_challenge,
)
from callgate.sip.headers import AuthHeader

REALM = "pbx.example.com"
USER = "00012*101"
PASSWORD = "s3cret-Pass"
KEY = b"k" * 32


def _lookup(username: str) -> Ha1Pair | None:
    if username != USER:
        return None
    return Ha1Pair(ha1("MD5", USER, REALM, PASSWORD), ha1("SHA-256", USER, REALM, PASSWORD))


def _server(**kwargs: object) -> DigestServer:
    counter = itertools.count()
    return DigestServer(
        KEY, REALM, random_bytes=lambda n: next(counter).to_bytes(n, "big"), **kwargs
    )  # type: ignore[arg-type]


def _answer(
    server: DigestServer,
    now: float,
    algorithm: str,
    *,
    password: str = PASSWORD,
    nc: int = 1,
    method: str = "REGISTER",
) -> str:
    values = server.challenge(now)
    challenge = next(AuthHeader.parse(v) for v in values if algorithm in v)
    return answer_challenge(
        challenge,
        method=method,
        uri="sip:pbx.example.com",
        username=USER,
        password=password,
        cnonce="0a4f113b",
        nc=nc,
    )


def test_rfc7616_vectors() -> None:
    nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
    cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
    for algorithm, expected in (
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ):
        secret = ha1(algorithm, "Mufasa", "http-auth@example.org", "Circle of Life")
        got = digest_response(
            algorithm, secret, nonce, "00000001", cnonce, "auth", "GET", "/dir/index.html"
        )
        assert got == expected
        challenge = AuthHeader.parse(
            f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
            f'nonce="{nonce}", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
        )
        value = answer_challenge(
            challenge,
            method="GET",
            uri="/dir/index.html",
            username="Mufasa",
            password="Circle of Life",
            cnonce=cnonce,
        )
        creds = AuthHeader.parse(value)
        assert creds.get("response") == expected and creds.get("nc") == "00000001"
        assert "qop=auth" in value and f"algorithm={algorithm}" in value


def test_challenge_offers_sha256_then_md5() -> None:
    values = _server().challenge(1000.0)
    parsed = [AuthHeader.parse(v) for v in values]
    assert [p.get("algorithm") for p in parsed] == ["SHA-256", "MD5"]
    assert all(p.get("qop") == "auth" and p.get("realm") == REALM for p in parsed)
    assert parsed[0].get("nonce") == parsed[1].get("nonce") and parsed[0].get("opaque")
    assert select_challenge(values).get("algorithm") == "SHA-256"
    assert "stale=true" in _server().challenge(1.0, stale=True)[0]


def test_verify_both_algorithms_and_wrong_password() -> None:
    server = _server()
    for algorithm in ("MD5", "SHA-256"):
        result = server.verify(_answer(server, 10.0, algorithm), "REGISTER", 11.0, _lookup)
        assert result.ok and result.username == USER and result.algorithm == algorithm
    bad = server.verify(_answer(server, 10.0, "MD5", password="nope"), "REGISTER", 11.0, _lookup)
    assert bad.outcome is Outcome.BAD_RESPONSE
    other_method = server.verify(_answer(server, 10.0, "MD5"), "INVITE", 11.0, _lookup)
    assert other_method.outcome is Outcome.BAD_RESPONSE


def test_forged_nonce_unknown_user_and_garbage() -> None:
    server = _server()
    value = _answer(server, 10.0, "MD5")
    forged = _server().verify(value, "REGISTER", 11.0, _lookup)
    assert forged.ok  # same key: another process of the same PBX accepts it
    other_key = DigestServer(b"x" * 32, REALM).verify(value, "REGISTER", 11.0, _lookup)
    assert other_key.outcome is Outcome.BAD_NONCE
    assert server.verify(value, "REGISTER", 11.0, lambda _: None).outcome is Outcome.UNKNOWN_USER
    assert server.verify("Basic dXNlcjpwYXNz", "REGISTER", 1.0, _lookup).outcome is (
        Outcome.MALFORMED
    )
    assert server.verify('Digest username="x"', "REGISTER", 1.0, _lookup).outcome is (
        Outcome.MALFORMED
    )


def test_expired_nonce_is_stale_only_with_the_right_password() -> None:
    server = _server(nonce_lifetime=60.0)
    assert server.verify(_answer(server, 0.0, "SHA-256"), "REGISTER", 61.0, _lookup).stale
    wrong = server.verify(_answer(server, 0.0, "SHA-256", password="x"), "REGISTER", 61.0, _lookup)
    assert wrong.outcome is Outcome.BAD_RESPONSE


def test_replayed_nc_is_refused_and_higher_nc_accepted() -> None:
    server = _server()
    first = _answer(server, 0.0, "MD5")
    assert server.verify(first, "REGISTER", 1.0, _lookup).ok
    assert server.verify(first, "REGISTER", 2.0, _lookup).outcome is Outcome.REPLAY
    nonce = AuthHeader.parse(first).get("nonce")
    challenge = AuthHeader.parse(
        f'Digest realm="{REALM}", nonce="{nonce}", qop="auth", opaque="{server.opaque}"'
    )
    second = answer_challenge(
        challenge,
        method="REGISTER",
        uri="sip:pbx.example.com",
        username=USER,
        password=PASSWORD,
        cnonce="c2",
        nc=2,
    )
    assert server.verify(second, "REGISTER", 3.0, _lookup).ok


def test_replay_table_is_bounded_and_evicted_nonces_turn_stale() -> None:
    server = _server(max_tracked=3, nonce_lifetime=100.0)
    answers = [_answer(server, float(i), "MD5") for i in range(5)]
    for i, value in enumerate(answers):
        assert server.verify(value, "REGISTER", 10.0 + i, _lookup).ok
    assert server.tracked <= 3
    replay = server.verify(answers[0], "REGISTER", 20.0, _lookup)
    assert replay.outcome in (Outcome.STALE, Outcome.REPLAY) and not replay.ok
    # entries expire with their nonce
    server.verify(_answer(server, 200.0, "MD5"), "REGISTER", 201.0, _lookup)
    assert server.tracked == 1
