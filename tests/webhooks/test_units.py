"""The pure parts: signatures, retry delays, Retry-After, addresses, request targets, matching."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from callgate.calls.live import CallEvent, CallStatus
from callgate.common.clock import utcnow
from callgate.events.client import Target, is_public_address
from callgate.events.delivery import RetryPolicy, retry_after_seconds, shown_url, with_query
from callgate.events.models import EventType
from callgate.events.repository import MatchingHandler
from callgate.events.signing import signature_header, verify
from callgate.events.sink import order_key, outbox_rows


def test_a_signature_verifies_only_with_its_secret_payload_and_time() -> None:
    header = signature_header("s3cret", 1_700_000_000, "a=1&b=2")
    assert header.startswith("t=1700000000,v1=") and len(header) == len("t=1700000000,v1=") + 64
    assert verify("s3cret", header, "a=1&b=2", now=1_700_000_010)
    assert not verify("other", header, "a=1&b=2", now=1_700_000_010)
    assert not verify("s3cret", header, "a=1&b=3", now=1_700_000_010)
    assert not verify("s3cret", header, "a=1&b=2", now=1_700_000_000 + 301)
    assert not verify("s3cret", "garbage", "a=1&b=2")
    assert not verify("s3cret", "t=x,v1=00", "a=1&b=2")


def test_the_signature_is_the_documented_hmac() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"k", b"42.x=1", hashlib.sha256).hexdigest()
    assert signature_header("k", 42, "x=1") == f"t=42,v1={expected}"


def test_retry_delays_double_with_jitter_up_to_the_cap() -> None:
    random.seed(7)
    policy = RetryPolicy(base=5, cap=3600, max_age=86400)
    for attempts, ceiling in [(1, 5), (2, 10), (3, 20), (10, 2560), (11, 3600), (60, 3600)]:
        delays = [policy.delay(attempts) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (attempts, min(delays))
        assert max(delays) - min(delays) > ceiling / 10  # jitter spreads them
    # Retry-After is a lower bound, even above the cap, but not beyond the event's age.
    assert policy.delay(1, retry_after=120) == 120
    assert policy.delay(1, retry_after=7200) == 7200
    assert policy.delay(1, retry_after=10**9) == 86400


def test_a_day_of_retries_is_about_twenty_attempts() -> None:
    policy = RetryPolicy(base=5, cap=3600, max_age=86400)
    elapsed, attempts = 0.0, 0
    while elapsed <= 86400 and attempts < 1000:
        attempts += 1
        elapsed += policy.delay(attempts)
    assert 20 <= attempts <= 60


def test_retry_after_takes_seconds_or_an_http_date() -> None:
    now = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)
    assert retry_after_seconds("30", now) == 30.0
    assert retry_after_seconds("Sat, 28 Nov 2026 12:01:00 GMT", now) == 60.0
    assert retry_after_seconds("Sat, 28 Nov 2026 11:00:00 GMT", now) == 0.0
    for unusable in (None, "", "soon", "-5", "1.5"):
        assert retry_after_seconds(unusable, now) is None


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.0.0.5", False),
        ("172.16.3.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),  # noqa: S104 - an address to refuse, not to bind
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
    ],
)
def test_only_public_addresses_are_called(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def test_request_targets_keep_the_query_as_signed() -> None:
    target = Target.of(with_query("http://crm.example.com:8080/in?x=a%20b", "EventType=dial-in"))
    assert (target.host, target.port, target.host_header) == (
        "crm.example.com",
        8080,
        "crm.example.com:8080",
    )
    assert target.target == "/in?x=a%20b&EventType=dial-in"
    assert target.query == "x=a%20b&EventType=dial-in"
    assert Target.of(with_query("https://h.example/", "a=1")).target == "/?a=1"
    assert Target.of(with_query("https://h.example/?", "a=1")).target == "/?a=1"
    assert Target.of("https://h.example").target == "/"
    assert Target.of("https://h.example").host_header == "h.example"
    assert Target.of("http://[::1]:81/x").host_header == "[::1]:81"
    idn = Target.of("https://bücher.example/päth?q=ü")
    assert idn.host == "xn--bcher-kva.example"
    assert idn.target == "/p%C3%A4th?q=%C3%BC"
    with pytest.raises(ValueError):
        Target.of("ftp://h.example/")


def test_logged_urls_leave_out_the_query() -> None:
    assert shown_url("https://h.example:8443/in?token=secret") == "https://h.example:8443/in"


def _event(extension_id: int, kind: EventType, client_id: int = 1) -> CallEvent:
    return CallEvent(
        event_type=kind,
        client_id=client_id,
        extension_id=extension_id,
        call_id="c1",
        sub_call_id="s1",
        call_api_id="a1",
        call_flow="in",
        call_status=CallStatus.CALLING,
        event_time=utcnow(),
    )


def test_one_outbox_row_per_event_and_matching_handler() -> None:
    handlers = [
        MatchingHandler(1, 1, 10, "dial-in", "http://a/"),
        MatchingHandler(2, 1, None, "dial-in", "http://b/"),  # phone_events
        MatchingHandler(3, 1, 11, "dial-in", "http://c/"),
        MatchingHandler(4, 1, 10, "hangup", "http://a/"),
    ]
    now = utcnow()
    batch = [
        (_event(10, EventType.DIAL_IN), now),  # handlers 1 and 2
        (_event(12, EventType.DIAL_IN), now),  # a fax: no phone_events, no handler of its own
        (_event(10, EventType.ANSWER), now),  # none
        (_event(10, EventType.DIAL_IN, client_id=2), now),  # another client: none
    ]
    rows = outbox_rows(batch, handlers, phones={10, 11})
    assert [(row["handler_id"], row["event_id"]) for row in rows] == [
        (1, batch[0][0].event_id),
        (2, batch[0][0].event_id),
    ]
    assert rows[0]["payload"] == rows[1]["payload"]
    assert rows[0]["order_key"] == order_key("http://a/", "c1") != rows[1]["order_key"]
    assert rows[0]["next_attempt_at"] == now and rows[0]["state"] == "pending"


def test_the_verification_example_of_the_docs_works() -> None:
    import re
    import time
    from pathlib import Path

    docs = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text()
    code = re.search(r"```python\n(.*?)```", docs, re.DOTALL)
    assert code is not None
    namespace: dict[str, object] = {}
    exec(code.group(1), namespace)  # noqa: S102 - our own documentation
    check = namespace["callgate_signature_ok"]
    assert callable(check)
    header = signature_header("k3y", int(time.time()), "EventType=dial-in&CallID=c%201")
    assert check("k3y", header, b"EventType=dial-in&CallID=c%201") is True
    assert check("k3y", header, b"EventType=hangup&CallID=c%201") is False
    assert check("wrong", header, b"EventType=dial-in&CallID=c%201") is False
    assert check("k3y", "nonsense", b"") is False


def test_an_event_with_an_over_long_id_is_left_out_not_retried_forever() -> None:
    handlers = [MatchingHandler(1, 1, 10, "dial-in", "http://a/")]
    now = utcnow()
    good = _event(10, EventType.DIAL_IN)
    bad = CallEvent(**{**good.__dict__, "event_id": "x" * 65})
    rows = outbox_rows([(bad, now), (good, now)], handlers, phones=set())
    assert [row["event_id"] for row in rows] == [good.event_id]
