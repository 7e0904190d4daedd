"""SIP header fields: the multi-header container and typed values (RFC 3261 §7.3, §20, §25).

:class:`Headers` keeps every header line in arrival order, looks names up case-insensitively and
expands compact forms (``v`` → ``Via``, ``i`` → ``Call-ID``…) when a header is added, so the rest of
the stack only ever sees long names. Values are stored unfolded (a fold is equivalent to one SP).

Typed values — :class:`Via`, :class:`NameAddr` (From, To, Contact, Route, Record-Route),
:class:`CSeq` and :class:`AuthHeader` (WWW-/Proxy-Authenticate, Authorization) — parse from and
serialize to the header text. Parameter names are case-insensitive
(:class:`~callgate.sip.uri.Params`) and values keep their spelling. Parsers raise
:class:`HeaderError`; the message parser turns it into a
``400 Bad Request``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from callgate.sip.uri import AbsoluteUri, Params, SipUri, Uri, UriError, parse_uri

_T = TypeVar("_T")


class HeaderError(ValueError):
    """A header value that does not follow its grammar."""


COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}
_KNOWN = [
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Error-Info",
    "Expires",
    "From",
    "In-Reply-To",
    "Max-Forwards",
    "Min-Expires",
    "MIME-Version",
    "Organization",
    "Priority",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "Record-Route",
    "Reply-To",
    "Require",
    "Retry-After",
    "Route",
    "Server",
    "Subject",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
    "Event",
    "Refer-To",
    "Referred-By",
    "Allow-Events",
    "Session-Expires",
    "Min-SE",
    "RSeq",
    "RAck",
    "Path",
    "Service-Route",
    "Subscription-State",
    "P-Asserted-Identity",
    "Replaces",
    *COMPACT_FORMS.values(),
]
_CANONICAL: dict[str, str] = {name.lower(): name for name in _KNOWN}
# Headers whose values are comma-separated lists (RFC 3261 §7.3.1): several values may share one
# line. Authentication headers are not lists (their params are comma-separated); Date has a comma.
LIST_HEADERS = frozenset(
    name.lower()
    for name in (
        "Via",
        "Contact",
        "Route",
        "Record-Route",
        "Allow",
        "Supported",
        "Require",
        "Proxy-Require",
        "Unsupported",
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Content-Encoding",
        "Content-Language",
        "Alert-Info",
        "Call-Info",
        "Error-Info",
        "In-Reply-To",
        "Warning",
        "Allow-Events",
        "Path",
        "Service-Route",
        "P-Asserted-Identity",
    )
)
TOKEN_CHARS = r"A-Za-z0-9\-.!%*_+`'~"  # noqa: S105 - not a password
_TOKEN_RE = re.compile(rf"[{TOKEN_CHARS}]+")
_LWS = " \t"


# Any spelling seen so far (exact, then lower-cased) → the canonical name; compact forms included.
_LOOKUP: dict[str, str] = {**_CANONICAL, **COMPACT_FORMS, **{name: name for name in _KNOWN}}
_LOOKUP.update({key.upper(): value for key, value in COMPACT_FORMS.items()})
_KEY_OF: dict[str, str] = {name: name.lower() for name in _LOOKUP.values()}


def canonical_name(name: str) -> str:
    """The long, conventionally spelled name of a header (compact forms expanded)."""
    found = _LOOKUP.get(name)
    if found is not None:
        return found
    return _LOOKUP.get(name.lower(), name)


def _key(name: str) -> str:
    """The lower-cased canonical name: what :class:`Headers` compares."""
    found = _LOOKUP.get(name)
    if found is not None:
        return _KEY_OF[found]
    return canonical_name(name).lower()


def is_token(text: str) -> bool:
    return bool(_TOKEN_RE.fullmatch(text))


# Header names every peer sends (all tokens): the parser need not match them against the grammar.
KNOWN_NAMES = frozenset(name for name in _LOOKUP if is_token(name))


class Headers:
    """Ordered, case-insensitive, multi-valued header fields.

    ``get_all(name)`` returns the raw value of each header line; ``values(name)`` also splits
    comma-separated list headers (``Via: a, b`` gives two values).
    """

    # ``_keys[i]`` is the lower-cased name of ``_items[i]``: look-ups compare it without lowering
    __slots__ = ("_items", "_keys")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = []
        self._keys: list[str] = []
        for name, value in items:
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        """Append a header line (after any lines of the same name)."""
        if "\r" in value or "\n" in value:
            raise HeaderError("header values cannot contain CR or LF")
        canonical = canonical_name(name)
        self._items.append((canonical, value))
        self._keys.append(canonical.lower())

    def add_first(self, name: str, value: str) -> None:
        """Insert a header line before all others of its name (a new top Via, a Route)."""
        canonical = canonical_name(name)
        lowered = canonical.lower()
        try:
            i = self._keys.index(lowered)
        except ValueError:
            i = len(self._keys)
        self._items.insert(i, (canonical, value))
        self._keys.insert(i, lowered)

    def set(self, name: str, value: str) -> None:
        """Replace every line of ``name`` with one line, kept at the first line's position."""
        canonical = canonical_name(name)
        lowered = canonical.lower()
        keys = self._keys
        try:
            i = keys.index(lowered)
        except ValueError:
            self._items.append((canonical, value))
            keys.append(lowered)
            return
        items = self._items
        items[i] = (canonical, value)
        keep = [j for j in range(len(keys)) if j <= i or keys[j] != lowered]
        self._items = [items[j] for j in keep]
        self._keys = [keys[j] for j in keep]

    def remove(self, name: str) -> None:
        lowered = _key(name)
        keep = [j for j, key in enumerate(self._keys) if key != lowered]
        self._items = [self._items[j] for j in keep]
        self._keys = [self._keys[j] for j in keep]

    def get(self, name: str) -> str | None:
        try:
            return self._items[self._keys.index(_key(name))][1]
        except ValueError:
            return None

    def get_all(self, name: str) -> list[str]:
        lowered = _key(name)
        keys = self._keys
        try:
            first = keys.index(lowered)
        except ValueError:
            return []
        if keys.count(lowered) == 1:  # the usual case: one line, found without a Python loop
            return [self._items[first][1]]
        return [item[1] for key, item in zip(keys, self._items, strict=True) if key == lowered]

    @classmethod
    def from_lines(cls, names: list[str], values: list[str]) -> Headers:
        """Headers from parallel lists of names and values, as :meth:`add` would build them."""
        headers = cls.__new__(cls)
        items: list[tuple[str, str]] = []
        keys: list[str] = []
        for name, value in zip(names, values, strict=True):
            if "\r" in value or "\n" in value:
                raise HeaderError("header values cannot contain CR or LF")
            canonical = _LOOKUP.get(name)
            if canonical is None:
                canonical = _LOOKUP.get(name.lower(), name)
            items.append((canonical, value))
            keys.append(_KEY_OF.get(canonical) or canonical.lower())
        headers._items = items
        headers._keys = keys
        return headers

    def count(self, name: str) -> int:
        """How many lines of ``name`` there are."""
        return self._keys.count(_key(name))

    def values(self, name: str) -> list[str]:
        """Every value of ``name``, list headers split on top-level commas."""
        raw = self.get_all(name)
        if _key(name) not in LIST_HEADERS:
            return raw
        out: list[str] = []
        for line in raw:
            if "," not in line and '"' not in line:
                out.append(line.strip())
            else:
                out.extend(part.strip() for part in split_top_level(line, ","))
        return out

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def copy(self) -> Headers:
        clone = Headers.__new__(Headers)
        clone._items = list(self._items)
        clone._keys = list(self._keys)
        return clone

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._keys == other._keys and [v for _, v in self._items] == [
            v for _, v in other._items
        ]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


