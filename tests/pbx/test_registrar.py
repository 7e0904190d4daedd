"""The sans-I/O registrar: digest (MD5, SHA-256), stale and replayed nonces, bindings, expiry."""

from __future__ import annotations

import pytest

from callgate.pbx.registrar import Bindings, Registrar, Result, credentials_user
from callgate.pbx.repository import SipAccount
from callgate.sip.digest import DigestServer
from callgate.sip.headers import NameAddr
from tests.pbx.helpers import PAIR, REALM, USER, answer, register

ACCOUNT = SipAccount(USER, 1, 1, PAIR, blocked=False)
SOURCE = ("127.0.0.1", 5071)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0


@pytest.fixture
def registrar() -> Registrar:
    return Registrar(DigestServer(b"k" * 32, REALM, nonce_lifetime=300), Bindings(), min_expires=60)


def _authenticated(
    registrar: Registrar, now: float, *, algorithm: str = "SHA-256", cseq: int = 1, **kwargs: object
) -> tuple[int, list[str], Result]:
    challenge = registrar.register(register(cseq=cseq, **kwargs), SOURCE, now, None)  # type: ignore[arg-type]
    assert challenge.response.status == 401 and challenge.result is Result.CHALLENGED
    retry = register(
        cseq=cseq + 1,
        authorization=answer(challenge.response, algorithm=algorithm),
        **kwargs,  # type: ignore[arg-type]
    )
    assert credentials_user(retry, REALM) == USER
    done = registrar.register(retry, SOURCE, now, ACCOUNT)
    return done.response.status, done.response.headers.get_all("Contact"), done.result


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_right_password_registers_with_either_algorithm(
    registrar: Registrar, algorithm: str
) -> None:
    status, contacts, result = _authenticated(registrar, 1000.0, algorithm=algorithm)
    assert (status, result) == (200, Result.REGISTERED)
    assert len(contacts) == 1
    contact = NameAddr.parse(contacts[0])
    assert str(contact.uri) == f"sip:{USER}@127.0.0.1:5071" and contact.expires == 300
    [binding] = registrar.bindings.lookup(USER, 1000.0)
    assert binding.source == SOURCE and binding.transport == "udp"


def test_challenge_offers_sha256_then_md5_with_qop_auth(registrar: Registrar) -> None:
    response = registrar.register(register(), SOURCE, 0.0, None).response
    values = response.headers.get_all("WWW-Authenticate")
    assert [v.split("algorithm=")[1].split(",")[0] for v in values] == ["SHA-256", "MD5"]
    assert all('qop="auth"' in v and f'realm="{REALM}"' in v for v in values)


def test_wrong_password_and_unknown_user_get_the_same_403(registrar: Registrar) -> None:
    challenge = registrar.register(register(), SOURCE, 0.0, None).response
    wrong = register(cseq=2, authorization=answer(challenge, password="not-the-password"))
    outcome = registrar.register(wrong, SOURCE, 0.0, ACCOUNT)
    assert (outcome.response.status, outcome.reason) == (403, "wrong password")
    unknown = registrar.register(
        register(cseq=3, authorization=answer(challenge, nc=2)), SOURCE, 0.0, None
    )
    assert unknown.response.status == 403 and unknown.response.reason == "Forbidden"
    assert registrar.bindings.lookup(USER, 0.0) == []


def test_blocked_account_is_refused_after_authenticating(registrar: Registrar) -> None:
    challenge = registrar.register(register(), SOURCE, 0.0, None).response
    blocked = SipAccount(USER, 1, 1, PAIR, blocked=True)
    outcome = registrar.register(
        register(cseq=2, authorization=answer(challenge)), SOURCE, 0.0, blocked
    )
    assert outcome.response.status == 403 and outcome.reason == "account blocked"


