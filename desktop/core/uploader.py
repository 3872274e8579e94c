"""Resumable, parallel multipart uploads straight to storage (the API only hands out URLs).

``Uploader.upload_file`` hashes the file, finds its saved session (same server, path, size,
mtime and SHA-256) or creates a new upload, asks the server which parts storage already
holds, and PUTs only the others, ``parallel_parts`` at a time. Each part is read from disk at
its offset when it is sent, so memory stays at ``parallel_parts`` parts whatever the file's
size. A failed part is retried alone with jittered exponential backoff; a 403 (the URL
expired) gets a fresh URL. Progress and a cancel token (a ``threading.Event``, checked
between parts) make it easy to drive from a CLI, a Qt worker or a test.

Part PUTs go through a :class:`PartTransport`: :class:`HttpPartTransport` in real use, a fake
in tests.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import logging
import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Protocol

import httpx
import tenacity

from desktop.core.api import ApiClient, ApiError, ServerUnreachable
from desktop.core.retry import Backoff
from desktop.core.sessions import FileIdentity, SessionStore, UploadSession
from subtone.errors import SubtoneError
from subtone.protocol import (
    MAX_NAME_LENGTH,
    CompletePart,
    ObjectRef,
    PresignedPart,
    UploadCreate,
    UploadState,
    UploadStatus,
)

__all__ = [
    "DEFAULT_MEDIA_TYPE",
    "DEFAULT_PARALLEL_PARTS",
    "DEFAULT_PART_RETRY",
    "MAX_PARALLEL_PARTS",
    "MAX_PART_SIZE",
    "MIN_PART_SIZE",
    "PRESIGN_BATCH_SIZE",
    "HttpPartTransport",
    "PartRejected",
    "PartTransport",
    "PartUrlExpired",
    "UploadCancelled",
    "UploadProgress",
    "UploadResult",
    "Uploader",
    "file_identity",
    "sha256_file",
]

log = logging.getLogger(__name__)

MiB: Final = 1024 * 1024
GiB: Final = 1024 * MiB
DEFAULT_PARALLEL_PARTS: Final = 4
MAX_PARALLEL_PARTS: Final = 32
MIN_PART_SIZE: Final = 5 * MiB
MAX_PART_SIZE: Final = 5 * GiB
"""S3's part limits: a part size asked for is kept within them (the server does the same)."""
PRESIGN_BATCH_SIZE: Final = 100
"""URLs asked for at once (the API's limit per call)."""
URL_EXPIRY_MARGIN: Final = timedelta(seconds=30)
"""A URL this close to its expiry is replaced before use."""
HASH_CHUNK_BYTES: Final = 4 * MiB
PART_TIMEOUT_SECONDS: Final = 120.0
CANCEL_CHECK_SECONDS: Final = 0.2
DEFAULT_PART_RETRY: Final = Backoff(max_attempts=6, base_seconds=0.5, max_seconds=30.0)
DEFAULT_MEDIA_TYPE: Final = "application/octet-stream"
DEFAULT_UPLOAD_NAME: Final = "upload"
_RETRYABLE_PART_STATUSES: Final = frozenset({408, 429})

UploadProgress = Callable[[int, int], None]
"""``(bytes stored, bytes in all)``; called from the thread that called the upload."""


class PartRejected(SubtoneError):
    """Storage refused a part, or the PUT did not get through."""

    code = "part_rejected"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = True,
        code: str | None = None,
    ) -> None:
        super().__init__(message, status=status or 502, code=code)
        self.http_status = status
        self.retryable = retryable


class PartUrlExpired(PartRejected):
    """The part's pre-signed URL is no longer valid (403): ask for a fresh one."""

    code = "url_expired"

    def __init__(self, message: str = "The part's upload link has expired.") -> None:
        super().__init__(message, status=403, retryable=True)


class UploadCancelled(SubtoneError):
    """The cancel token was set; the upload can be resumed later."""

    code = "cancelled"
    status = 499