def split_top_level(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quoted strings and ``<…>``; raises on an unterminated quote."""
    if '"' not in text and "<" not in text:
        return text.split(sep)  # nothing quoted or bracketed: every separator splits
    parts: list[str] = []
    start = 0
    i = 0
    in_quote = False
    in_angle = False
    n = len(text)
    while i < n:
        c = text[i]
        if in_quote:
            if c == "\\":
                i += 1
            elif c == '"':
                in_quote = False
        elif c == '"':
            in_quote = True
        elif c == "<":
            in_angle = True
        elif c == ">":
            in_angle = False
        elif c == sep and not in_angle:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if in_quote:
        raise HeaderError("unterminated quoted string")
    parts.append(text[start:])
    return parts


def unquote(text: str) -> str:
    """The content of a quoted-string (``"a\\"b"`` → ``a"b``); tokens are returned as they are."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1], flags=re.S)
    return text


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check_value(value: str) -> None:
    if value.startswith('"'):
        if len(value) < 2 or not value.endswith('"'):
            raise HeaderError("unterminated quoted parameter value")
    elif not re.fullmatch(rf"[{TOKEN_CHARS}:\[\]]+", value):
        raise HeaderError(f"bad parameter value {value!r}")


def parse_header_params(text: str) -> Params:
    """Parse ``;name[=value]…`` allowing LWS around ``;`` and ``=`` (RFC 3261 SEMI, EQUAL)."""
    params = Params()
    text = text.strip(_LWS)
    if not text:
        return params
    if not text.startswith(";"):
        raise HeaderError(f"expected ';' in {text!r}")
    for part in split_top_level(text[1:], ";"):
        name, eq, value = part.partition("=")
        name, value = name.strip(_LWS), value.strip(_LWS)
        if not is_token(name):
            raise HeaderError(f"bad parameter name {name!r}")
        if eq:
            _check_value(value)
        params[name] = value if eq else None
    return params


# --------------------------------------------------------------------------- parse caches

# The same From, To, Via and Contact texts come back in every message of a transaction and a
# dialog: parsed values are kept by their text and handed out as copies (callers may change them).
# Bounded: texts up to _CACHED_TEXT characters, emptied when _CACHE_SIZE entries are reached.
_CACHE_SIZE = 512
_CACHED_TEXT = 512


def _remember(cache: dict[str, _T], text: str, value: _T) -> None:
    if len(text) <= _CACHED_TEXT:
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        cache[text] = value


# --------------------------------------------------------------------------- Via

_VIA_RE = re.compile(
    rf"([{TOKEN_CHARS}]+)[ \t]*/[ \t]*([{TOKEN_CHARS}]+)[ \t]*/[ \t]*([{TOKEN_CHARS}]+)[ \t]+(.+)",
    re.S,
)
_SENT_BY_RE = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)(?:[ \t]*:[ \t]*(\d{1,5}))?")


