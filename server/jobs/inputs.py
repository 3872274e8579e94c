"""A job's inputs: found, checked and streamed from storage.

Before any work the worker checks that every input still exists, belongs to the job's tenant
and has the size its record says (:func:`load_input`). Inputs are then read as streams
(:class:`InputStream`) that hash what they deliver, so the checksum the client announced is
verified on the bytes the job really used (:meth:`InputStream.verify`), at no extra read for
an LSB plane (the codec reads it whole anyway).
"""

from __future__ import annotations

import hashlib
import io
from types import TracebackType
from typing import BinaryIO, Final, Self

from server.integrations.storage import ObjectNotFound, ObjectReader, ObjectStore
from server.jobs.repository import JobRecord
from server.uploads.repository import ObjectRecord, UploadRepository
from subtone.errors import SubtoneError
from subtone.stego import plane

__all__ = [
    "CHECKSUM_MISMATCH",
    "INPUT_MISMATCH",
    "INPUT_MISSING",
    "SECRET_TOO_LARGE",
    "InputError",
    "InputStream",
    "check_secret_size",
    "load_input",
    "read_small",
]

INPUT_MISSING: Final = "input_missing"
INPUT_MISMATCH: Final = "input_mismatch"
CHECKSUM_MISMATCH: Final = "checksum_mismatch"
SECRET_TOO_LARGE: Final = "secret_too_large"  # noqa: S105 - an error code

MiB: Final = 1 << 20
READ_BUFFER_BYTES: Final = 1 * MiB
"""Read-ahead over a storage stream (what one ranged GET chunk holds)."""
DRAIN_CHUNK_BYTES: Final = 1 * MiB


class InputError(SubtoneError):
    """An input the job cannot use: gone, changed, or not what was announced."""

    status = 422


def load_input(
    record: JobRecord, name: str, uploads: UploadRepository, store: ObjectStore
) -> ObjectRecord:
    """The input ``name`` of the job, checked to exist in the tenant's records and storage."""
    object_id = record.inputs.get(name)
    found = uploads.find_object(object_id) if object_id else None
    if found is None or found.tenant != record.tenant:
        raise InputError(f"The job's {name} no longer exists; upload it again.", code=INPUT_MISSING)
    try:
        stored = store.head(found.key)
    except ObjectNotFound as e:
        raise InputError(
            f"The job's {name} is no longer in storage; upload it again.", code=INPUT_MISSING
        ) from e
    if stored.size != found.size:
        raise InputError(
            f"The stored {name} has {stored.size:,} bytes, not the {found.size:,} uploaded.",
            code=INPUT_MISMATCH,
        )
    return found


def check_secret_size(obj: ObjectRecord, name: str, limit: int) -> None:
    if obj.size > limit:
        raise InputError(
            f"The {name} has {obj.size:,} bytes; at most {limit:,} can be hidden.",
            code=SECRET_TOO_LARGE,
        )


def read_small(store: ObjectStore, obj: ObjectRecord, name: str, limit: int) -> bytes:
    """The whole object (at most ``limit`` bytes), its checksum verified."""
    check_secret_size(obj, name, limit)
    with InputStream(store, obj, name) as source:
        data = source.stream.read(limit + 1)
        source.verify()
    return data


class _HashingReader(io.RawIOBase):
    """Counts and hashes the bytes read since the last rewind to 0 (the only seek allowed)."""

    def __init__(self, raw: ObjectReader) -> None:
        super().__init__()
        self._raw = raw
        self._digest = hashlib.sha256()
        self._position = 0

    @property
    def position(self) -> int:
        return self._position

    def hexdigest(self) -> str:
        return self._digest.hexdigest()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = {io.SEEK_SET: offset, io.SEEK_CUR: self._position + offset}.get(whence)
        if target == self._position:
            return self._position
        if target != 0:
            raise io.UnsupportedOperation("an input stream only rewinds to its start")
        self._raw.seek(0)
        self._digest = hashlib.sha256()
        self._position = 0
        return 0

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = self._raw.readinto(buffer)
        self._digest.update(memoryview(buffer)[:count])
        self._position += count
        return count

    def close(self) -> None:
        self._raw.close()
        super().close()


class InputStream:
    """An input object as a buffered, rewindable stream that checks its own checksum."""

    def __init__(self, store: ObjectStore, obj: ObjectRecord, name: str) -> None:
        self._obj = obj
        self._name = name
        self._store = store
        try:
            reader = store.open_reader(obj.key)
        except ObjectNotFound as e:
            raise InputError(
                f"The job's {name} is no longer in storage; upload it again.", code=INPUT_MISSING
            ) from e
        self._raw = _HashingReader(reader)
        self.stream: BinaryIO = io.BufferedReader(self._raw, buffer_size=READ_BUFFER_BYTES)

    def read_plane_header(self) -> plane.PlaneHeader:
        """The LSB plane's header, checked against the object's size; the stream is left at
        the first window."""
        return plane.read_plane_header(self.stream, self._obj.size)

    def verify(self) -> None:
        """Read what is left, then check the size and the announced SHA-256."""
        while self.stream.read(DRAIN_CHUNK_BYTES):
            pass
        if self._raw.position != self._obj.size:
            raise InputError(
                f"The {self._name} changed while the job read it.", code=INPUT_MISMATCH
            )
        if self._obj.sha256 is not None and self._raw.hexdigest() != self._obj.sha256:
            self._store.delete(self._obj.key)  # refused for good: no later job may use it
            raise InputError(
                f"The {self._name} does not match the checksum given when it was uploaded; "
                "upload it again.",
                code=CHECKSUM_MISMATCH,
            )

    def close(self) -> None:
        self.stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
