"""Building REGISTER requests and answering challenges the way a phone does, for pbx tests."""

from __future__ import annotations

import secrets

from callgate.sip.digest import Ha1Pair, answer_challenge, ha1
from callgate.sip.headers import AuthHeader
from callgate.sip.message import Request, Response
from callgate.sip.parser import parse

REALM = "callgate"
USER = "00012*101"
PASSWORD = "s3cret-pass"
PAIR = Ha1Pair(ha1("MD5", USER, REALM, PASSWORD), ha1("SHA-256", USER, REALM, PASSWORD))


def register(
    *,
    user: str = USER,
    port: int = 5071,
    call_id: str = "reg-1",
    cseq: int = 1,
    expires: int | None = 300,
    contact: str | None = None,
    authorization: str | None = None,
    transport: str = "UDP",
) -> Request:
    contact = contact if contact is not None else f"<sip:{user}@127.0.0.1:{port}>"
    lines = [
        "REGISTER sip:127.0.0.1 SIP/2.0",
        f"Via: SIP/2.0/{transport} 127.0.0.1:{port};branch=z9hG4bK{secrets.token_hex(6)};rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@127.0.0.1>;tag=ft{call_id}",
        f"To: <sip:{user}@127.0.0.1>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
    ]
    if contact:
        lines.append(f"Contact: {contact}")
    if expires is not None:
        lines.append(f"Expires: {expires}")
    if authorization is not None:
        lines.append(f"Authorization: {authorization}")
    message = parse(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(message, Request)
    return message


def answer(
    challenge: Response,
    *,
    algorithm: str = "SHA-256",
    user: str = USER,
    password: str = PASSWORD,
    nc: int = 1,
) -> str:
    """The Authorization value answering the ``algorithm`` challenge of a 401."""
    for value in challenge.headers.get_all("WWW-Authenticate"):
        header = AuthHeader.parse(value)
        if header.get("algorithm") == algorithm:
            return answer_challenge(
                header,
                method="REGISTER",
                uri="sip:127.0.0.1",
                username=user,
                password=password,
                cnonce=secrets.token_hex(8),
                nc=nc,
            )
    raise AssertionError(f"no {algorithm} challenge in {challenge.headers!r}")
