"""The local object store's files on disk: JSON sidecars (written atomically, trusted only
for the inode they describe), MD5 while copying, a part being streamed in, and temp files that
vanish unless renamed into place.

Private to :mod:`server.integrations.localstore`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NamedTuple, Self

from server.integrations.storage import (
    DEFAULT_CONTENT_TYPE,
    READ_CHUNK_SIZE,
    PartInfo,
    PartTooLarge,
    StorageError,
    UploadNotFound,
    storage_os_error,
)

COPY_BUFFER_SIZE = 1024 * 1024


class Sidecar(NamedTuple):
    etag: str
    size: int
    inode: int
    content_type: str = DEFAULT_CONTENT_TYPE
    sha256: str | None = None


def write_json_atomic(path: Path, data: Mapping[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_sidecar(path: Path, stat: os.stat_result) -> Sidecar | None:
    """The sidecar if it describes exactly this file (same inode and size), else None."""
    data = read_json(path)
    if data is None:
        return None
    try:
        sidecar = Sidecar(
            str(data["etag"]),
            int(data["size"]),
            int(data["inode"]),
            str(data.get("content_type", DEFAULT_CONTENT_TYPE)),
            str(data["sha256"]) if data.get("sha256") else None,
        )
    except (KeyError, TypeError, ValueError):
        return None
    if (sidecar.inode, sidecar.size) != (stat.st_ino, stat.st_size):
        return None
    return sidecar


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(COPY_BUFFER_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def copy_hashing(source: Path, target: IO[bytes], whole: hashlib._Hash) -> int:
    """Append ``source`` to ``target``, feeding ``whole`` the same bytes; returns the size."""
    size = 0
    with source.open("rb") as f:
        while chunk := f.read(COPY_BUFFER_SIZE):
            whole.update(chunk)
            target.write(chunk)
            size += len(chunk)
    return size


def copy_with_md5(
    source: Path, target: IO[bytes], whole: hashlib._Hash | None = None
) -> tuple[bytes, int]:
    """Append ``source`` to ``target``; returns the part's binary MD5 and size.

    ``whole`` (the object's running SHA-256) is fed the same bytes."""
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    with source.open("rb") as f:
        while chunk := f.read(COPY_BUFFER_SIZE):
            digest.update(chunk)
            if whole is not None:
                whole.update(chunk)
            target.write(chunk)
            size += len(chunk)
    return digest.digest(), size


# ---------------------------------------------------------------------------------------- parts


class PartWriter:
    """Streams one part to a temp file, hashing it; ``commit`` renames it into place.

    More than ``max_bytes`` raises :class:`PartTooLarge`. Leaving the ``with`` block without
    ``commit`` (a client that hung up) deletes the temp file.
    """

    def __init__(self, upload_dir: Path, part_number: int, max_bytes: int) -> None:
        self._final = upload_dir / str(part_number)
        self._number = part_number
        self._max_bytes = max_bytes
        fd, tmp = tempfile.mkstemp(dir=upload_dir, prefix=f".{part_number}-", suffix=".tmp")
        self._tmp = Path(tmp)
        self._file: IO[bytes] | None = os.fdopen(fd, "wb")
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._size = 0

    def write(self, chunk: bytes) -> None:
        if self._file is None:
            raise StorageError("part writer already closed")
        self._size += len(chunk)
        if self._size > self._max_bytes:
            self.discard()
            raise PartTooLarge(f"a part can hold at most {self._max_bytes} bytes")
        self._md5.update(chunk)
        try:
            self._file.write(chunk)
        except OSError as e:
            self.discard()
            raise storage_os_error(e, f"store part {self._number}") from e

    def commit(self) -> PartInfo:
        if self._file is None:
            raise StorageError("part writer already closed")
        file, self._file = self._file, None
        try:
            with file:
                file.flush()
                inode = os.fstat(file.fileno()).st_ino
            etag = self._md5.hexdigest()
            sidecar = Sidecar(etag, self._size, inode)._asdict()
            write_json_atomic(self._final.with_name(f"{self._number}.json"), sidecar)
            self._tmp.replace(self._final)
        except FileNotFoundError as e:  # the upload was aborted or completed meanwhile
            self._tmp.unlink(missing_ok=True)
            raise UploadNotFound("the multipart upload is gone") from e
        except OSError as e:
            self._tmp.unlink(missing_ok=True)
            raise storage_os_error(e, f"store part {self._number}") from e
        return PartInfo(self._number, etag, self._size)

    def discard(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.discard()


class TempFile:
    """A temp file in ``.tmp`` that is removed on leaving the block unless it was renamed."""

    def __init__(self, folder: Path) -> None:
        fd, name = tempfile.mkstemp(dir=folder, suffix=".tmp")
        self.file: IO[bytes] = os.fdopen(fd, "wb")
        self._path: Path | None = Path(name)

    def sync(self) -> os.stat_result:
        """Flush to disk; returns the file's stat (its inode survives the rename)."""
        self.file.flush()
        os.fsync(self.file.fileno())
        return os.fstat(self.file.fileno())

    def rename(self, target: Path) -> None:
        if self._path is None:
            raise StorageError("temp file already renamed")
        self._path.replace(target)
        self._path = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.file.close()
        if self._path is not None:
            self._path.unlink(missing_ok=True)


@contextmanager
def os_errors(what: str) -> Iterator[None]:
    """Disk errors (full, read-only, permissions) become :class:`StorageError`."""
    try:
        yield
    except OSError as e:
        raise storage_os_error(e, what) from e


def chunks(file: IO[bytes], length: int | None) -> Iterator[bytes]:
    remaining = length
    while remaining is None or remaining > 0:
        size = READ_CHUNK_SIZE if remaining is None else min(READ_CHUNK_SIZE, remaining)
        chunk = file.read(size)
        if not chunk:
            return
        if remaining is not None:
            remaining -= len(chunk)
        yield chunk
