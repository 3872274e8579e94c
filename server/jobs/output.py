"""A job's result streamed into object storage as a multipart upload.

:class:`MultipartWriter` is the file the codec writes to: it keeps at most one part in its
buffer, hands each full part to a background thread that uploads it while the codec goes on
(so at most one more part is in flight), and publishes the object only in :meth:`complete`.
Anything else (an error, a cancel, forgetting to complete) aborts the upload: no half object
is ever visible under the result key, and no parts are left behind.

Memory is about two parts (the one filling and the one uploading) whatever the object's size:
a full part is copied for the uploader only once the part before it is stored.

The multipart upload is only made when a first part is full: a result smaller than a part
(a short secret's patch, most extracted payloads) is stored by one ``put_bytes`` in
:meth:`~MultipartWriter.complete`, two storage round trips and a reassembly fewer on the path
every encode and decode waits for.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import math
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Final, Self

from server.integrations.storage import (
    MAX_PARTS,
    ObjectInfo,
    ObjectStore,
    StorageError,
)

__all__ = ["RESULT_PART_SIZE_BYTES", "MultipartWriter", "OutputClosed", "part_size_for"]

log = logging.getLogger(__name__)

UPLOAD_THREAD_NAME = "part-upload"
MiB: Final = 1 << 20
RESULT_PART_SIZE_BYTES: Final = 8 * MiB
"""A job result's parts. A writer holds two parts at once (the one filling and the one
uploading), so this bounds a worker's memory for any result size: 16 MiB. S3 takes parts of
5 MiB and up; 8 MiB parts still write 80 GB in :data:`~server.integrations.storage.MAX_PARTS`
parts (:func:`part_size_for` grows them past that)."""


class OutputClosed(ValueError):
    """A write to an output that was already completed or aborted."""


class _State(enum.Enum):
    OPEN = "open"
    COMPLETED = "completed"
    ABORTED = "aborted"


def part_size_for(total_bytes: int, preferred: int) -> int:
    """``preferred``, or bigger when ``total_bytes`` would otherwise need too many parts."""
    needed = math.ceil(total_bytes / MAX_PARTS) if total_bytes > 0 else 0
    return max(preferred, needed)


class MultipartWriter:
    """A write-only file over a new multipart upload of ``key``.

    Use it as a context manager and call :meth:`complete` inside: leaving the block without
    completing (an exception included) aborts the upload.
    """

    def __init__(self, store: ObjectStore, key: str, *, content_type: str, part_size: int) -> None:
        if part_size <= 0:
            raise ValueError(f"part_size must be positive, got {part_size}")
        self._store = store
        self._key = key
        self._content_type = content_type
        self._part_size = part_size
        self._buffer = bytearray()
        self._parts: list[tuple[int, str]] = []
        self._in_flight: Future[str] | None = None
        self._digest = hashlib.sha256()
        self._size = 0
        self._state = _State.OPEN
        self._upload_id: str | None = None
        """Made with the first full part (see the module's docstring)."""
        self._uploader = ThreadPoolExecutor(max_workers=1, thread_name_prefix=UPLOAD_THREAD_NAME)

    @property
    def key(self) -> str:
        return self._key

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the bytes written so far."""
        return self._digest.hexdigest()

    @property
    def parts(self) -> int:
        """Parts handed to storage so far."""
        return len(self._parts) + (self._in_flight is not None)

    # -- writing ---------------------------------------------------------------------------

    def writable(self) -> bool:
        return self._state is _State.OPEN

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Buffer ``data``; every full part goes to storage. Returns ``len(data)``."""
        self._check_open()
        view = memoryview(data).cast("B")
        self._digest.update(view)
        self._size += len(view)
        self._buffer += view
        while len(self._buffer) >= self._part_size:
            self._settle()  # before the copy: the last part is freed before the next is made
            with memoryview(self._buffer) as whole:
                part = bytes(whole[: self._part_size])  # one copy, handed to the uploader
            del self._buffer[: self._part_size]
            self._ship(part)
        return len(view)

    def flush(self) -> None:
        """Nothing to do: parts go to storage when full, the rest in :meth:`complete`."""

    def complete(self) -> ObjectInfo:
        """Upload the last part and publish the object under the key (a result smaller than
        a part: store it in one request)."""
        self._check_open()
        self._settle()
        if self._upload_id is None:
            info = self._store.put_bytes(self._key, bytes(self._buffer), self._content_type)
            self._buffer.clear()
        else:
            if self._buffer or not self._parts:
                self._ship(bytes(self._buffer))
                self._buffer.clear()
            self._settle()
            info = self._store.complete_multipart(self._key, self._upload_id, self._parts)
        self._state = _State.COMPLETED
        self._uploader.shutdown(wait=True)
        return info

    def abort(self) -> None:
        """Drop the upload and its parts (idempotent; never raises for storage errors)."""
        if self._state is not _State.OPEN:
            return
        self._state = _State.ABORTED
        self._buffer = bytearray()
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            in_flight.cancel()
        self._uploader.shutdown(wait=True)
        if self._upload_id is None:
            return
        try:
            self._store.abort_multipart(self._key, self._upload_id)
        except StorageError:
            log.warning(
                "could not abort the multipart upload of %s; storage's lifecycle rule removes it",
                self._key,
                exc_info=True,
            )

    def close(self) -> None:
        """Abort unless completed."""
        self.abort()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()

    # -- internals -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._state is not _State.OPEN:
            raise OutputClosed(f"the output {self._key} is {self._state.value}")

    def _ship(self, part: bytes) -> None:
        """Start uploading ``part`` once the previous one is stored (one in flight at most)."""
        self._settle()
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise StorageError(f"the result would need more than {MAX_PARTS} parts")
        if self._upload_id is None:
            self._upload_id = self._store.create_multipart(self._key, self._content_type)
        self._in_flight = self._uploader.submit(
            self._store.upload_part, self._key, self._upload_id, number, part
        )

    def _settle(self) -> None:
        """Wait for the part in flight; its error (if any) is raised here."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            self._parts.append((len(self._parts) + 1, in_flight.result()))