class PartTransport(Protocol):
    """PUTs one part's bytes to a pre-signed URL and returns the ``ETag`` storage gave it.

    Raises :class:`PartUrlExpired` on 403 and :class:`PartRejected` on any other failure
    (``retryable`` tells a passing fault from a refusal).
    """

    def put(self, url: str, data: bytes) -> str: ...


class HttpPartTransport:
    """:class:`PartTransport` over httpx; no API token is ever sent to storage."""

    def __init__(
        self,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = PART_TIMEOUT_SECONDS,
    ) -> None:
        self._http = httpx.Client(transport=transport, timeout=timeout)

    def put(self, url: str, data: bytes) -> str:
        try:
            response = self._http.put(url, content=data)
        except httpx.TransportError as e:
            raise PartRejected(f"The part did not reach storage: {e}.", retryable=True) from e
        status = response.status_code
        if status == httpx.codes.FORBIDDEN:
            raise PartUrlExpired()
        if not response.is_success:
            error = ApiError.from_response(response)
            if status == httpx.codes.INSUFFICIENT_STORAGE:  # full: retrying will not help
                raise PartRejected(error.message, status=status, retryable=False, code=error.code)
            retryable = status >= 500 or status in _RETRYABLE_PART_STATUSES
            raise PartRejected(
                f"Storage refused a part: {error.message}", status=status, retryable=retryable
            )
        etag: str | None = response.headers.get("etag")
        if not etag:
            raise PartRejected("Storage accepted a part but gave no ETag.", retryable=False)
        return etag

    def close(self) -> None:
        self._http.close()


@dataclass(frozen=True)
class UploadResult:
    object: ObjectRef
    upload_id: str
    parts_sent: int
    """Parts PUT by this call (the others were already stored)."""
    bytes_sent: int
    resumed: bool
    """An earlier upload of the same file was continued."""
    reused: bool
    """An earlier, completed upload of the same file was reused: nothing was sent."""
    parts_total: int = 0
    """Parts the object is made of."""


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
) -> FileIdentity:
    """The file's resolved path, size, mtime and SHA-256."""
    resolved = Path(path).resolve()
    try:
        before = resolved.stat()
        sha256 = sha256_file(resolved, progress=progress, cancel=cancel)
        after = resolved.stat()
    except OSError as e:
        raise SubtoneError(
            f"Cannot read {resolved.name}: {e.strerror}.", code="unreadable_file"
        ) from e
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        raise _file_changed(resolved)
    return FileIdentity(str(resolved), after.st_size, after.st_mtime_ns, sha256)


def _file_changed(path: Path) -> SubtoneError:
    return SubtoneError(
        f"{path.name} changed while it was being uploaded; try again once it is finished.",
        code="file_changed",
    )


class _Source(Protocol):
    size: int

    def read(self, offset: int, length: int) -> bytes: ...


class _FileSource:
    def __init__(self, identity: FileIdentity) -> None:
        self.path = Path(identity.path)
        self.size = identity.size
        self._identity = identity

    def read(self, offset: int, length: int) -> bytes:
        try:
            with self.path.open("rb") as f:
                f.seek(offset)
                data = f.read(length)
        except OSError as e:
            raise SubtoneError(
                f"Cannot read {self.path.name}: {e.strerror}.", code="unreadable_file"
            ) from e
        if len(data) != length:
            raise _file_changed(self.path)
        return data

    def check_unchanged(self) -> None:
        try:
            stat = self.path.stat()
        except OSError as e:
            raise _file_changed(self.path) from e
        if (stat.st_size, stat.st_mtime_ns) != (self._identity.size, self._identity.mtime_ns):
            raise _file_changed(self.path)


class _BytesSource:
    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self.size = len(data)

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self._data[offset : offset + length])


@dataclass(frozen=True)
class _Plan:
    upload_id: str
    size: int
    part_size: int
    part_count: int

    def span(self, part_number: int) -> tuple[int, int]:
        """``(offset, length)`` of a part."""
        offset = (part_number - 1) * self.part_size
        return offset, min(self.part_size, self.size - offset)


