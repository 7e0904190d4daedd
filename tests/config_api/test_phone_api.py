"""``/extension/{id}/phone/`` and ``/extension/{id}/incom_rule/``: the SIP password stored only
as HA1 values and never returned, codecs, recording; the incoming-call rule's validation."""

from __future__ import annotations

import hashlib

import pytest

from callgate.phones.models import IncomingRule, PhoneSettings
from callgate.phones.service import digest_ha1
from callgate.services import Services
from tests.api.conftest import ActAs
from tests.api.helpers import assert_error
from tests.config_api.helpers import count_rows, fields_named, row
from tests.support.factories import World

SIP_PASSWORD = "Ph0ne-s3cret!"


def _h(algorithm: str, text: str) -> str:
    function = hashlib.md5 if algorithm == "MD5" else hashlib.sha256
    return function(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("algorithm", "realm", "password", "nonce", "cnonce", "expected"),
    [
        # RFC 2617 §3.5
        (
            "MD5",
            "testrealm@host.com",
            "Circle Of Life",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "0a4f113b",
            "6629fae49393a05397450978507c4ef1",
        ),
        # RFC 7616 §3.9.1, MD5 and SHA-256
        (
            "MD5",
            "http-auth@example.org",
            "Circle of Life",
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            "8ca523f5e9506fed4657c9700eebdbec",
        ),
        (
            "SHA-256",
            "http-auth@example.org",
            "Circle of Life",
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        ),
    ],
)
def test_digest_ha1_gives_the_rfc_responses(
    algorithm: str, realm: str, password: str, nonce: str, cnonce: str, expected: str
) -> None:
    ha1 = digest_ha1("Mufasa", realm, password, algorithm)
    ha2 = _h(algorithm, "GET:/dir/index.html")
    assert _h(algorithm, f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}") == expected


def test_digest_ha1_refuses_unknown_algorithms() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        digest_ha1("u", "r", "p", "SHA-512-256")


def test_phone_settings(services: Services, world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    path = f"/extension/{world.ext101.id}/phone/"
    username = f"{world.client.prefix}*101"
    initial = api.get(path).json()
    assert initial == {
        "extension_id": world.ext101.id,
        "sip_username": username,
        "password_set": False,
        "record_enabled": False,
        "codecs": ["PCMU", "PCMA"],
        "updated": None,
    }
    changed = api.put(
        path, json={"password": SIP_PASSWORD, "record_enabled": True, "codecs": ["PCMA"]}
    )
    assert changed.status_code == 200, changed.text
    assert SIP_PASSWORD not in changed.text and "ha1" not in changed.text
    body = changed.json()
    assert (body["password_set"], body["record_enabled"], body["codecs"]) == (
        True,
        True,
        ["PCMA"],
    )
    stored = row(services, PhoneSettings, world.ext101.id)
    secret = f"{username}:{services.settings.sip_realm}:{SIP_PASSWORD}".encode()
    assert stored.ha1_md5 == hashlib.md5(secret).hexdigest()  # noqa: S324 - digest's MD5
    assert stored.ha1_sha256 == hashlib.sha256(secret).hexdigest()
    assert stored.sip_username == username

    # Order is kept; a change of codecs keeps the password.
    reordered = api.put(path, json={"codecs": ["PCMA", "PCMU"]}).json()
    assert reordered["codecs"] == ["PCMA", "PCMU"] and reordered["password_set"] is True
    fetched = api.get(path)
    assert SIP_PASSWORD not in fetched.text and fetched.json() == reordered
    cleared = api.put(path, json={"password": None}).json()
    assert cleared["password_set"] is False
    assert row(services, PhoneSettings, world.ext101.id).ha1_md5 is None


def test_the_owner_sets_its_own_sip_password(world: World, act_as: ActAs) -> None:
    owner = act_as(world.ext_user, "all")
    assert owner.put("/extension/@me/phone/", json={"password": SIP_PASSWORD}).status_code == 200
    assert owner.get("/extension/@me/phone/").json()["password_set"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": "short"}, "password"),
        ({"password": "has a space"}, "password"),
        ({"password": "pässwörd-long"}, "password"),
        ({"password": "101"}, "password"),
        ({"codecs": []}, "codecs"),
        ({"codecs": ["G729"]}, "codecs"),
        ({"codecs": ["PCMU", "PCMU"]}, "codecs"),
        ({"codecs": "PCMU"}, "codecs"),
        ({"record_enabled": "maybe"}, "record_enabled"),
        ({"ha1_md5": "0" * 32}, "ha1_md5"),
    ],
)
def test_invalid_phone_settings_write_nothing(
    services: Services, world: World, act_as: ActAs, body: dict[str, object], field: str
) -> None:
    api = act_as(world.manager, "all")
    path = f"/extension/{world.ext101.id}/phone/"
    refused = assert_error(api.put(path, json=body), 422, "invalid_input")
    assert field in fields_named(refused), refused
    assert count_rows(services, PhoneSettings) == 0