@dataclass(eq=False)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=…;received=…;rport``."""

    transport: str
    host: str
    port: int | None = None
    params: Params = field(default_factory=Params)
    protocol: str = "SIP/2.0"

    @classmethod
    def parse(cls, text: str) -> Via:
        cached = _VIAS.get(text)
        if cached is not None and cls is Via:
            return cached.copy()
        via = cls._parse(text)
        if cls is Via:
            _remember(_VIAS, text, via.copy())
        return via

    @classmethod
    def check(cls, text: str) -> None:
        """Raise :class:`HeaderError` unless ``text`` parses (no copy when it parsed before)."""
        if text not in _VIAS:
            _remember(_VIAS, text, Via._parse(text))  # nobody else holds it: no copy

    @classmethod
    def _parse(cls, text: str) -> Via:
        m = _VIA_RE.fullmatch(text.strip(_LWS))
        if m is None:
            raise HeaderError(f"bad Via {text!r}")
        name, version, transport, rest = m.groups()
        parts = split_top_level(rest, ";")
        sent = _SENT_BY_RE.fullmatch(parts[0].strip(_LWS))
        if sent is None:
            raise HeaderError(f"bad Via sent-by {parts[0]!r}")
        port = int(sent.group(2)) if sent.group(2) else None
        if port is not None and port > 65535:
            raise HeaderError("Via port out of range")
        params = parse_header_params(rest[len(parts[0]) :])
        return cls(transport.upper(), sent.group(1), port, params, f"{name}/{version}")

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The rport value a server filled in; ``None`` when absent or only requested."""
        value = self.params.get("rport")
        return int(value) if value and value.isdigit() else None

    @property
    def wants_rport(self) -> bool:
        return "rport" in self.params

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return (self.host.lower(), self.port)

    def copy(self) -> Via:
        return Via(self.transport, self.host, self.port, self.params.copy(), self.protocol)

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.protocol}/{self.transport} {self.host}{port}{self.params.serialize()}"

    def __repr__(self) -> str:
        return f"Via({str(self)!r})"


