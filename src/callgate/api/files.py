"""Uploads and downloads of artefact files at the HTTP edge (sounds, fax documents).

``receive_upload`` reads a ``multipart/form-data`` body as it arrives and streams its one file
part straight into the ``FileStore`` (``write_stream``), so an upload is never held in memory
and one past its limit is refused as soon as it passes it — or before a byte is read, when the
declared ``Content-Length`` is already too large. Starlette's own form parser would first spool
the whole body to a temporary file and only then let the endpoint look at its size.

``attachment`` builds the download answer of a stored file.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request
from starlette.responses import FileResponse

from callgate.common.errors import InvalidInput, UnsupportedMediaType
from callgate.common.storage import FileStore, FileTooLarge

# Room for the multipart framing and the small text fields around the file part.
MULTIPART_OVERHEAD = 64 * 1024
MAX_TEXT_FIELD = 4096
MAX_PARTS = 16

HeadCheck = Callable[[bytes], None]


class MalformedUpload(InvalidInput):
    """A multipart body that cannot be parsed."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"The multipart body is malformed: {problem}.", {"body": problem})


@dataclass
class Upload:
    """What a multipart body held: its text fields and its one file, already stored."""

    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    size: int = 0


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None


def multipart_request_body(
    fields: dict[str, dict[str, Any]], required: list[str]
) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a multipart route (its fields are read by hand)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": fields, "required": required}
                }
            },
        }
    }


def upload_responses(created: str) -> dict[int | str, dict[str, Any]]:
    """The documented answers of an upload route besides the policy's."""
    return {
        201: {"description": created},
        409: {"description": "The object's state does not allow this (conflict)."},
        415: {"description": "The body is not multipart/form-data (unsupported_media_type)."},
        422: {"description": "A bad field or file (invalid_input, with fields)."},
    }


def _boundary(request: Request) -> tuple[bytes, str]:
    content_type = request.headers.get("content-type", "")
    media_type, options = parse_options_header(content_type)
    if media_type != b"multipart/form-data":
        shown = media_type.decode("latin-1") or "empty"
        raise UnsupportedMediaType(f"The request body must be multipart/form-data, not {shown}.")
    boundary = options.get(b"boundary")
    if not boundary:
        raise MalformedUpload("the Content-Type has no boundary")
    charset = options.get(b"charset", b"utf-8").decode("latin-1")
    try:
        charset = codecs.lookup(charset).name
    except LookupError:
        charset = "utf-8"
    return boundary, charset


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise MalformedUpload("the Content-Length is not a number") from None


class _Reader:
    """Feeds the request body to python-multipart and hands out its events one by one."""

    def __init__(self, request: Request, boundary: bytes) -> None:
        self.request = request
        self.pending: list[tuple[str, bytes]] = []
        self.ended = False
        self._header_name = b""
        self._header_value = b""
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": lambda: self.pending.append(("begin", b"")),
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": lambda: self.pending.append(("headers", b"")),
                "on_part_data": lambda data, start, end: self.pending.append(
                    ("data", bytes(data[start:end]))
                ),
                "on_part_end": lambda: self.pending.append(("end", b"")),
                "on_end": self._on_end,
            },
        )

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self.pending.append(("header", self._header_name.lower() + b"\0" + self._header_value))
        self._header_name = self._header_value = b""

    def _on_end(self) -> None:
        self.ended = True

    async def events(self) -> AsyncGenerator[tuple[str, bytes]]:
        async for chunk in self.request.stream():
            try:
                self.parser.write(chunk)
            except FormParserError as exc:
                raise MalformedUpload(str(exc).rstrip(".") or "unreadable") from None
            while self.pending:
                yield self.pending.pop(0)
        if not self.ended:
            raise MalformedUpload("the body ends before its closing boundary")


async def _file_data(
    events: AsyncIterator[tuple[str, bytes]], check_head: HeadCheck, head_size: int
) -> AsyncGenerator[bytes]:
    """The data of the current part; its first ``head_size`` bytes are checked first."""
    head = b""
    checked = False
    async for kind, data in events:
        if kind == "end":
            break
        if kind != "data" or not data:
            continue
        if not checked:
            head += data
            if len(head) < head_size:
                continue
            check_head(head)
            checked = True
            data, head = head, b""
        yield data
    if not checked:
        check_head(head)
        if head:
            yield head


