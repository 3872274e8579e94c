"""One job, start to finish, independent of the queue that delivered it.

:func:`run` reloads the job, checks its inputs (existence, tenant, size, the LSB plane's
header, capacity), streams the plane from storage through the codec and the window engine
(Triton), streams the result back to storage (an embed's patch: the samples to flip; an
extract's payload), records it and marks the job succeeded. In the LSB mode the server never
receives audio: the client sends the LSB plane of its cover (:mod:`subtone.stego.plane`) and
applies the patch to its own copy (:mod:`subtone.stego.patch`). The robust mode's jobs
(:mod:`server.jobs.robust`) read the cover's working mix (16 kHz mono) instead, and give back
a residual the client adds to its cover.

It is safe to run twice: one run at a time holds the job's lease, a finished or cancelled
job is left alone, the result key and the result's object id are derived from the job id (a
second run overwrites the same object with the same bytes), and a result is only ever
published whole. A job found ``running`` by the run holding its lease was lost by its last
worker: it runs again, at most ``JOB_MAX_LOST_RUNS`` times, then fails ``worker_lost``.

Outcomes:

* success → the result object is recorded, the job ``succeeded``;
* the owner cancelled → no result, the job ``cancelled``;
* a transient error (storage, Triton or Redis unreachable) → the job is shown ``queued``
  again and the error is re-raised, so the queue retries it;
* the worker is shutting down → the same, with :class:`JobInterrupted`, to hand it back;
* a :class:`SubtoneError` → the job ``failed`` with its code and message, not retried;
* anything else → ``failed`` with ``internal_error``, the traceback in the log, not retried.

Neither the position key nor payload bytes are ever logged or stored.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import PurePosixPath
from typing import BinaryIO, Final, cast

import redis

from server.integrations.storage import ObjectStore, StorageUnavailable
from server.integrations.triton import TritonUnavailable
from server.jobs.inputs import InputStream, check_secret_size, load_input
from server.jobs.lease import JobLeases
from server.jobs.metrics import WorkerMetrics
from server.jobs.output import RESULT_PART_SIZE_BYTES, MultipartWriter, part_size_for
from server.jobs.progress import (
    DEFAULT_HEARTBEAT_SECONDS,
    DEFAULT_INTERVAL_SECONDS,
    JobCancelled,
    JobInterrupted,
    JobProgress,
)
from server.jobs.repository import JobRecord, JobRepository
from server.kit import logs
from server.kit.clock import utcnow
from server.settings import Settings
from server.uploads.repository import ObjectRecord, UploadRepository
from subtone.errors import SubtoneError
from subtone.protocol import JobKind
from subtone.robust import wire
from subtone.robust.engine import RobustEngine
from subtone.robust.wire import Mix, Residual
from subtone.stego import codec, layout, patch
from subtone.stego.engine import EmbedTask, ExtractTask, Flips, UInt8Array, WindowEngine
from subtone.stego.window import KEY_BYTES

__all__ = [
    "INTERNAL_ERROR",
    "INTERNAL_ERROR_MESSAGE",
    "INVALID_PARAMS",
    "MODE_UNAVAILABLE",
    "TRANSIENT_ERRORS",
    "JobCancelled",
    "JobInterrupted",
    "RunnerDeps",
    "error_code",
    "is_transient",
    "result_key",
    "result_object_id",
    "run",
]

log = logging.getLogger(__name__)

INTERNAL_ERROR: Final = "internal_error"
INTERNAL_ERROR_MESSAGE: Final = "The job failed unexpectedly; the operators have the details."
INVALID_PARAMS: Final = "invalid_params"
MODE_UNAVAILABLE: Final = "mode_unavailable"

PLANE: Final = "plane"
PAYLOAD: Final = "payload"
RESULT_FILE: Final = {
    JobKind.EMBED: "patch.bin",
    JobKind.EXTRACT: "payload.bin",
    JobKind.ROBUST_EMBED: "residual.bin",
    JobKind.ROBUST_EXTRACT: "payload.bin",
}
RESULT_SUFFIX: Final = {
    JobKind.EMBED: "-patch.bin",
    JobKind.EXTRACT: "-payload.bin",
    JobKind.ROBUST_EMBED: "-residual.bin",
    JobKind.ROBUST_EXTRACT: "-payload.bin",
}
RESULT_MEDIA_TYPE: Final = {
    JobKind.EMBED: patch.MEDIA_TYPE,
    JobKind.EXTRACT: "application/octet-stream",
    JobKind.ROBUST_EMBED: wire.RESIDUAL_MEDIA_TYPE,
    JobKind.ROBUST_EXTRACT: "application/octet-stream",
}
RESULT_ID_PREFIX: Final = "obj"
RESULT_ID_HEX_CHARS: Final = 32
RESULT_ID_LABEL: Final = b"subtone/result/"
K_POS_PARAM: Final = "k_pos"

SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
RETRIED: Final = "retried"
HANDED_BACK: Final = "handed_back"
"""The outcomes of a run, as ``subtone_worker_jobs`` counts them."""
IN: Final = "in"
OUT: Final = "out"

TRANSIENT_ERRORS: Final[tuple[type[BaseException], ...]] = (
    StorageUnavailable,
    TritonUnavailable,
    redis.ConnectionError,
    redis.TimeoutError,
)
"""Errors that say "try again later": the job is retried by the queue."""


@dataclass(frozen=True)
class RunnerDeps:
    """What a job needs, built once per worker."""

    jobs: JobRepository
    uploads: UploadRepository
    leases: JobLeases
    store: ObjectStore
    engine: WindowEngine
    settings: Settings
    robust: RobustEngine | None = None
    """The robust mode's engine (Triton's, like ``engine``); ``None``: robust jobs fail
    ``mode_unavailable``."""
    stopping: threading.Event = field(default_factory=threading.Event)
    """Set when the worker is shutting down: the running job is handed back."""
    progress_interval_seconds: float = DEFAULT_INTERVAL_SECONDS
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)


def is_transient(error: BaseException) -> bool:
    return isinstance(error, TRANSIENT_ERRORS)


def result_key(record: JobRecord) -> str:
    """The job's one result key: a second run overwrites, never duplicates."""
    return f"t/{record.tenant}/results/{record.id}/{RESULT_FILE[record.kind]}"


