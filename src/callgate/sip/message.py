"""SIP requests and responses (RFC 3261 §7) with typed accessors over their headers.

:class:`Request` and :class:`Response` are plain mutable data: a start line, a
:class:`~callgate.sip.headers.Headers` container and a body of bytes. The accessors
(``vias``, ``from_``, ``to``, ``cseq``, ``contacts``…) parse on demand and raise
:class:`~callgate.sip.headers.HeaderError` when a header is missing or malformed;
:func:`callgate.sip.parser.parse` has already checked the mandatory ones, so for a parsed message
they do not fail. ``bytes(message)`` serializes with a Content-Length that matches the body.
"""

from __future__ import annotations

from callgate.sip.headers import (
    AuthHeader,
    CSeq,
    HeaderError,
    Headers,
    NameAddr,
    Via,
    parse_name_addrs,
)
from callgate.sip.uri import Uri

MAGIC_COOKIE = "z9hG4bK"
SIP_VERSION = "SIP/2.0"

REASONS: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
}


class _Message:
    """What requests and responses share: headers, body, typed accessors, serialization."""

    def __init__(self, headers: Headers | None = None, body: bytes = b"") -> None:
        self.headers = headers if headers is not None else Headers()
        self.body = body

    def _one(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise HeaderError(f"missing {name}")
        return value

    @property
    def vias(self) -> list[Via]:
        return [Via.parse(v) for v in self.headers.values("Via")]

    @property
    def top_via(self) -> Via:
        values = self.headers.values("Via")
        if not values:
            raise HeaderError("missing Via")
        return Via.parse(values[0])

    @property
    def from_(self) -> NameAddr:
        return NameAddr.parse(self._one("From"))

    @property
    def to(self) -> NameAddr:
        return NameAddr.parse(self._one("To"))

    @property
    def call_id(self) -> str:
        return self._one("Call-ID").strip()

    @property
    def cseq(self) -> CSeq:
        return CSeq.parse(self._one("CSeq"))

    @property
    def contacts(self) -> list[NameAddr]:
        return parse_name_addrs(self.headers.values("Contact"))

    @property
    def record_routes(self) -> list[NameAddr]:
        return parse_name_addrs(self.headers.values("Record-Route"))

    @property
    def routes(self) -> list[NameAddr]:
        return parse_name_addrs(self.headers.values("Route"))

    @property
    def max_forwards(self) -> int | None:
        value = self.headers.get("Max-Forwards")
        if value is None:
            return None
        value = value.strip()
        if not value.isdigit() or int(value) > 255:
            raise HeaderError("bad Max-Forwards")
        return int(value)

    @property
    def expires(self) -> int | None:
        """The Expires header as delta-seconds; ``None`` when absent or not a valid number."""
        value = self.headers.get("Expires")
        if value is None or not value.strip().isdigit() or int(value) > 2**32 - 1:
            return None
        return int(value)

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("Content-Type")
        return value.split(";")[0].strip().lower() if value else None

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        if value is None:
            return None
        value = value.strip()
        if not value.isdigit():
            raise HeaderError("bad Content-Length")
        return int(value)

    def auth_headers(self, name: str) -> list[AuthHeader]:
        """Every WWW-Authenticate, Proxy-Authenticate, Authorization… value, parsed."""
        return [AuthHeader.parse(v) for v in self.headers.get_all(name)]

    def _header_bytes(self) -> list[str]:
        lines = []
        has_length = False
        for name, value in self.headers:
            if name == "Content-Length":
                if has_length:
                    continue
                has_length = True
                value = str(len(self.body))
            lines.append(f"{name}: {value}\r\n")
        if not has_length:
            lines.append(f"Content-Length: {len(self.body)}\r\n")
        return lines

    def _serialize(self, start_line: str) -> bytes:
        head = start_line + "\r\n" + "".join(self._header_bytes()) + "\r\n"
        return head.encode("utf-8", "surrogateescape") + self.body

    @property
    def transaction_method(self) -> str:
        """The method this message belongs to (CSeq method for responses)."""
        return self.cseq.method


class Request(_Message):
    """A request: method, Request-URI, headers, body."""

    def __init__(
        self, method: str, uri: Uri, headers: Headers | None = None, body: bytes = b""
    ) -> None:
        super().__init__(headers, body)
        self.method = method
        self.uri = uri

    @property
    def branch(self) -> str | None:
        return self.top_via.branch

    def __bytes__(self) -> bytes:
        return self._serialize(f"{self.method} {self.uri} {SIP_VERSION}")

    def copy(self) -> Request:
        return Request(self.method, self.uri, self.headers.copy(), self.body)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"


class Response(_Message):
    """A response: status code, reason phrase, headers, body."""

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: Headers | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(headers, body)
        self.status = status
        self.reason = reason if reason is not None else REASONS.get(status, "")

    @property
    def provisional(self) -> bool:
        return 100 <= self.status < 200

    @property
    def success(self) -> bool:
        return 200 <= self.status < 300

    @property
    def final(self) -> bool:
        return self.status >= 200

    def __bytes__(self) -> bytes:
        return self._serialize(f"{SIP_VERSION} {self.status} {self.reason}")

    def copy(self) -> Response:
        return Response(self.status, self.reason, self.headers.copy(), self.body)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


Message = Request | Response
