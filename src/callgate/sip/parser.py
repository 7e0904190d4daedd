"""Bytes ⇄ messages: datagram parser, TCP stream framer, serializer and response helpers.

``parse(datagram)`` returns a :class:`~callgate.sip.message.Request` or
:class:`~callgate.sip.message.Response`, or raises :class:`ParseError`. A transport turns a
``ParseError`` into a ``400 Bad Request`` (``505`` for another SIP version) when
:func:`can_respond` says a response can be built — it is a request that has Via, From, To, Call-ID
and CSeq lines — and silently drops it otherwise (responses are never answered). See RFC 4475 for
the cases; ``docs/sip.md`` lists how each torture message is treated.

Framing differs per transport (RFC 3261 §18.3): on UDP a missing Content-Length means "the rest of
the datagram" and octets past Content-Length are discarded; on TCP :class:`StreamFramer` requires
Content-Length and bounds header and body sizes. Serialization is ``bytes(message)``.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from callgate.sip.headers import (
    KNOWN_NAMES,
    CSeq,
    HeaderError,
    Headers,
    NameAddr,
    Via,
    is_token,
    split_top_level,
)
from callgate.sip.message import SIP_VERSION, Request, Response
from callgate.sip.uri import SipUri, UriError, parse_uri

Message = Request | Response

MAX_DATAGRAM = 65535
_VERSION_RE = re.compile(r"SIP/(\d+)\.(\d+)", re.I)
_REQUIRED = ("Via", "From", "To", "Call-ID", "CSeq")


@dataclass(eq=False)
class ParseError(Exception):
    """A message that cannot be accepted.

    ``status`` is the response code a server should answer with (400, or 505 for another SIP
    version); ``headers``/``is_request``/``method`` are whatever could be read, so that
    :func:`error_response` can build that response. ``fatal`` marks a stream framing error after
    which the connection must be closed.
    """

    reason: str
    status: int = 400
    headers: Headers | None = None
    is_request: bool = False
    method: str | None = None
    fatal: bool = False

    def __str__(self) -> str:
        return self.reason


def _decode(data: bytes) -> str:
    # surrogateescape keeps any octet (UTF-8 or not) so a message re-serializes byte for byte
    return data.decode("utf-8", "surrogateescape")


def _parse_head(head: bytes) -> tuple[Request | Response, Headers]:
    """Parse the start line and header lines (unfolding them); the body is not looked at."""
    # one decode for the whole head: CR and LF are ASCII, so lines decode as they would alone
    lines = _decode(head).split("\n")
    last = len(lines) - 1
    start = lines[0][:-1] if last > 0 and lines[0].endswith("\r") else lines[0]
    names: list[str] = []
    values: list[str] = []
    folded: dict[int, list[str]] = {}
    for index in range(1, last + 1):
        line = lines[index]
        if index < last and line.endswith("\r"):
            line = line[:-1]  # the CR of a CRLF (a lone CR elsewhere stays, as before)
        if line[:1] in (" ", "\t"):
            if not names:
                raise ParseError("folded line before any header")
            at = len(values) - 1
            folded.setdefault(at, [values[at]]).append(line.strip(" \t"))
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or (name not in KNOWN_NAMES and not is_token(name)):
            raise ParseError(f"malformed header line {line[:40]!r}")
        names.append(name)
        values.append(value.strip(" \t"))
    for at, parts in folded.items():
        values[at] = " ".join(p for p in parts if p)
    try:
        headers = Headers.from_lines(names, values)
    except HeaderError as exc:
        raise ParseError(str(exc)) from exc
    message = _parse_start_line(start, headers)
    return message, headers


def _check_version(version: str, headers: Headers, is_request: bool, method: str | None) -> None:
    m = _VERSION_RE.fullmatch(version)
    if m is None:
        raise ParseError("bad SIP version", 400, headers, is_request, method)
    if (int(m.group(1)), int(m.group(2))) != (2, 0):
        raise ParseError(f"unsupported version {version}", 505, headers, is_request, method)


def _parse_start_line(line: str, headers: Headers) -> Request | Response:
    if line.upper().startswith("SIP/"):
        version, _, rest = line.partition(" ")
        _check_version(version, headers, False, None)
        code, _, reason = rest.partition(" ")
        if len(code) != 3 or not code.isdigit() or not 100 <= int(code) <= 699:
            raise ParseError("bad status code", headers=headers)
        return Response(int(code), reason, headers)
    parts = line.split(" ")
    if len(parts) != 3 or not all(parts):
        # RFC 4475 lwsstart/trws/lwsruri: extra SP is acceptable to reject; we do
        raise ParseError(
            "malformed request line",
            headers=headers,
            is_request=True,
            method=parts[0] if parts and is_token(parts[0]) else None,
        )
    method, uri_text, version = parts
    if not is_token(method):
        raise ParseError("bad method", headers=headers, is_request=True)
    _check_version(version, headers, True, method)
    try:
        uri = parse_uri(uri_text)
    except UriError as exc:
        raise ParseError(
            f"bad Request-URI: {exc}", headers=headers, is_request=True, method=method
        ) from exc
    if isinstance(uri, SipUri) and uri.headers:
        # RFC 4475 escruri: headers are not allowed in a Request-URI
        raise ParseError("headers in Request-URI", headers=headers, is_request=True, method=method)
    return Request(method, uri, headers)


def _validate(message: Request | Response) -> None:
    """Check the mandatory headers and the ones whose syntax the stack relies on."""
    headers = message.headers
    for name in _REQUIRED:
        count = headers.count(name)
        if count == 0:
            raise HeaderError(f"missing {name}")
        if count > 1 and name != "Via":
            raise HeaderError(f"more than one {name}")
    for value in headers.values("Via"):
        Via.check(value)
    NameAddr.check(headers.get("From") or "")
    NameAddr.check(headers.get("To") or "")
    cseq = CSeq.parse(headers.get("CSeq") or "")
    if not (headers.get("Call-ID") or "").strip():
        raise HeaderError("empty Call-ID")
    if isinstance(message, Request) and cseq.method != message.method:
        raise HeaderError("CSeq method does not match the request method")
    for name in ("Contact", "Route", "Record-Route"):
        for value in headers.values(name):
            NameAddr.check(value)
    message.max_forwards  # noqa: B018
    lengths = {v.strip() for v in headers.get_all("Content-Length")}
    if len(lengths) > 1:
        raise HeaderError("conflicting Content-Length values")


def _content_length(headers: Headers, is_request: bool, method: str | None) -> int | None:
    values = {v.strip() for v in headers.get_all("Content-Length")}
    if not values:
        return None
    if len(values) > 1:
        raise ParseError(
            "conflicting Content-Length values",
            headers=headers,
            is_request=is_request,
            method=method,
        )
    value = values.pop()
    if not value.isdigit() or len(value) > 10:
        raise ParseError(
            "bad Content-Length", headers=headers, is_request=is_request, method=method
        )
    return int(value)


def _finish(message: Request | Response, headers: Headers) -> Request | Response:
    try:
        _validate(message)
    except (HeaderError, UriError) as exc:
        is_request = isinstance(message, Request)
        method = message.method if isinstance(message, Request) else None
        raise ParseError(str(exc), 400, headers, is_request, method) from exc
    return message


def _split_head(data: bytes) -> tuple[bytes, bytes] | None:
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        return data[:end], data[end + 4 :]
    end = data.find(b"\n\n")
    if end >= 0:
        return data[:end], data[end + 2 :]
    return None


def parse(data: bytes, *, max_size: int = MAX_DATAGRAM) -> Request | Response:
    """Parse one datagram (UDP framing). Raises :class:`ParseError` and nothing else."""
    if len(data) > max_size:
        raise ParseError("datagram too large")
    data = data.lstrip(b"\r\n")
    if not data:
        raise ParseError("empty datagram (keep-alive)")
    parts = _split_head(data)
    if parts is None:
        raise ParseError("no end of header section")
    head, rest = parts
    message, headers = _parse_head(head)
    is_request = isinstance(message, Request)
    method = message.method if isinstance(message, Request) else None
    length = _content_length(headers, is_request, method)
    if length is None:
        message.body = rest
    elif length > len(rest):
        raise ParseError(
            "Content-Length larger than the datagram",
            headers=headers,
            is_request=is_request,
            method=method,
        )
    else:
        message.body = rest[:length]  # RFC 4475 dblreq: octets past the body are discarded
    return _finish(message, headers)


class StreamFramer:
    """Splits a TCP byte stream into messages (RFC 3261 §18.3: Content-Length is mandatory).

    ``feed`` returns the complete messages found so far; a message that framed correctly but is
    invalid comes back as a :class:`ParseError` in the list (answer it, keep the connection). A
    framing error (no or bad Content-Length, header section or body over the limits) is raised with
    ``fatal=True``: the stream cannot be resynchronised and the connection must be closed.
    ``pings`` counts RFC 5626 double-CRLF keep-alives, which the transport answers with one CRLF.
    """

    def __init__(
        self, *, max_header_bytes: int = 16 * 1024, max_body_bytes: int = 1024 * 1024
    ) -> None:
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self.pings = 0
        self._buffer = bytearray()
        self._broken: ParseError | None = None

    def feed(self, data: bytes) -> list[Request | Response | ParseError]:
        if self._broken is not None:
            raise self._broken
        self._buffer += data
        out: list[Request | Response | ParseError] = []
        try:
            while self._next(out):
                pass
        except ParseError as exc:
            exc.fatal = True
            self._broken = exc
            self._buffer.clear()
            raise
        return out

    def _next(self, out: list[Request | Response | ParseError]) -> bool:
        buf = self._buffer
        while buf[:2] == b"\r\n":
            if buf[:4] == b"\r\n\r\n":
                self.pings += 1
                del buf[:4]
            elif len(buf) >= 4 or bytes(buf[2:3]) not in (b"", b"\r"):
                del buf[:2]
            else:
                return False  # maybe the start of a double-CRLF ping
        end = buf.find(b"\r\n\r\n", 0, self.max_header_bytes + 4)
        if end < 0:
            if len(buf) > self.max_header_bytes:
                raise ParseError("header section too large")
            return False
        message, headers = _parse_head(bytes(buf[:end]))
        is_request = isinstance(message, Request)
        method = message.method if isinstance(message, Request) else None
        length = _content_length(headers, is_request, method)
        if length is None:
            raise ParseError(
                "Content-Length is required on a stream",
                headers=headers,
                is_request=is_request,
                method=method,
            )
        if length > self.max_body_bytes:
            raise ParseError("body too large", 513, headers, is_request, method)
        total = end + 4 + length
        if len(buf) < total:
            return False
        message.body = bytes(buf[end + 4 : total])
        del buf[:total]
        try:
            out.append(_finish(message, headers))
        except ParseError as exc:
            out.append(exc)
        return True


# --------------------------------------------------------------------------- responses


def can_respond(error: ParseError) -> bool:
    """True when ``error`` came from a request carrying what a response must copy."""
    if not error.is_request or error.headers is None or error.method == "ACK":
        return False  # an ACK is never answered (RFC 3261 §17.2.1)
    return all(error.headers.get(name) for name in _REQUIRED)


def new_tag() -> str:
    return secrets.token_hex(6)


def _copy_common(source: Headers, target: Headers, status: int, to_tag: str | None) -> None:
    for value in source.get_all("Via"):
        target.add("Via", value)
    target.add("From", source.get("From") or "")
    to_value = source.get("To") or ""
    if status > 100:
        try:
            to = NameAddr.parse(to_value)
            if to.tag is None:
                to_value = str(to.with_tag(to_tag or new_tag()))
        except (HeaderError, UriError):
            pass  # an unparseable To in a 400 is copied as it came
    target.add("To", to_value)
    target.add("Call-ID", source.get("Call-ID") or "")
    target.add("CSeq", source.get("CSeq") or "")


def error_response(error: ParseError) -> Response:
    """The ``400``/``505`` answering a request that failed to parse (check :func:`can_respond`)."""
    if error.headers is None:
        raise ValueError("no headers to answer")
    response = Response(error.status)
    _copy_common(error.headers, response.headers, error.status, None)
    reason = "".join(c for c in error.reason if c.isprintable() and c != '"')[:100]
    response.headers.add("Warning", f'399 callgate "{reason}"')
    return response


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    body: bytes = b"",
    content_type: str | None = None,
) -> Response:
    """A response copying Via, From, To, Call-ID and CSeq (RFC 3261 §8.2.6).

    A To tag is added when the request had none (except for 100 Trying): pass ``to_tag`` to use
    the dialog's local tag, otherwise a random one is made. Record-Route is copied into 1xx/2xx
    responses so a dialog can form through proxies (§12.1.1).
    """
    response = Response(status, reason, body=body)
    _copy_common(request.headers, response.headers, status, to_tag)
    if 100 < status < 300:
        for value in request.headers.get_all("Record-Route"):
            response.headers.add("Record-Route", value)
    if content_type is not None:
        response.headers.add("Content-Type", content_type)
    return response


def split_list(value: str) -> list[str]:
    """Split a comma-separated header value outside quotes and angle brackets."""
    return [part.strip() for part in split_top_level(value, ",") if part.strip()]


__all__ = [
    "SIP_VERSION",
    "Message",
    "ParseError",
    "StreamFramer",
    "can_respond",
    "error_response",
    "make_response",
    "new_tag",
    "parse",
]