_VIAS: dict[str, Via] = {}


# --------------------------------------------------------------------------- name-addr

_QUOTED_RE = re.compile(r'"((?:[^"\\]|\\.)*)"', re.S)


@dataclass(eq=False)
class NameAddr:
    """A name-addr or addr-spec with header parameters (From, To, Contact, Route, Record-Route).

    ``wildcard`` is the Contact ``*`` of a REGISTER that removes every binding.
    """

    uri: Uri
    display_name: str | None = None
    params: Params = field(default_factory=Params)
    wildcard: bool = False

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        cached = _NAME_ADDRS.get(text)
        if cached is not None and cls is NameAddr:
            return cached.copy()
        addr = cls._parse(text)
        if cls is NameAddr and isinstance(addr.uri, SipUri):
            _remember(_NAME_ADDRS, text, addr.copy())
        return addr

    @classmethod
    def check(cls, text: str) -> None:
        """Raise :class:`HeaderError` unless ``text`` parses (no copy when it parsed before)."""
        if text not in _NAME_ADDRS:
            addr = NameAddr._parse(text)  # nobody else holds it: cached without a copy
            if isinstance(addr.uri, SipUri):
                _remember(_NAME_ADDRS, text, addr)

    @classmethod
    def _parse(cls, text: str) -> NameAddr:
        text = text.strip(_LWS)
        if text == "*":
            return cls(AbsoluteUri("*", ""), None, Params(), wildcard=True)
        display: str | None = None
        if text.startswith('"'):
            m = _QUOTED_RE.match(text)
            if m is None:
                raise HeaderError("unterminated display name")
            display = unquote(m.group(0))
            rest = text[m.end() :].lstrip(_LWS)
            if not rest.startswith("<"):
                raise HeaderError("quoted display name without <URI>")
        else:
            lt = text.find("<")
            semi = text.find(";")
            if lt >= 0 and (semi < 0 or lt < semi):
                name = text[:lt].strip(_LWS)
                if name:
                    if not all(is_token(word) for word in name.split()):
                        raise HeaderError(
                            f"unquoted display name with non-token characters {name!r}"
                        )
                    display = " ".join(name.split())
                rest = text[lt:]
            else:
                # addr-spec form: parameters after the URI belong to the header (RFC 3261 §20.10)
                uri_text, _, param_text = text.partition(";")
                if "?" in uri_text or "," in uri_text:
                    raise HeaderError("a URI with headers or commas needs <…>")
                return cls(
                    _uri(uri_text.strip(_LWS)),
                    None,
                    parse_header_params(";" + param_text if _ else ""),
                )
        gt = rest.find(">")
        if gt < 0:
            raise HeaderError("missing '>'")
        uri = _uri(rest[1:gt])
        return cls(uri, display, parse_header_params(rest[gt + 1 :]))

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @property
    def expires(self) -> int | None:
        """The Contact ``expires`` parameter; ``None`` when absent or not a valid delta-seconds."""
        value = self.params.get("expires")
        if value is None or not value.isdigit() or int(value) > 2**32 - 1:
            return None
        return int(value)

    @property
    def sip_uri(self) -> SipUri:
        if not isinstance(self.uri, SipUri):
            raise HeaderError(f"not a SIP URI: {self.uri}")
        return self.uri

    def with_tag(self, tag: str) -> NameAddr:
        params = self.params.copy()
        params["tag"] = tag
        return NameAddr(self.uri, self.display_name, params, self.wildcard)

    def copy(self) -> NameAddr:
        uri = self.uri.copy() if isinstance(self.uri, SipUri) else self.uri
        return NameAddr(uri, self.display_name, self.params.copy(), self.wildcard)

    def __str__(self) -> str:
        if self.wildcard:
            return "*"
        name = f"{quote(self.display_name)} " if self.display_name is not None else ""
        return f"{name}<{self.uri}>{self.params.serialize()}"

    def __repr__(self) -> str:
        return f"NameAddr({str(self)!r})"