def test_sip_password_equal_to_the_user_name_is_refused(world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    weak = f"{world.client.prefix}*101"
    if len(weak) >= 8:
        refused = api.put(f"/extension/{world.ext101.id}/phone/", json={"password": weak})
        assert "password" in assert_error(refused, 422, "invalid_input")["fields"]


def test_only_phone_extensions_have_phone_settings(world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    fax = api.post(f"/client/{world.client.id}/extension/", json={"name": "300", "type": "fax"})
    path = f"/extension/{fax.json()['id']}/phone/"
    assert "phone extensions" in assert_error(api.get(path), 404, "not_found")["message"]
    assert_error(api.put(path, json={"record_enabled": True}), 404, "not_found")


def test_incoming_rule(services: Services, world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    path = f"/extension/{world.ext101.id}/incom_rule/"
    assert api.get(path).json() == {
        "extension_id": world.ext101.id,
        "ring_seconds": 30,
        "action": "hangup",
        "forward_to": None,
        "updated": None,
    }
    forward = api.put(path, json={"ring_seconds": 20, "action": "forward", "forward_to": "102"})
    assert forward.status_code == 200, forward.text
    assert (forward.json()["action"], forward.json()["forward_to"]) == ("forward", "102")
    external = api.put(path, json={"forward_to": "+4930123456"}).json()
    assert (external["action"], external["ring_seconds"]) == ("forward", 20)
    voicemail = api.put(path, json={"action": "voicemail"}).json()
    assert (voicemail["action"], voicemail["forward_to"]) == ("voicemail", None)
    assert api.get(path).json() == voicemail
    assert row(services, IncomingRule, world.ext101.id).action == "voicemail"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ring_seconds": 4}, "ring_seconds"),
        ({"ring_seconds": 301}, "ring_seconds"),
        ({"ring_seconds": "ten"}, "ring_seconds"),
        ({"action": "transfer"}, "action"),
        ({"action": "forward"}, "forward_to"),
        ({"action": "forward", "forward_to": "101"}, "forward_to"),
        ({"action": "forward", "forward_to": "sip:evil@example.com"}, "forward_to"),
        ({"action": "forward", "forward_to": "1 02"}, "forward_to"),
        ({"action": "voicemail", "forward_to": "102"}, "forward_to"),
        ({"action": "hangup", "when": "always"}, "when"),
    ],
)
def test_invalid_incoming_rules_write_nothing(
    services: Services, world: World, act_as: ActAs, body: dict[str, object], field: str
) -> None:
    api = act_as(world.manager, "all")
    refused = api.put(f"/extension/{world.ext101.id}/incom_rule/", json=body)
    assert field in assert_error(refused, 422, "invalid_input")["fields"], refused.json()
    assert count_rows(services, IncomingRule) == 0


def test_other_clients_phone_and_rule_are_refused(world: World, act_as: ActAs) -> None:
    api = act_as(world.manager, "all")
    for resource in ("phone", "incom_rule"):
        path = f"/extension/{world.other_ext.id}/{resource}/"
        assert_error(api.get(path), 403, "access_denied")
        assert_error(api.put(path, json={}), 403, "access_denied")
