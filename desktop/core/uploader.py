"""Resumable, parallel multipart uploads straight to storage (the API only hands out URLs).

``Uploader.upload_file`` hashes the file, finds its saved session (same server, path, size,
mtime and SHA-256) or creates a new upload, asks the server which parts storage already
holds, and PUTs only the others, ``parallel_parts`` at a time. Each part is read from disk at
its offset as it is sent, a piece at a time, so memory stays at a few pieces whatever the
file's size. A failed part is retried alone with jittered exponential backoff; a 403 (the URL
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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import tenacity

from desktop.core.api import ApiClient
from desktop.core.api_errors import ApiError, ServerUnreachable
from desktop.core.parts import (
    PRESIGN_BATCH_SIZE,
    HttpPartTransport,
    PartBody,
    PartRejected,
    PartTransport,
    PartUrlExpired,
    UploadCancelled,
    UrlBook,
)
from desktop.core.retry import Backoff
from desktop.core.sessions import FileIdentity, SessionStore, UploadSession
from desktop.core.sources import (
    BytesSource,
    FileSource,
    Source,
    UploadProgress,
    file_identity,
    sha256_file,
)
from subtone.errors import SubtoneError
from subtone.protocol import (
    MAX_NAME_LENGTH,
    CompletePart,
    ObjectRef,
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
    "PartBody",
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
CANCEL_CHECK_SECONDS: Final = 0.2
DEFAULT_PART_RETRY: Final = Backoff(max_attempts=6, base_seconds=0.5, max_seconds=30.0)
DEFAULT_MEDIA_TYPE: Final = "application/octet-stream"
DEFAULT_UPLOAD_NAME: Final = "upload"


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

    @property
    def sessions_path(self) -> Path | None:
        """The file the upload sessions are kept in (``None``: they are not kept)."""
        return self._store.path if self._store is not None else None

    def upload_file(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        media_type: str = DEFAULT_MEDIA_TYPE,
        progress: UploadProgress | None = None,
        hash_progress: UploadProgress | None = None,
        cancel: threading.Event | None = None,
        sha256: str | None = None,
    ) -> UploadResult:
        """Upload a file, resuming its saved session when there is one. ``sha256``: the
        file's, known to the caller that wrote it (it is then not read to hash it; the server
        checks it when the upload completes)."""
        identity = file_identity(path, progress=hash_progress, cancel=cancel, sha256=sha256)
        if identity.size == 0:
            raise SubtoneError(f"{Path(path).name} is empty.", code="empty_file")
        source = FileSource(identity)
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
            BytesSource(data),
            identity=None,
            sha256=hashlib.sha256(data).hexdigest(),
            name=_clean_name(name),
            media_type=media_type,
            progress=progress,
            cancel=cancel,
        )

    # Sessions --------------------------------------------------------------------------

    def has_session_for(self, identity: FileIdentity) -> bool:
        """Whether a session is saved for exactly this file on this server: the path, size,
        modification time and SHA-256 it had when it was first sent."""
        return (
            self._store is not None
            and self._store.find(self._client.base_url, identity) is not None
        )

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
        source: Source,
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
            plan = self._new_upload(source, identity, sha256, name, media_type)
        missing = [n for n in range(1, plan.part_count + 1) if n not in held]
        etags, sent_bytes = self._send_parts(source, plan, held, missing, report, cancel)
        if isinstance(source, FileSource):
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

    def _new_upload(
        self,
        source: Source,
        identity: FileIdentity | None,
        sha256: str,
        name: str,
        media_type: str,
    ) -> _Plan:
        """Create the upload on the server (and its session here); returns its plan."""
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
        return plan

    def _send_parts(
        self,
        source: Source,
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
        book = UrlBook(self._client, plan.upload_id, missing, self._clock)
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
                        etags[number] = future.result()
                    except _Halted:
                        continue
                    except Exception as e:  # the first failure stops the upload
                        failure = failure or e
                        halt.set()
                        continue
                    length = self._stored(plan, number, etags[number])
                    done, sent = done + length, sent + length
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

    def _stored(self, plan: _Plan, number: int, etag: str) -> int:
        """Remember a stored part; returns its length."""
        if self._store is not None:
            self._store.record_part(plan.upload_id, number, etag)
        return plan.span(number)[1]

    def _send_part(
        self, book: UrlBook, source: Source, plan: _Plan, number: int, halt: threading.Event
    ) -> str:
        """One part, retried alone: backoff on faults, a fresh URL on 403 (at once, the first
        time); a part refused for good is raised as it is."""
        offset, length = plan.span(number)

        def put() -> str:
            if halt.is_set():
                raise _Halted()
            try:
                etag = self._transport.put(book.url(number), source.body(offset, length))
            except PartUrlExpired:
                book.forget(number)
                raise
            book.sent(number)
            return etag

        def pause(seconds: float) -> None:
            if halt.wait(seconds):
                raise _Halted()

        def report(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            log.info("part %d failed (try %d), retrying: %s", number, state.attempt_number, error)

        retrying = self._retry.retrying(
            retry=_part_retryable, sleep=pause, wait=self._part_wait, before_sleep=report
        )
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
