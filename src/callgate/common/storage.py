"""Artefact files (recordings, voicemail, faxes, sounds) under ``CALLGATE_DATA_DIR``.

Rows keep a path relative to the data directory; this module is the only place that turns it
into a real path, refusing anything that would escape the directory. Files are written to a
temporary name and renamed, so a crash never leaves half a file under a real name.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from callgate.common.errors import InvalidInput, NotFound


class FileTooLarge(InvalidInput):
    """An upload past its size limit."""


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path_of(self, relative: str) -> Path:
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root):
            raise NotFound("The file is not in the data directory.")
        return path

    def new_relative_path(self, kind: str, client_id: int, name: str, suffix: str) -> str:
        safe_suffix = "".join(c for c in suffix if c.isalnum())[:8]
        return f"{kind}/{client_id}/{name}.{safe_suffix or 'bin'}"

    def write_bytes(self, relative: str, chunks: Iterable[bytes]) -> int:
        """Write atomically; returns the size."""
        path = self.path_of(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        size = 0
        try:
            with temporary.open("wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                    size += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            temporary.replace(path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return size

    async def write_stream(
        self, relative: str, chunks: AsyncIterator[bytes], max_bytes: int
    ) -> int:
        """Write an upload atomically, refusing it once it passes ``max_bytes``."""
        path = self.path_of(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        size = 0
        try:
            with temporary.open("wb") as handle:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise FileTooLarge(
                            f"The file is larger than the limit of {max_bytes} bytes.",
                            {"file": "too large"},
                        )
                    handle.write(chunk)
            temporary.replace(path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return size

    def open_existing(self, relative: str) -> Path:
        """The path of a stored file; ``NotFound`` (never a 500) when it has vanished."""
        path = self.path_of(relative)
        if not path.is_file():
            raise NotFound("The file of this item is missing from storage.")
        return path

    def delete(self, relative: str) -> None:
        self.path_of(relative).unlink(missing_ok=True)
