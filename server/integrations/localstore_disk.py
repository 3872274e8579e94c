"""The local object store's files on disk: JSON sidecars (written atomically, trusted only
for the inode they describe), MD5 while copying, a part being streamed in (to a file of its
own, or in place in the upload's one data file), and temp files that vanish unless renamed
into place.

Private to :mod:`server.integrations.localstore`.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NamedTuple, Protocol, Self

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
DATA_FILE = "data"
"""The upload's one file that parts planned at a fixed size are written into, each at its
offset: completing renames it onto the key (no copy)."""
OWNER_SUFFIX = ".owner"
"""``<part number>.owner``: the write id of the newest writer of an in-place part."""
WRITEBACK_BYTES = 8 * 1024 * 1024
"""A part written in place asks the kernel to start writing each such stretch to disk as it
comes, so that making the object durable at completion waits for the last stretch only."""
_SYNC_FILE_RANGE_WRITE = 2


def _sync_file_range() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """Linux's ``sync_file_range(2)`` (the standard library has no wrapper), or None."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # this process's own C library
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function


_SYNC_RANGE = _sync_file_range()


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing a dirty stretch of ``fd`` to disk without waiting for it (a hint: where
    the system has no ``sync_file_range``, the final ``fdatasync`` does it all)."""
    if _SYNC_RANGE is not None and length > 0:
        _SYNC_RANGE(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


class Sidecar(NamedTuple):
    etag: str
    size: int
    inode: int
    content_type: str = DEFAULT_CONTENT_TYPE
    sha256: str | None = None


def write_json_atomic(path: Path, data: Mapping[str, object], *, make_parent: bool = True) -> None:
    """Write ``path`` whole or not at all. Without ``make_parent`` a missing folder is
    :class:`FileNotFoundError` (a part's sidecar must not bring back an upload's folder that
    completing or aborting removed)."""
    if make_parent:
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

    def write(self, chunk: bytes | bytearray) -> None:
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
            write_json_atomic(
                self._final.with_name(f"{self._number}.json"), sidecar, make_parent=False
            )
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


class PartSuperseded(StorageError):
    """A part being written was sent again meanwhile: the newer write owns it."""

    code = "part_superseded"
    status = 409


class WriteFollower(Protocol):
    """Told of each batch an in-place part writer stores (the upload's running SHA-256,
    :class:`~server.integrations.localstore_digest.PartFollower`)."""

    def wrote(self, fd: int, before: int, batch: bytes | bytearray) -> None:
        """``batch`` was written at the part's offset plus ``before``; the file is locked."""
        ...

    def stopped(self) -> None:
        """The write ended without being stored."""
        ...