class _UrlBook:
    """Pre-signed URLs, fetched in batches just ahead of use and renewed before they expire."""

    def __init__(
        self,
        client: ApiClient,
        upload_id: str,
        order: Sequence[int],
        clock: Callable[[], datetime],
    ) -> None:
        self._client = client
        self._upload_id = upload_id
        self._order = list(order)
        self._index = {n: i for i, n in enumerate(self._order)}
        self._clock = clock
        self._urls: dict[int, PresignedPart] = {}
        self._sent: set[int] = set()
        self._lock = threading.Lock()

    def _fresh(self, part_number: int) -> bool:
        part = self._urls.get(part_number)
        return part is not None and part.expires_at - URL_EXPIRY_MARGIN > self._clock()

    def url(self, part_number: int) -> str:
        with self._lock:
            if not self._fresh(part_number):
                start = self._index.get(part_number, len(self._order))
                batch = [part_number]
                for n in self._order[start + 1 :]:
                    if len(batch) >= PRESIGN_BATCH_SIZE:
                        break
                    if n not in self._sent and not self._fresh(n):
                        batch.append(n)
                for part in self._client.presign_parts(self._upload_id, batch).parts:
                    self._urls[part.part_number] = part
            found = self._urls.get(part_number)
        if found is None:
            raise ApiError(
                f"The server gave no upload link for part {part_number}.",
                code="bad_response",
                status=200,
            )
        return found.url

    def forget(self, part_number: int) -> None:
        """Drop a URL storage refused, so the next use asks for a fresh one."""
        with self._lock:
            self._urls.pop(part_number, None)

    def sent(self, part_number: int) -> None:
        """The part is stored: its URL is no longer needed, nor worth renewing."""
        with self._lock:
            self._sent.add(part_number)
            self._urls.pop(part_number, None)