def test_stale_nonce_rechallenges_with_stale_true_then_registers(registrar: Registrar) -> None:
    challenge = registrar.register(register(), SOURCE, 0.0, None).response
    late = registrar.register(
        register(cseq=2, authorization=answer(challenge)), SOURCE, 301.0, ACCOUNT
    )
    assert late.response.status == 401 and late.result is Result.CHALLENGED
    assert all("stale=true" in v for v in late.response.headers.get_all("WWW-Authenticate"))
    fresh = registrar.register(
        register(cseq=3, authorization=answer(late.response)), SOURCE, 301.0, ACCOUNT
    )
    assert fresh.response.status == 200


def test_replayed_credentials_are_challenged_again(registrar: Registrar) -> None:
    challenge = registrar.register(register(), SOURCE, 0.0, None).response
    credentials = answer(challenge)
    first = registrar.register(register(cseq=2, authorization=credentials), SOURCE, 1.0, ACCOUNT)
    assert first.response.status == 200
    replay = registrar.register(register(cseq=3, authorization=credentials), SOURCE, 2.0, ACCOUNT)
    assert replay.response.status == 401 and replay.reason == "replay"


def test_another_users_address_of_record_is_refused(registrar: Registrar) -> None:
    challenge = registrar.register(register(), SOURCE, 0.0, None).response
    request = register(cseq=2, authorization=answer(challenge))
    request.headers.set("To", "<sip:00012*102@127.0.0.1>")
    assert registrar.register(request, SOURCE, 0.0, ACCOUNT).response.status == 403


def test_interval_too_brief_gets_423_with_min_expires(registrar: Registrar) -> None:
    status, _, result = _authenticated(registrar, 0.0, expires=30)
    assert (status, result) == (423, Result.FAILED)
    assert registrar.bindings.lookup(USER, 0.0) == []


def test_expires_zero_and_contact_star_unregister(registrar: Registrar) -> None:
    assert _authenticated(registrar, 0.0, call_id="a")[0] == 200
    assert _authenticated(registrar, 0.0, call_id="b", port=5073)[0] == 200
    assert len(registrar.bindings.lookup(USER, 0.0)) == 2
    status, contacts, _ = _authenticated(registrar, 0.0, call_id="a", cseq=5, expires=0)
    assert status == 200 and len(contacts) == 1 and "5073" in contacts[0]
    status, contacts, _ = _authenticated(registrar, 0.0, call_id="c", contact="*", expires=0)
    assert (status, contacts) == (200, [])
    assert registrar.bindings.lookup(USER, 0.0) == []


def test_contact_star_without_expires_zero_is_a_400(registrar: Registrar) -> None:
    assert _authenticated(registrar, 0.0, contact="*", expires=300)[0] == 400


def test_bindings_expire_on_the_injected_clock(registrar: Registrar) -> None:
    clock = Clock()
    assert _authenticated(registrar, clock.now, expires=120)[0] == 200
    clock.now += 60
    [binding] = registrar.bindings.lookup(USER, clock.now)
    assert binding.remaining(clock.now) == 60
    clock.now += 61
    assert registrar.bindings.lookup(USER, clock.now) == []
    assert registrar.bindings.purge(clock.now) == 1
    # a query (no Contact) lists nothing now
    status, contacts, _ = _authenticated(registrar, clock.now, contact="", expires=None)
    assert (status, contacts) == (200, [])


def test_expires_above_the_maximum_is_shortened(registrar: Registrar) -> None:
    status, contacts, _ = _authenticated(registrar, 0.0, expires=100_000)
    assert status == 200 and NameAddr.parse(contacts[0]).expires == 3600


def test_out_of_order_cseq_on_the_same_call_id_is_a_500(registrar: Registrar) -> None:
    assert _authenticated(registrar, 0.0, cseq=10)[0] == 200
    assert _authenticated(registrar, 0.0, cseq=3)[0] == 500


def test_baresip_gets_an_md5_challenge_only(registrar: Registrar) -> None:
    request = register()
    request.headers.add("User-Agent", "baresip v1.0.0 (x86_64/linux)")
    values = registrar.register(request, SOURCE, 0.0, None).response.headers.get_all(
        "WWW-Authenticate"
    )
    assert len(values) == 1 and "algorithm=MD5" in values[0]