def result_object_id(job_id: str) -> str:
    """The job's one result object id, derived from the job id."""
    digest = hashlib.sha256(RESULT_ID_LABEL + job_id.encode()).hexdigest()
    return f"{RESULT_ID_PREFIX}_{digest[:RESULT_ID_HEX_CHARS]}"


def run(job_id: str, *, deps: RunnerDeps) -> None:
    """Run the job ``job_id`` (see the module's docstring for the outcomes).

    The job's lease is held throughout (:mod:`server.jobs.lease`): a second delivery of the
    same job waits for this one, then finds the job finished.
    """

    def settled() -> bool:
        record = deps.jobs.get(job_id)
        return record is None or record.state.finished

    # Bound before the lease is taken: its keeper thread logs in a copy of this context.
    with (
        logs.bound(job_id=job_id),
        deps.leases.hold(job_id, stopping=deps.stopping, finished=settled) as held,
    ):
        if held:
            _run_held(job_id, deps)
        else:
            log.info("job %s was finished by another delivery", job_id)


def _run_held(job_id: str, deps: RunnerDeps) -> None:
    record = deps.jobs.start(job_id, max_lost_runs=deps.settings.JOB_MAX_LOST_RUNS)
    if record is None:
        log.info("job %s is finished or cancelled: nothing to do", job_id)
        return
    # The message's trace id, else the job's (a message the reaper sent again has none).
    # Added to the context ``run`` bound, so the lease keeper's lines carry them too.
    logs.bind(trace_id=logs.current().trace_id or record.trace_id, tenant_id=record.tenant)
    _run_started(record, deps)