async def receive_upload(
    request: Request,
    *,
    store: FileStore,
    relative: str,
    file_field: str,
    text_fields: frozenset[str],
    max_bytes: int,
    too_large: str,
    check_head: HeadCheck,
    head_size: int,
) -> Upload:
    """Read a multipart body: its text fields, and its one file written to ``relative``.

    Refuses (and leaves no file behind) a body that is not multipart, is malformed, has unknown
    or repeated fields, a file larger than ``max_bytes`` (``too_large`` says why), or a file
    whose first bytes ``check_head`` rejects.
    """
    boundary, charset = _boundary(request)
    declared = _declared_length(request)
    if declared is not None and declared > max_bytes + MULTIPART_OVERHEAD:
        raise FileTooLarge(too_large, {file_field: "too large"})
    upload = Upload()
    reader = _Reader(request, boundary)
    try:
        async with aclosing(reader.events()) as events:
            await _read_parts(
                events, upload, store, relative, file_field, text_fields, max_bytes, too_large,
                check_head, head_size, charset,
            )  # fmt: skip
    except BaseException:
        store.delete(relative)
        raise
    if upload.filename is None:
        raise InvalidInput(f"The {file_field} part is missing.", {file_field: "required"})
    return upload


async def _read_parts(
    events: AsyncIterator[tuple[str, bytes]],
    upload: Upload,
    store: FileStore,
    relative: str,
    file_field: str,
    text_fields: frozenset[str],
    max_bytes: int,
    too_large: str,
    check_head: HeadCheck,
    head_size: int,
    charset: str,
) -> None:
    part = _Part()
    parts = 0
    async for kind, data in events:
        if kind == "begin":
            part = _Part()
            parts += 1
            if parts > MAX_PARTS:
                raise MalformedUpload(f"more than {MAX_PARTS} parts")
        elif kind == "header":
            name, _, value = data.partition(b"\0")
            part.headers[name] = value
        elif kind == "headers":
            _name_part(part, charset)
            if part.name == file_field:
                if part.filename is None:
                    raise InvalidInput(
                        f"The {file_field} part must be a file (with a filename).",
                        {file_field: "not a file"},
                    )
                if upload.filename is not None:
                    raise InvalidInput(
                        f"Send one {file_field} only.", {file_field: "more than one file"}
                    )
                upload.filename = part.filename
                async with aclosing(_file_data(events, check_head, head_size)) as chunks:
                    try:
                        upload.size = await store.write_stream(relative, chunks, max_bytes)
                    except FileTooLarge:
                        raise FileTooLarge(too_large, {file_field: "too large"}) from None
            elif part.name in text_fields:
                if part.name in upload.fields:
                    raise InvalidInput(f"Send {part.name} once.", {part.name: "repeated"})
                upload.fields[part.name] = await _text_value(events, part.name, charset)
            else:
                raise InvalidInput(
                    f"Unknown field {part.name!r}; expected {file_field} and "
                    f"{', '.join(sorted(text_fields))}.",
                    {part.name or "body": "unknown field"},
                )


def _name_part(part: _Part, charset: str) -> None:
    disposition = part.headers.get(b"content-disposition")
    if disposition is None:
        raise MalformedUpload("a part has no Content-Disposition header")
    kind, options = parse_options_header(disposition)
    name = options.get(b"name")
    if kind != b"form-data" or name is None:
        raise MalformedUpload("a part is not form-data with a name")
    part.name = name.decode(charset, errors="replace")
    filename = options.get(b"filename")
    part.filename = None if filename is None else filename.decode(charset, errors="replace")


async def _text_value(events: AsyncIterator[tuple[str, bytes]], name: str, charset: str) -> str:
    value = b""
    async for kind, data in events:
        if kind == "end":
            break
        if kind == "data":
            value += data
            if len(value) > MAX_TEXT_FIELD:
                raise InvalidInput(
                    f"The {name} field is longer than {MAX_TEXT_FIELD} bytes.", {name: "too long"}
                )
    try:
        return value.decode(charset)
    except UnicodeDecodeError:
        raise InvalidInput(
            f"The {name} field is not valid {charset}.", {name: "encoding"}
        ) from None


def safe_filename(name: str, fallback: str) -> str:
    """A file name fit for Content-Disposition: no path, quotes or control characters."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in name if c.isprintable() and c not in '";').strip(" .")
    return cleaned[:200] or fallback


def content_disposition(filename: str) -> str:
    """``attachment; filename="…"``, plus RFC 6266's ``filename*`` when the name is not ASCII."""
    ascii_name = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in filename)
    value = f'attachment; filename="{ascii_name}"'
    if ascii_name != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


def attachment(path: Path, media_type: str, filename: str) -> FileResponse:
    """A stored file as a download (``Content-Disposition: attachment``)."""
    return FileResponse(
        path, media_type=media_type, headers={"Content-Disposition": content_disposition(filename)}
    )
