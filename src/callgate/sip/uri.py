"""SIP URIs (RFC 3261 §19.1): parsing, serialization and the §19.1.4 comparison rules.

A ``sip:``/``sips:`` URI becomes a :class:`SipUri`; any other scheme (``tel:``, unknown ones from
RFC 4475) becomes an :class:`AbsoluteUri` carried opaquely, so a request to an unknown scheme
still parses and the engine can answer ``416 Unsupported URI Scheme`` itself.

Parameter names compare case-insensitively and keep their spelling; the well-known parameters whose
values are tokens (``transport``, ``user``, ``method``, ``maddr``, ``ttl``, ``lr``) also compare
their values case-insensitively, so ``transport=UDP`` equals ``transport=udp`` (SIPp sends the
former).
The user part keeps its escapes as received (``%40``) and ``*`` is an ordinary user character
(``00012*101`` is a valid extension user).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes


class UriError(ValueError):
    """A URI that does not follow the RFC 3261 grammar."""


_ALNUM = "A-Za-z0-9"
_MARK = r"\-_.!~*'()"
_UNRESERVED = _ALNUM + _MARK
_ESCAPED = r"%[0-9A-Fa-f]{2}"
_USER_RE = re.compile(rf"(?:[{_UNRESERVED}&=+$,;?/]|{_ESCAPED})+")
_PASSWORD_RE = re.compile(rf"(?:[{_UNRESERVED}&=+$,]|{_ESCAPED})*")
_PARAMCHAR_RE = re.compile(rf"(?:[{_UNRESERVED}\[\]/:&+$]|{_ESCAPED})+")
_HEADERCHAR_RE = re.compile(rf"(?:[{_UNRESERVED}\[\]/?:+$]|{_ESCAPED})*")
_HOSTNAME_RE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)*"
    r"[A-Za-z](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.?"
)
_IPV4_RE = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_IPV6_RE = re.compile(r"\[[0-9A-Fa-f:.]+\]")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_DELIMITER_RE = re.compile(r'[ \t\r\n<>"]')
# Parameters whose values are case-insensitive tokens; others (and user/password) are compared
# byte-for-byte after unescaping, as RFC 3261 §19.1.4 asks.
_TOKEN_VALUED = frozenset({"transport", "user", "method", "maddr", "ttl", "lr"})


class Params:
    """Ordered ``name[=value]`` parameters with case-insensitive names.

    Values keep their spelling (a flag parameter such as ``lr`` has the value ``None``). Setting a
    parameter that exists replaces its value in place, keeping the spelling of the first name.
    """

    # ``_keys[i]`` is the lower-cased name of ``_items[i]``; ``_shared`` is set when the two
    # lists are shared with a copy (copy on write: the first change takes private lists).
    __slots__ = ("_items", "_keys", "_shared")

    def __init__(self, items: Iterable[tuple[str, str | None]] = ()) -> None:
        self._items: list[tuple[str, str | None]] = []
        self._keys: list[str] = []
        self._shared = False
        for name, value in items:
            self[name] = value

    def _own(self) -> None:
        if self._shared:
            self._items = list(self._items)
            self._keys = list(self._keys)
            self._shared = False

    def _index(self, name: str) -> int:
        try:
            return self._keys.index(name.lower())
        except ValueError:
            return -1

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._index(name) >= 0

    def __getitem__(self, name: str) -> str | None:
        i = self._index(name)
        if i < 0:
            raise KeyError(name)
        return self._items[i][1]

    def get(self, name: str, default: str | None = None) -> str | None:
        i = self._index(name)
        return default if i < 0 else self._items[i][1]

    def __setitem__(self, name: str, value: str | None) -> None:
        self._own()
        i = self._index(name)
        if i < 0:
            self._items.append((name, value))
            self._keys.append(name.lower())
        else:
            self._items[i] = (self._items[i][0], value)

    def __delitem__(self, name: str) -> None:
        i = self._index(name)
        if i < 0:
            raise KeyError(name)
        self._own()
        del self._items[i]
        del self._keys[i]

    def pop(self, name: str, default: str | None = None) -> str | None:
        i = self._index(name)
        if i < 0:
            return default
        self._own()
        del self._keys[i]
        return self._items.pop(i)[1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def items(self) -> list[tuple[str, str | None]]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def copy(self) -> Params:
        clone = Params.__new__(Params)
        clone._items = self._items
        clone._keys = self._keys
        clone._shared = self._shared = True
        return clone

    def normalized(self) -> dict[str, str | None]:
        """Lower-cased names mapped to values (token-valued ones lower-cased too)."""
        out: dict[str, str | None] = {}
        for name, value in self._items:
            key = name.lower()
            if value is not None and key in _TOKEN_VALUED:
                value = value.lower()
            out[key] = value
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Params):
            return NotImplemented
        return self.normalized() == other.normalized()

    __hash__ = None  # type: ignore[assignment]

    def serialize(self) -> str:
        if not self._items:
            return ""
        return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in self._items)

    def __repr__(self) -> str:
        return f"Params({self._items!r})"


def _unescape(text: str) -> bytes:
    return unquote_to_bytes(text)


@dataclass(eq=False)
class SipUri:
    """A ``sip:`` or ``sips:`` URI. ``host`` keeps IPv6 brackets (``[2001:db8::1]``)."""

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    scheme: str = "sip"
    params: Params = field(default_factory=Params)
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def secure(self) -> bool:
        return self.scheme == "sips"

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, lower-cased (``UDP`` and ``udp`` are the same)."""
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def loose_route(self) -> bool:
        return "lr" in self.params

    @property
    def user_unescaped(self) -> str | None:
        if self.user is None:
            return None
        return _unescape(self.user).decode("utf-8", "surrogateescape")

    def copy(self) -> SipUri:
        return SipUri(
            self.host,
            self.user,
            self.password,
            self.port,
            self.scheme,
            self.params.copy(),
            list(self.headers),
        )

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(":" + self.password)
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        out.append(self.params.serialize())
        if self.headers:
            out.append("?" + "&".join(f"{k}={v}" for k, v in self.headers))
        return "".join(out)

    def __repr__(self) -> str:
        return f"SipUri({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        """RFC 3261 §19.1.4: escapes decoded, host case-insensitive, selected params must agree."""
        if not isinstance(other, SipUri):
            return NotImplemented
        if self.scheme != other.scheme or self.port != other.port:
            return False
        if self.host.lower() != other.host.lower():
            return False
        if (self.user is None) != (other.user is None):
            return False
        if _unescape(self.user or "") != _unescape(other.user or ""):
            return False
        if _unescape(self.password or "") != _unescape(other.password or ""):
            return False
        mine, theirs = self.params.normalized(), other.params.normalized()
        for name in set(mine) | set(theirs):
            if name in mine and name in theirs:
                a, b = mine[name], theirs[name]
                if _unescape(a or "").lower() != _unescape(b or "").lower():
                    return False
            elif name in ("user", "ttl", "method", "maddr", "transport"):
                # A parameter that changes where the request goes must be in both or neither.
                return False
        own = sorted((k.lower(), _unescape(v)) for k, v in self.headers)
        return own == sorted((k.lower(), _unescape(v)) for k, v in other.headers)

    __hash__ = None  # type: ignore[assignment]


@dataclass(eq=False)
class AbsoluteUri:
    """A URI of a scheme this core does not interpret (``tel:``, ``im:``, unknown ones)."""

    scheme: str
    opaque: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"

    def __repr__(self) -> str:
        return f"AbsoluteUri({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AbsoluteUri):
            return NotImplemented
        return self.scheme.lower() == other.scheme.lower() and self.opaque == other.opaque

    __hash__ = None  # type: ignore[assignment]


Uri = SipUri | AbsoluteUri


def _parse_host_port(text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise UriError("unterminated IPv6 reference")
        host, rest = text[: end + 1], text[end + 1 :]
        if not _IPV6_RE.fullmatch(host):
            raise UriError("bad IPv6 reference")
    else:
        host, _, port_text = text.partition(":")
        rest = ":" + port_text if _ else ""
        if not (_IPV4_RE.fullmatch(host) or _HOSTNAME_RE.fullmatch(host)):
            raise UriError(f"bad host {host!r}")
    if not rest:
        return host, None
    if not rest.startswith(":") or not rest[1:].isdigit() or len(rest) > 6:
        raise UriError("bad port")
    port = int(rest[1:])
    if port > 65535:
        raise UriError("port out of range")
    return host, port


def parse_params(text: str) -> Params:
    """Parse ``;a=b;c`` (the leading ``;`` included) into :class:`Params`."""
    params = Params()
    if not text:
        return params
    if not text.startswith(";"):
        raise UriError("parameters must start with ';'")
    for part in text[1:].split(";"):
        name, eq, value = part.partition("=")
        if not _PARAMCHAR_RE.fullmatch(name) or (eq and not _PARAMCHAR_RE.fullmatch(value)):
            raise UriError(f"bad URI parameter {part!r}")
        params[name] = value if eq else None
    return params


def parse_sip_uri(text: str) -> SipUri:
    """Parse a ``sip:``/``sips:`` URI, raising :class:`UriError` when it is malformed."""
    scheme, colon, rest = text.partition(":")
    scheme = scheme.lower()
    if not colon or scheme not in ("sip", "sips"):
        raise UriError("not a sip or sips URI")
    if _DELIMITER_RE.search(rest):
        raise UriError("whitespace or delimiter inside a URI")
    user = password = None
    at = rest.rfind("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, has_pw, pw = userinfo.partition(":")
        if not _USER_RE.fullmatch(user):
            raise UriError("bad user part")
        if has_pw:
            if not _PASSWORD_RE.fullmatch(pw):
                raise UriError("bad password")
            password = pw
    headers: list[tuple[str, str]] = []
    rest, q, header_text = rest.partition("?")
    if q:
        for pair in header_text.split("&"):
            name, eq, value = pair.partition("=")
            if not eq or not name or not _HEADERCHAR_RE.fullmatch(name + value):
                raise UriError("bad URI header")
            headers.append((name, value))
    semi = rest.find(";")
    hostport, param_text = (rest, "") if semi < 0 else (rest[:semi], rest[semi:])
    host, port = _parse_host_port(hostport)
    return SipUri(host, user, password, port, scheme, parse_params(param_text), headers)


# Request-URIs and Contact URIs repeat across the messages of a call: parsed SIP URIs are kept
# by their text (bounded) and handed out as copies.
_SIP_URIS: dict[str, SipUri] = {}
_CACHE_SIZE = 512
_CACHED_TEXT = 512


def parse_uri(text: str) -> Uri:
    """Parse any URI: SIP URIs strictly, other schemes as opaque :class:`AbsoluteUri`."""
    cached = _SIP_URIS.get(text)
    if cached is not None:
        return cached.copy()
    uri = _parse_uri(text)
    if isinstance(uri, SipUri) and len(text) <= _CACHED_TEXT:
        if len(_SIP_URIS) >= _CACHE_SIZE:
            _SIP_URIS.clear()
        _SIP_URIS[text] = uri.copy()
    return uri


def _parse_uri(text: str) -> Uri:
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME_RE.fullmatch(scheme):
        raise UriError("URI without a scheme")
    if scheme.lower() in ("sip", "sips"):
        return parse_sip_uri(text)
    if not rest or _DELIMITER_RE.search(rest):
        raise UriError("bad absolute URI")
    return AbsoluteUri(scheme, rest)
