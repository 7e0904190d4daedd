"""Dialogs: creation on both sides, route sets, remote targets, CSeq and in-dialog requests."""

from __future__ import annotations

import pytest

from callgate.sip.dialog import Dialog, DialogError, DialogState, dialog_id_of
from callgate.sip.headers import NameAddr
from callgate.sip.parser import make_response, parse
from callgate.sip.uri import SipUri, parse_sip_uri
from tests.sip.wire import make_request


def _pair() -> tuple[Dialog, Dialog]:
    invite = make_request("INVITE", seq=7)
    invite.headers.add("Record-Route", "<sip:p2.example.com;lr>")
    invite.headers.add("Record-Route", "<sip:p1.example.com;lr>")
    invite = parse(bytes(invite))  # as the UAS receives it
    response = make_response(invite, 200, to_tag="bob-tag")
    response.headers.add("Contact", "<sip:102@10.0.0.2:5072;transport=UDP>")
    response = parse(bytes(response))
    uas = Dialog.from_uas(
        invite, "bob-tag", NameAddr(parse_sip_uri("sip:102@10.0.0.2:5072")), confirmed=True
    )
    uac = Dialog.from_uac(invite, response)
    return uac, uas


def test_ids_match_from_each_side() -> None:
    uac, uas = _pair()
    assert uac.id == ("call-1", "alice-tag", "bob-tag")
    assert uas.id == ("call-1", "bob-tag", "alice-tag")
    assert uac.state is DialogState.CONFIRMED
    bye = uac.create_request("BYE", via_host="127.0.0.1", via_port=5071)
    assert dialog_id_of(parse(bytes(bye))) == uas.id


def test_route_sets_and_targets() -> None:
    uac, uas = _pair()
    # the UAC reverses Record-Route, the UAS keeps its order
    assert [str(r.uri) for r in uac.route_set] == ["sip:p1.example.com;lr", "sip:p2.example.com;lr"]
    assert [str(r.uri) for r in uas.route_set] == ["sip:p2.example.com;lr", "sip:p1.example.com;lr"]
    assert str(uac.remote_target) == "sip:102@10.0.0.2:5072;transport=UDP"
    assert str(uas.remote_target) == "sip:101@127.0.0.1:5071"
    assert str(uac.next_hop) == "sip:p1.example.com;lr"


def test_bye_and_ack_are_built_from_the_dialog() -> None:
    uac, _ = _pair()
    ack = uac.create_ack(via_host="127.0.0.1", via_port=5071)
    assert ack.cseq.seq == 7 and ack.cseq.method == "ACK"
    assert ack.top_via.branch and ack.top_via.branch.startswith("z9hG4bK")
    bye = uac.create_request("BYE", via_host="127.0.0.1", via_port=5071)
    assert bye.cseq.seq == 8 and bye.method == "BYE"
    assert str(bye.uri) == "sip:102@10.0.0.2:5072;transport=UDP"
    assert bye.headers.values("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert bye.from_.tag == "alice-tag" and bye.to.tag == "bob-tag"
    reinvite = uac.create_request(
        "INVITE", via_host="127.0.0.1", body=b"v=0\r\n", content_type="application/sdp"
    )
    assert (
        reinvite.cseq.seq == 9
        and reinvite.contacts
        and reinvite.content_type == ("application/sdp")
    )
    assert uac.create_ack(via_host="h").cseq.seq == 9
    refer = uac.create_request("REFER", via_host="h", extra=[("Refer-To", "<sip:103@h>")])
    assert refer.headers.get("Refer-To") == "<sip:103@h>" and refer.cseq.seq == 10
    parse(bytes(refer))  # what we build parses


def test_uas_side_requests_and_cseq_order() -> None:
    uac, uas = _pair()
    notify = uas.create_request("NOTIFY", via_host="10.0.0.2")
    assert notify.cseq.seq == 1 and str(notify.uri) == "sip:101@127.0.0.1:5071"
    assert notify.headers.values("Route")[0] == "<sip:p2.example.com;lr>"
    assert uac.receive_request(parse(bytes(notify))) is None
    assert uac.receive_request(parse(bytes(notify))) == 500  # not higher than the last one
    bye = uac.create_request("BYE", via_host="127.0.0.1")
    assert uas.receive_request(parse(bytes(bye))) is None
    assert uas.state is DialogState.TERMINATED


def test_target_refresh_by_reinvite() -> None:
    uac, uas = _pair()
    reinvite = uac.create_request("INVITE", via_host="h")
    reinvite.headers.set("Contact", "<sip:101@192.0.2.50:5071>")
    uas.receive_request(parse(bytes(reinvite)))
    assert str(uas.remote_target) == "sip:101@192.0.2.50:5071"


def test_strict_route_puts_the_first_route_in_the_request_uri() -> None:
    uac, _ = _pair()
    uac.route_set = [
        NameAddr(parse_sip_uri("sip:strict.example.com")),
        NameAddr(parse_sip_uri("sip:p2.example.com;lr")),
    ]
    bye = uac.create_request("BYE", via_host="h")
    assert isinstance(bye.uri, SipUri) and bye.uri.host == "strict.example.com"
    assert bye.headers.values("Route") == [
        "<sip:p2.example.com;lr>",
        "<sip:102@10.0.0.2:5072;transport=UDP>",
    ]


def test_early_dialog_from_180_is_confirmed_by_200() -> None:
    invite = parse(bytes(make_request("INVITE")))
    ringing = make_response(invite, 180, to_tag="t1")
    early = Dialog.from_uac(invite, parse(bytes(ringing)))
    assert early.state is DialogState.EARLY and str(early.remote_target) == str(invite.uri)
    ok = make_response(invite, 200, to_tag="t1")
    ok.headers.add("Contact", "<sip:102@10.0.0.9>")
    early.update_from_response(invite, parse(bytes(ok)))
    assert early.state is DialogState.CONFIRMED and str(early.remote_target) == "sip:102@10.0.0.9"
    with pytest.raises(DialogError):
        Dialog.from_uac(invite, make_response(invite, 100))