_NAME_ADDRS: dict[str, NameAddr] = {}


def _uri(text: str) -> Uri:
    try:
        return parse_uri(text)
    except UriError as exc:
        raise HeaderError(str(exc)) from exc


def parse_name_addrs(values: Iterable[str]) -> list[NameAddr]:
    return [NameAddr.parse(v) for v in values]


# --------------------------------------------------------------------------- CSeq

MAX_CSEQ = 2**32 - 1


@dataclass(frozen=True)
class CSeq:
    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        parts = text.split()
        if len(parts) != 2 or not parts[0].isdigit() or not is_token(parts[1]):
            raise HeaderError(f"bad CSeq {text!r}")
        if len(parts[0].lstrip("0")) > 10 or int(parts[0]) > MAX_CSEQ:
            raise HeaderError("CSeq number out of range")
        return cls(int(parts[0]), parts[1])

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


# --------------------------------------------------------------------------- authentication

_AUTH_PARAM_RE = re.compile(
    rf"[ \t]*([{TOKEN_CHARS}]+)[ \t]*=[ \t]*"
    rf"(\"(?:[^\"\\]|\\.)*\"|[{TOKEN_CHARS}/:@]+)[ \t]*(?:,|$)",
    re.S,
)
# Parameters sent as bare tokens: RFC 7616 §3.4 (algorithm, qop in credentials, nc, stale).
UNQUOTED_AUTH_PARAMS = frozenset({"algorithm", "nc", "stale"})


@dataclass(eq=False)
class AuthHeader:
    """A challenge or credentials value: ``Digest realm="…", nonce="…", …``.

    ``params`` holds unquoted values under case-insensitive names.
    """

    scheme: str
    params: Params = field(default_factory=Params)

    @classmethod
    def parse(cls, text: str) -> AuthHeader:
        text = text.strip(_LWS)
        scheme, _, rest = text.partition(" ")
        if not is_token(scheme):
            raise HeaderError("bad authentication scheme")
        params = Params()
        pos = 0
        rest = rest.strip(_LWS)
        while pos < len(rest):
            m = _AUTH_PARAM_RE.match(rest, pos)
            if m is None:
                raise HeaderError("bad authentication parameter")
            name, value = m.groups()
            if name in params:
                raise HeaderError(f"repeated authentication parameter {name}")
            params[name] = unquote(value)
            pos = m.end()
        return cls(scheme, params)

    def get(self, name: str) -> str | None:
        return self.params.get(name)

    def serialize(self, unquoted: Iterable[str] = ()) -> str:
        bare = {n.lower() for n in unquoted}
        parts = []
        for name, value in self.params.items():
            value = value or ""
            parts.append(f"{name}={value}" if name.lower() in bare else f"{name}={quote(value)}")
        return f"{self.scheme} " + ", ".join(parts)