class InPlacePartWriter:
    """Streams one part into the upload's data file at ``offset`` (its planned place);
    ``commit`` records it in its sidecar. The same interface as :class:`PartWriter`.

    It holds a shared lock on the data file only while it touches it (clearing its sidecar
    at the start, each write, recording the part), and completion takes it exclusively: an
    upload is never completed in the middle of a write, and a writer waiting on the network
    (a stalled PUT whose part has since been sent again) never holds completion up. Each time
    it locks, it checks that the file is still the upload's (completion renames it onto its
    key): nothing is written into a published object. Its sidecar is removed first, so a
    part being written again is not listed with the old bytes' ETag (completion checks the
    parts again once it holds the lock, and refuses one that is being written again).

    **The newest writer of a part owns it.** Starting, a writer records its *write id* (a
    random id) in the part's owner file; each write and the commit check it there, under an
    exclusive lock of that file, and a writer that finds another's id stops
    (:class:`PartSuperseded`). So once a newer PUT of a part has started, an older one (a
    stalled request its client gave up on) never writes into the part again: the bytes of
    a committed part are exactly its writer's, which is what lets the upload's running
    SHA-256 (:mod:`.localstore_digest`) trust bytes it hashed once.

    The part's ETag is its write id, not an MD5 of its bytes: it names which write stored
    the part (what completing checks the client's list against), and the object's bytes
    are vouched for by its SHA-256 at completion. Hashing every byte with MD5 was the
    costliest thing a part's PUT did.
    """

    def __init__(
        self,
        upload_dir: Path,
        part_number: int,
        max_bytes: int,
        offset: int,
        follower: Callable[[int, str], WriteFollower] | None = None,
    ) -> None:
        """``follower(data file inode, write id)``: what to tell of each batch written."""
        self._number = part_number
        self._max_bytes = max_bytes
        self._offset = offset
        self._path = upload_dir / DATA_FILE
        self._sidecar = upload_dir / f"{part_number}.json"
        self._size = 0
        self._flushed = 0
        self._write = uuid.uuid4().hex
        """This write's id: its ETag, recorded in the owner file and in the sidecar."""
        self._fd: int | None = None
        self._owner: int | None = None
        self._follower: WriteFollower | None = None
        self._stored = False
        try:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CLOEXEC)
            self._owner = os.open(
                upload_dir / f"{part_number}{OWNER_SUFFIX}",
                os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                0o600,
            )
        except FileNotFoundError as e:
            self.discard()
            raise UploadNotFound("the multipart upload is gone") from e
        try:
            with self._locked(claim=True) as fd:
                self._sidecar.unlink(missing_ok=True)
                if follower is not None:
                    self._follower = follower(os.fstat(fd).st_ino, self._write)
        except BaseException:
            self.discard()
            raise

    @contextmanager
    def _locked(self, *, claim: bool = False) -> Iterator[int]:
        """The data file, locked (shared) for one touch and checked to be still the
        upload's (:class:`UploadNotFound` while it is being completed, or once it was), and
        the part checked to be still this writer's (``claim``: made this writer's)."""
        fd, owner = self._fd, self._owner
        if fd is None or owner is None:
            raise StorageError("part writer already closed")
        mine = self._write.encode()
        with shared_lock(fd, self._path):
            fcntl.flock(owner, fcntl.LOCK_EX)
            try:
                if claim:
                    os.ftruncate(owner, 0)
                    pwrite_all(owner, mine, 0)
                elif os.pread(owner, len(mine) + 1, 0) != mine:
                    raise PartSuperseded(
                        f"part {self._number} is being sent again; this older write stopped"
                    )
                yield fd
            finally:
                fcntl.flock(owner, fcntl.LOCK_UN)

    def write(self, chunk: bytes | bytearray) -> None:
        if self._fd is None:
            raise StorageError("part writer already closed")
        if self._size + len(chunk) > self._max_bytes:
            self.discard()
            raise PartTooLarge(f"a part can hold at most {self._max_bytes} bytes")
        try:
            with self._locked() as fd:
                pwrite_all(fd, chunk, self._offset + self._size)
                if self._follower is not None:
                    self._follower.wrote(fd, self._size, chunk)
        except (UploadNotFound, PartSuperseded):
            self.discard()
            raise
        except OSError as e:
            self.discard()
            raise storage_os_error(e, f"store part {self._number}") from e
        self._size += len(chunk)
        if self._size - self._flushed >= WRITEBACK_BYTES:
            start_writeback(self._fd, self._offset + self._flushed, self._size - self._flushed)
            self._flushed = self._size

    def commit(self) -> PartInfo:
        if self._fd is None:
            raise StorageError("part writer already closed")
        try:
            with self._locked() as fd:
                if self._size > self._flushed:
                    start_writeback(fd, self._offset + self._flushed, self._size - self._flushed)
                inode = os.fstat(fd).st_ino
                sidecar = {
                    **Sidecar(self._write, self._size, inode)._asdict(),
                    "offset": self._offset,
                    "write": self._write,
                }
                write_json_atomic(self._sidecar, sidecar, make_parent=False)
                self._stored = True
        except FileNotFoundError as e:  # the upload was aborted or completed meanwhile
            raise UploadNotFound("the multipart upload is gone") from e
        except OSError as e:
            raise storage_os_error(e, f"store part {self._number}") from e
        finally:
            self.discard()
        return PartInfo(self._number, self._write, self._size)

    def discard(self) -> None:
        fd, owner, self._fd, self._owner = self._fd, self._owner, None, None
        for held in (fd, owner):
            if held is not None:
                os.close(held)
        follower, self._follower = self._follower, None
        if follower is not None and not self._stored:
            follower.stopped()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.discard()