class _Halted(Exception):
    """A part not sent because the upload is stopping."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Uploader:
    """Sends files through the pass-by-reference protocol. Close it (or use ``with``)."""

    def __init__(
        self,
        client: ApiClient,
        *,
        store: SessionStore | None = None,
        transport: PartTransport | None = None,
        parallel_parts: int = DEFAULT_PARALLEL_PARTS,
        part_size: int | None = None,
        retry: Backoff = DEFAULT_PART_RETRY,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        """``store`` keeps sessions across runs (``None``: nothing is saved, so every call
        starts a new upload). ``transport`` defaults to :class:`HttpPartTransport`, owned and
        closed by this uploader. ``part_size`` (bytes) is asked of the server for new
        uploads (``None``: the server's default); the server has the last word, and an upload
        being resumed keeps the part size it was planned with."""
        if not 1 <= parallel_parts <= MAX_PARALLEL_PARTS:
            raise ValueError(f"parallel_parts must be 1..{MAX_PARALLEL_PARTS}")
        if part_size is not None and not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise ValueError(f"part_size must be {MIN_PART_SIZE}..{MAX_PART_SIZE} bytes")
        self._client = client
        self._store = store
        self._owned: HttpPartTransport | None = None
        if transport is None:
            self._owned = HttpPartTransport()
            transport = self._owned
        self._transport = transport
        self._parallel = parallel_parts
        self._part_size = part_size
        self._retry = retry
        self._retry_wait = retry.wait()
        self._clock = clock

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()

    def __enter__(self) -> Uploader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Public ----------------------------------------------------------------------------

    def upload_file(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        media_type: str = DEFAULT_MEDIA_TYPE,
        progress: UploadProgress | None = None,
        hash_progress: UploadProgress | None = None,
        cancel: threading.Event | None = None,
    ) -> UploadResult:
        """Upload a file, resuming its saved session when there is one."""
        identity = file_identity(path, progress=hash_progress, cancel=cancel)
        if identity.size == 0:
            raise SubtoneError(f"{Path(path).name} is empty.", code="empty_file")
        source = _FileSource(identity)
        upload_name = _clean_name(name if name is not None else Path(identity.path).name)
        return self._upload(
            source,
            identity=identity,
            sha256=identity.sha256,
            name=upload_name,
            media_type=media_type,
            progress=progress,
            cancel=cancel,
        )

    def upload_bytes(
        self,
        data: bytes,
        *,
        name: str,
        media_type: str = DEFAULT_MEDIA_TYPE,
        progress: UploadProgress | None = None,
        cancel: threading.Event | None = None,
    ) -> UploadResult:
        """Upload bytes held in memory (a small payload); no session is saved."""
        if not data:
            raise SubtoneError("There is nothing to upload.", code="empty_file")
        return self._upload(
            _BytesSource(data),
            identity=None,
            sha256=hashlib.sha256(data).hexdigest(),
            name=_clean_name(name),
            media_type=media_type,
            progress=progress,
            cancel=cancel,
        )

    # Sessions --------------------------------------------------------------------------

    def _resume(self, identity: FileIdentity) -> tuple[UploadSession, UploadStatus] | None:
        """The saved session for this file and its state on the server, if it can go on."""
        if self._store is None:
            return None
        session = self._store.find(self._client.base_url, identity)
        if session is None:
            return None
        try:
            status = self._client.upload_status(session.upload_id)
        except ApiError as e:
            if e.status not in (404, 410):
                raise
            log.info("upload %s is gone from the server; starting anew", session.upload_id)
            self._store.forget(session.upload_id)
            return None
        usable = (
            status.size == identity.size
            and status.sha256 == identity.sha256
            and status.part_count == _part_count(identity.size, status.part_size)
            and (
                status.state is UploadState.UPLOADING
                or (status.state is UploadState.COMPLETED and status.object is not None)
            )
        )
        if not usable:
            self._store.forget(session.upload_id)
            return None
        return session, status

    # The upload ------------------------------------------------------------------------

    def _upload(
        self,
        source: _Source,
        *,
        identity: FileIdentity | None,
        sha256: str,
        name: str,
        media_type: str,
        progress: UploadProgress | None,
        cancel: threading.Event | None,
    ) -> UploadResult:
        report = progress or _ignore
        resumed = self._resume(identity) if identity is not None else None
        held: dict[int, str] = {}
        if resumed is not None:
            session, status = resumed
            if status.object is not None and status.state is UploadState.COMPLETED:
                report(source.size, source.size)
                if self._store is not None:
                    self._store.mark_completed(session.upload_id, status.object.id)
                return UploadResult(
                    status.object, session.upload_id, 0, 0, True, True, status.part_count
                )
            plan = _Plan(session.upload_id, source.size, status.part_size, status.part_count)
            for part in status.parts:
                if (
                    1 <= part.part_number <= plan.part_count
                    and part.size == plan.span(part.part_number)[1]
                ):
                    held[part.part_number] = part.etag
        else:
            created = self._client.create_upload(
                UploadCreate(
                    name=name,
                    size=source.size,
                    sha256=sha256,
                    media_type=media_type,
                    part_size=self._part_size,
                )
            )
            plan = _Plan(created.upload_id, source.size, created.part_size, created.part_count)
            if plan.part_count != _part_count(source.size, plan.part_size):
                raise ApiError(
                    "The server planned an upload that does not match the file's size.",
                    code="bad_response",
                    status=201,
                )
            if self._store is not None and identity is not None:
                self._store.save(
                    UploadSession(
                        upload_id=plan.upload_id,
                        server=self._client.base_url,
                        file=identity,
                        part_size=plan.part_size,
                        part_count=plan.part_count,
                    )
                )
        missing = [n for n in range(1, plan.part_count + 1) if n not in held]
        etags, sent_bytes = self._send_parts(source, plan, held, missing, report, cancel)
        if isinstance(source, _FileSource):
            source.check_unchanged()
        parts = [CompletePart(part_number=n, etag=etags[n]) for n in sorted(etags)]
        ref = self._client.complete_upload(plan.upload_id, parts)
        if self._store is not None and identity is not None:
            self._store.mark_completed(plan.upload_id, ref.id)
        return UploadResult(
            ref,
            plan.upload_id,
            len(missing),
            sent_bytes,
            resumed is not None,
            False,
            plan.part_count,
        )

    def _send_parts(
        self,
        source: _Source,
        plan: _Plan,
        held: dict[int, str],
        missing: list[int],
        report: UploadProgress,
        cancel: threading.Event | None,
    ) -> tuple[dict[int, str], int]:
        """PUT the missing parts, ``parallel_parts`` at a time; returns every part's ETag."""
        etags = dict(held)
        done = sum(plan.span(n)[1] for n in held)
        sent = 0
        report(done, plan.size)
        book = _UrlBook(self._client, plan.upload_id, missing, self._clock)
        halt = threading.Event()
        queue = iter(missing)
        pending: dict[cf.Future[str], int] = {}
        failure: BaseException | None = None
        pool = cf.ThreadPoolExecutor(max_workers=self._parallel, thread_name_prefix="part")
        try:
            while True:
                if cancel is not None and cancel.is_set():
                    halt.set()
                while len(pending) < self._parallel and not halt.is_set():
                    number = next(queue, None)
                    if number is None:
                        break
                    pending[pool.submit(self._send_part, book, source, plan, number, halt)] = number
                if not pending:
                    break
                finished, _ = cf.wait(
                    pending, timeout=CANCEL_CHECK_SECONDS, return_when=cf.FIRST_COMPLETED
                )
                for future in finished:
                    number = pending.pop(future)
                    try:
                        etag = future.result()
                    except _Halted:
                        continue
                    except Exception as e:  # the first failure stops the upload
                        if failure is None:
                            failure = e
                            halt.set()
                        continue
                    etags[number] = etag
                    if self._store is not None:
                        self._store.record_part(plan.upload_id, number, etag)
                    length = plan.span(number)[1]
                    done += length
                    sent += length
                    report(done, plan.size)
        finally:
            halt.set()
            pool.shutdown(wait=True, cancel_futures=True)
        if failure is not None:
            raise failure
        if len(etags) < plan.part_count:
            raise UploadCancelled(
                f"The upload was paused with {done:,} of {plan.size:,} bytes stored; "
                "run it again to resume."
            )
        return etags, sent

    def _send_part(
        self, book: _UrlBook, source: _Source, plan: _Plan, number: int, halt: threading.Event
    ) -> str:
        """One part, retried alone: backoff on faults, a fresh URL on 403 (at once, the first
        time); a part refused for good is raised as it is."""
        offset, length = plan.span(number)

        def put() -> str:
            if halt.is_set():
                raise _Halted()
            try:
                etag = self._transport.put(book.url(number), source.read(offset, length))
            except PartUrlExpired:
                book.forget(number)
                raise
            book.sent(number)
            return etag

        def pause(seconds: float) -> None:
            if halt.wait(seconds):
                raise _Halted()

        retrying = self._retry.retrying(retry=_part_retryable, sleep=pause, wait=self._part_wait)
        try:
            return retrying(put)
        except (PartRejected, ServerUnreachable) as error:
            if isinstance(error, PartRejected) and not error.retryable:
                raise
            tries = retrying.statistics.get("attempt_number", self._retry.max_attempts)
            raise SubtoneError(
                f"Part {number} failed {tries} times; the last error: {error.message}",
                code=error.code,
                status=error.status,
            ) from error

    def _part_wait(self, state: tenacity.RetryCallState) -> float:
        outcome = state.outcome
        expired = outcome is not None and isinstance(outcome.exception(), PartUrlExpired)
        if expired and state.attempt_number == 1:
            return 0.0  # a fresh URL is all it takes
        return float(self._retry_wait(state))


def _part_retryable(error: BaseException) -> bool:
    if isinstance(error, PartRejected):
        return error.retryable
    return isinstance(error, ServerUnreachable)


def _part_count(size: int, part_size: int) -> int:
    return max(1, math.ceil(size / part_size)) if part_size > 0 else -1


def _clean_name(name: str) -> str:
    cleaned = "".join(c if c.isprintable() else "_" for c in name.replace("\\", "/").split("/")[-1])
    return cleaned[:MAX_NAME_LENGTH].strip() or DEFAULT_UPLOAD_NAME


def _ignore(done: int, total: int) -> None:
    """A progress callback that does nothing."""