def _run_started(record: JobRecord, deps: RunnerDeps) -> None:
    job_id, kind, metrics = record.id, record.kind.value, deps.metrics
    started = time.monotonic()
    outcome = FAILED
    if record.attempts == 1 and not record.lost_runs:
        metrics.queue_wait.labels(kind).observe(
            max(0.0, (utcnow() - record.created_at).total_seconds())
        )
    if record.lost_runs:
        log.warning("job %s: its last run ended without a word (worker lost)", job_id)
    log.info("job %s (%s) started, attempt %d", job_id, record.kind.value, record.attempts)
    try:
        result, read = _execute(record, deps)
        deps.uploads.save_object(result)
        deps.jobs.succeed(job_id, result.id)
    except JobCancelled:
        outcome = CANCELLED
        log.info("job %s cancelled by its owner", job_id)
        deps.jobs.mark_cancelled(job_id)
    except JobInterrupted:
        outcome = HANDED_BACK
        log.info("job %s interrupted by the worker's shutdown: handing it back", job_id)
        deps.jobs.requeue(job_id)
        raise
    except TRANSIENT_ERRORS as e:
        outcome = RETRIED
        metrics.retries.labels(error_code(e)).inc()
        log.warning("job %s hit a transient error, to be retried: %s", job_id, e)
        deps.jobs.requeue(job_id)
        raise
    except SubtoneError as e:
        log.info("job %s failed: [%s] %s", job_id, e.code, e.message)
        deps.jobs.fail(job_id, e.code, e.message)
    except Exception:
        log.exception("job %s failed unexpectedly", job_id)
        deps.jobs.fail(job_id, INTERNAL_ERROR, INTERNAL_ERROR_MESSAGE)
    else:
        outcome = SUCCEEDED
        metrics.bytes_processed.labels(kind, IN).inc(read)
        metrics.bytes_processed.labels(kind, OUT).inc(result.size)
        log.info("job %s succeeded: %s (%d bytes)", job_id, result.id, result.size)
    finally:
        metrics.job_ended(kind, outcome, time.monotonic() - started)


def error_code(error: BaseException) -> str:
    """The code an error is counted under in the metrics (retries, dead letters): a
    :class:`SubtoneError`'s own, ``redis_unavailable`` for Redis, else its type's name."""
    if isinstance(error, SubtoneError):
        return error.code
    return "redis_unavailable" if isinstance(error, redis.RedisError) else type(error).__name__


class _BoundEngine:
    """``engine`` with each call made in the job's log context: the codec calls it from a
    thread pool of its own, where the job's context is not bound, and the Triton client
    reads the trace id from it."""

    def __init__(self, engine: WindowEngine, context: logs.LogContext) -> None:
        self._engine = engine
        self._context = context

    def embed(self, tasks: Sequence[EmbedTask]) -> Sequence[Flips]:
        with logs.bound(**asdict(self._context)):
            return self._engine.embed(tasks)

    def extract(self, tasks: Sequence[ExtractTask]) -> list[UInt8Array]:
        with logs.bound(**asdict(self._context)):
            return self._engine.extract(tasks)

    def close(self) -> None:
        """The worker's engine outlives the job: closing it is the worker's business."""


class _BoundRobustEngine:
    """``engine`` with each call made in the job's log context (the Triton client reads the
    trace id from it)."""

    def __init__(self, engine: RobustEngine, context: logs.LogContext) -> None:
        self._engine = engine
        self._context = context

    def robust_embed(self, mix: Mix, k_pos: bytes, payload: bytes) -> Residual:
        with logs.bound(**asdict(self._context)):
            return self._engine.robust_embed(mix, k_pos, payload)

    def robust_extract(self, mix: Mix, k_pos: bytes) -> bytes:
        with logs.bound(**asdict(self._context)):
            return self._engine.robust_extract(mix, k_pos)


def _execute(record: JobRecord, deps: RunnerDeps) -> tuple[ObjectRecord, int]:
    """The job's result, and the bytes of input read."""
    k_pos = _position_key(record)
    deps = replace(deps, engine=_BoundEngine(deps.engine, logs.current()))
    progress = JobProgress(
        deps.jobs,
        record.id,
        stopping=deps.stopping,
        interval_seconds=deps.progress_interval_seconds,
        heartbeat_seconds=deps.heartbeat_seconds,
    )
    with progress:
        if record.kind.robust:
            return _robust(record, k_pos, deps, progress)
        if record.kind is JobKind.EMBED:
            return _embed(record, k_pos, deps, progress)
        return _extract(record, k_pos, deps, progress)


def _position_key(record: JobRecord) -> bytes:
    try:
        k_pos = bytes.fromhex(record.params[K_POS_PARAM])
    except (KeyError, ValueError):
        k_pos = b""
    if len(k_pos) != KEY_BYTES:
        raise SubtoneError("The job has no valid position key.", code=INVALID_PARAMS)
    return k_pos