def pwrite_all(fd: int, data: bytes | bytearray, at: int) -> None:
    """Write all of ``data`` at ``at``: a short write goes on where it stopped."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, at)
        view, at = view[written:], at + written


@contextmanager
def shared_lock(fd: int, path: Path) -> Iterator[None]:
    """``fd``, an upload's data file at ``path``, locked (shared) for one touch and checked
    to be still the file under ``path``: :class:`UploadNotFound` while the upload is being
    completed (which locks it exclusively), or once it was (renamed onto its key)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError as e:
        raise UploadNotFound("the multipart upload is being completed") from e
    try:
        try:
            current = path.stat().st_ino
        except FileNotFoundError as e:
            raise UploadNotFound("the multipart upload was completed or aborted") from e
        if os.fstat(fd).st_ino != current:
            raise UploadNotFound("the multipart upload was completed meanwhile")
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def make_data_file(upload_dir: Path) -> None:
    """The upload's empty data file, made with the upload: part writers never create it, so
    one that comes after completing or aborting finds nothing to write into."""
    os.close(os.open(upload_dir / DATA_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def open_locked(path: Path) -> int:
    """``path`` open for reading and writing and locked exclusively, once the writes in
    progress are done (part writers lock only while they write, so this waits for no
    network). Checked once locked to be still the file under ``path`` (a concurrent
    completion renames the data file onto its key): :class:`FileNotFoundError` when it is
    gone or another."""
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_ino != path.stat().st_ino:
            raise FileNotFoundError(errno.ENOENT, "the data file was renamed away", str(path))
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def locked_data_file(upload_dir: Path) -> Iterator[int]:
    """The upload's data file, open for reading and writing, locked against part writers
    (once the writes in progress are done): :class:`UploadNotFound` when the upload was
    completed or aborted meanwhile."""
    try:
        fd = open_locked(upload_dir / DATA_FILE)
    except FileNotFoundError as e:
        raise UploadNotFound("the multipart upload was completed or aborted meanwhile") from e
    try:
        yield fd
    finally:
        os.close(fd)


def read_in_place_sidecar(
    path: Path, data: os.stat_result | None
) -> tuple[Sidecar, int, str | None] | None:
    """An in-place part's sidecar, offset and write id, if it describes a stretch of this
    data file."""
    raw = read_json(path)
    if raw is None or data is None or "offset" not in raw:
        return None
    try:
        sidecar = Sidecar(str(raw["etag"]), int(raw["size"]), int(raw["inode"]))
        offset = int(raw["offset"])
    except (KeyError, TypeError, ValueError):
        return None
    write = raw.get("write")
    if sidecar.inode != data.st_ino or offset < 0 or sidecar.size < 0:
        return None
    if sidecar.size and offset + sidecar.size > data.st_size:  # an empty part lies anywhere
        return None
    return sidecar, offset, write if isinstance(write, str) else None


def hash_stretch(fd: int, offset: int, size: int, whole: hashlib._Hash) -> None:
    """Feed ``whole`` the bytes of ``fd`` at ``[offset, offset + size)``. A file shorter than
    that raises :class:`StorageError`."""
    for chunk in stretch_chunks(fd, offset, size):
        whole.update(chunk)


def stretch_chunks(fd: int, offset: int, size: int) -> Iterator[bytes]:
    """The bytes of ``fd`` at ``[offset, offset + size)``, a buffer at a time; a file
    shorter than that raises :class:`StorageError`."""
    done = 0
    while done < size:
        chunk = os.pread(fd, min(COPY_BUFFER_SIZE, size - done), offset + done)
        if not chunk:
            raise StorageError("a part's bytes are missing from the upload's data file")
        yield chunk
        done += len(chunk)


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
