"""What an upload reads: a file's identity (resolved path, size, mtime, SHA-256), and the
sources parts are read from at their offsets (a file, or bytes in memory)."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final, Protocol

from desktop.core.parts import SEND_SLICE_BYTES, PartBody, UploadCancelled
from desktop.core.sessions import FileIdentity
from subtone.errors import SubtoneError

__all__ = [
    "HASH_CHUNK_BYTES",
    "BytesSource",
    "FileSource",
    "Source",
    "UploadProgress",
    "file_changed",
    "file_identity",
    "sha256_file",
]

MiB: Final = 1024 * 1024
HASH_CHUNK_BYTES: Final = 4 * MiB

UploadProgress = Callable[[int, int], None]
"""``(bytes stored, bytes in all)``; called from the thread that called the upload."""


def sha256_file(
    path: str | os.PathLike[str],
    *,
    progress: UploadProgress | None = None,
    cancel: threading.Event | None = None,
) -> str:
    """The file's SHA-256 (hex), read in chunks."""
    digest = hashlib.sha256()
    total = Path(path).stat().st_size
    done = 0
    with Path(path).open("rb") as f:
        while chunk := f.read(HASH_CHUNK_BYTES):
            if cancel is not None and cancel.is_set():
                raise UploadCancelled("The upload was cancelled.")
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return digest.hexdigest()


def file_identity(
    path: str | os.PathLike[str],
    *,
    progress: UploadProgress | None = None,
    cancel: threading.Event | None = None,
    sha256: str | None = None,
) -> FileIdentity:
    """The file's resolved path, size, mtime and SHA-256 (``sha256``: what the caller knows
    it to be, having written the file itself; the file is then not read)."""
    resolved = Path(path).resolve()
    try:
        before = resolved.stat()
        if sha256 is None:
            sha256 = sha256_file(resolved, progress=progress, cancel=cancel)
        after = resolved.stat()
    except OSError as e:
        raise _unreadable(resolved, e) from e
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        raise file_changed(resolved)
    return FileIdentity(str(resolved), after.st_size, after.st_mtime_ns, sha256)


def _unreadable(path: Path, error: OSError) -> SubtoneError:
    return SubtoneError(f"Cannot read {path.name}: {error.strerror}.", code="unreadable_file")


def file_changed(path: Path) -> SubtoneError:
    return SubtoneError(
        f"{path.name} changed while it was being uploaded; try again once it is finished.",
        code="file_changed",
    )


class Source(Protocol):
    size: int

    def body(self, offset: int, length: int) -> PartBody:
        """The part at ``offset``, read as it is sent."""
        ...


class FileSource:
    def __init__(self, identity: FileIdentity) -> None:
        self.path = Path(identity.path)
        self.size = identity.size
        self._identity = identity

    def body(self, offset: int, length: int) -> PartBody:
        return PartBody(length, lambda: self._pieces(offset, length))

    def _pieces(self, offset: int, length: int) -> Iterator[bytes]:
        """The part's bytes a piece at a time; a file that has shrunk meanwhile raises
        ``file_changed`` (the PUT then stops short, and storage keeps nothing of it)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise _unreadable(self.path, e) from e
        try:
            end = offset + length
            while offset < end:
                try:
                    piece = os.pread(fd, min(SEND_SLICE_BYTES, end - offset), offset)
                except OSError as e:
                    raise _unreadable(self.path, e) from e
                if not piece:
                    raise file_changed(self.path)
                offset += len(piece)
                yield piece
        finally:
            os.close(fd)

    def check_unchanged(self) -> None:
        try:
            stat = self.path.stat()
        except OSError as e:
            raise file_changed(self.path) from e
        if (stat.st_size, stat.st_mtime_ns) != (self._identity.size, self._identity.mtime_ns):
            raise file_changed(self.path)


class BytesSource:
    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self.size = len(data)

    def body(self, offset: int, length: int) -> PartBody:
        return PartBody.of(bytes(self._data[offset : offset + length]))