def _embed(
    record: JobRecord, k_pos: bytes, deps: RunnerDeps, progress: JobProgress
) -> tuple[ObjectRecord, int]:
    """The patch of an embed. The plane and the secret are both read as streams, the patch
    written as one (:class:`MultipartWriter`): memory does not grow with the secret."""
    settings, store = deps.settings, deps.store
    lsb = load_input(record, PLANE, deps.uploads, store)
    secret = load_input(record, PAYLOAD, deps.uploads, store)
    check_secret_size(secret, PAYLOAD, settings.MAX_SECRET_BYTES)
    with InputStream(store, lsb, PLANE) as source, InputStream(store, secret, PAYLOAD) as bits:
        header = source.read_plane_header()
        layout.choose_k(header.samples, secret.size)  # refuses an empty or too large secret
        key = result_key(record)
        with _result_writer(store, key, record.kind, lsb.size) as output:
            writer = patch.PatchWriter(cast(BinaryIO, output), header.samples)
            codec.embed_plane(
                source.stream,
                samples=header.samples,
                k_pos=k_pos,
                payload=codec.PayloadStream(bits.stream, secret.size),
                engine=deps.engine,
                on_window_flips=writer.window,
                progress=progress,
                concurrency=settings.WINDOWS_IN_FLIGHT,
            )
            writer.close()
            source.verify()
            bits.verify()
            progress.check_now()
            output.complete()
    result = _result(record, lsb, key, size=output.size, sha256=output.sha256)
    return result, lsb.size + secret.size


def _extract(
    record: JobRecord, k_pos: bytes, deps: RunnerDeps, progress: JobProgress
) -> tuple[ObjectRecord, int]:
    """The payload of an extract, written to storage as its windows are read (a multipart
    upload, published only once the plane's checksum is verified)."""
    store = deps.store
    lsb = load_input(record, PLANE, deps.uploads, store)
    with InputStream(store, lsb, PLANE) as source:
        header = source.read_plane_header()
        key = result_key(record)
        with _result_writer(store, key, record.kind, lsb.size) as output:
            codec.extract_plane_to(
                source.stream,
                cast(BinaryIO, output),
                samples=header.samples,
                k_pos=k_pos,
                engine=deps.engine,
                progress=progress,
                concurrency=deps.settings.WINDOWS_IN_FLIGHT,
            )
            source.verify()
            progress.check_now()
            output.complete()
    result = _result(record, lsb, key, size=output.size, sha256=output.sha256)
    return result, lsb.size


def _result_writer(
    store: ObjectStore, key: str, kind: JobKind, source_bytes: int
) -> MultipartWriter:
    """A new multipart upload of the result ``key`` (earlier runs' leftovers aborted), in
    parts of :data:`RESULT_PART_SIZE_BYTES` (more for a result of very many parts)."""
    _abort_leftovers(store, key)
    part_size = part_size_for(source_bytes, RESULT_PART_SIZE_BYTES)
    return MultipartWriter(store, key, content_type=RESULT_MEDIA_TYPE[kind], part_size=part_size)


def _robust(
    record: JobRecord, k_pos: bytes, deps: RunnerDeps, progress: JobProgress
) -> tuple[ObjectRecord, int]:
    if deps.robust is None:
        raise SubtoneError(
            "This server does not run the robust mode (its worker has no robust engine).",
            code=MODE_UNAVAILABLE,
            status=501,
        )
    from server.jobs.robust import robust_embed, robust_extract  # scipy: robust jobs only

    run = robust_embed if record.kind is JobKind.ROBUST_EMBED else robust_extract
    out = run(
        record,
        k_pos,
        engine=_BoundRobustEngine(deps.robust, logs.current()),
        uploads=deps.uploads,
        store=deps.store,
        settings=deps.settings,
        progress=progress,
    )
    progress.check_now()
    key = result_key(record)
    deps.store.put_bytes(key, out.data, out.media_type)
    digest = hashlib.sha256(out.data).hexdigest()
    return _result(record, out.source, key, size=len(out.data), sha256=digest), out.read


def _abort_leftovers(store: ObjectStore, key: str) -> None:
    """Abort the multipart uploads of ``key`` that earlier runs left (a worker killed while
    it wrote the result). This run holds the job's lease: no live run owns them."""
    for upload in store.list_multipart_uploads(key):
        if upload.key == key:
            log.info("aborting an unfinished upload of %s left by an earlier run", key)
            store.abort_multipart(upload.key, upload.upload_id)


def _result(
    record: JobRecord, source: ObjectRecord, key: str, *, size: int, sha256: str
) -> ObjectRecord:
    stem = PurePosixPath(source.name).stem or record.kind.value
    return ObjectRecord(
        id=result_object_id(record.id),
        tenant=record.tenant,
        key=key,
        name=stem + RESULT_SUFFIX[record.kind],
        size=size,
        sha256=sha256,
        media_type=RESULT_MEDIA_TYPE[record.kind],
        created_at=utcnow(),
    )
