"""Jobs as the API sees them: create (idempotently), report, follow, cancel.

A job is saved first and only then enqueued (by id); if the queue cannot take it, the job is
marked failed (``queue_unavailable``), its idempotency key is released so a retry makes a new
job, and the caller gets 503.

Creating a job is the API's hot path and runs on the event loop: one Redis round trip (the
inputs checked, the key claimed, the record saved) and one publish awaiting its confirm
(:class:`AsyncEnqueuer`), with no thread hop; only the rare paths (a replayed key, a queue
that failed) use the thread pool.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import anyio.to_thread
import redis
from sse_starlette import ServerSentEvent

from server.integrations.broker import AsyncEnqueuer, QueueUnavailable
from server.integrations.storage import ObjectStore
from server.jobs.changes import JobChanges
from server.jobs.repository import JobNotFound, JobRecord, JobRepository, request_hash
from server.jobs.streams import StreamSlot, StreamSlots
from server.kit import logs
from server.kit.clock import utcnow
from server.kit.ids import new_id
from server.uploads.repository import ObjectRecord, UploadRepository
from subtone.errors import SubtoneError
from subtone.protocol import ErrorInfo, Job, JobCreate, JobKind, JobList, JobState

__all__ = ["JOB_EVENT", "REQUIRED_INPUTS", "InvalidInputs", "JobService"]

log = logging.getLogger(__name__)

JOB_ID_PREFIX = "job"
JOB_EVENT = "job"
"""The SSE event name; its data is the :class:`Job` JSON."""
EVENTS_MAX_SECONDS = 3600.0
"""An event stream ends after this even if the job has not; the client then polls."""
REQUIRED_INPUTS: Mapping[JobKind, frozenset[str]] = {
    JobKind.EMBED: frozenset({"plane", "payload"}),
    JobKind.EXTRACT: frozenset({"plane"}),
    JobKind.ROBUST_EMBED: frozenset({"mix", "payload"}),
    JobKind.ROBUST_EXTRACT: frozenset({"mix"}),
}


class InvalidInputs(SubtoneError):
    code = "invalid_inputs"
    status = 422


def _check_input_names(request: JobCreate) -> None:
    required = REQUIRED_INPUTS[request.kind]
    if set(request.inputs) != required:
        names = ", ".join(sorted(required))
        raise InvalidInputs(f"A {request.kind.value} job takes exactly these inputs: {names}.")


def _body_hash(request: JobCreate) -> str:
    return request_hash(json.dumps(request.model_dump(mode="json"), sort_keys=True))


def _change(job: Job) -> dict[str, Any]:
    """What a follower is told about: everything but the timestamps and the (fresh) URL."""
    return job.model_dump(exclude={"updated_at", "download_url"})


class JobService:
    def __init__(
        self,
        jobs: JobRepository,
        uploads: UploadRepository,
        store: ObjectStore,
        enqueuer: AsyncEnqueuer,
        streams: StreamSlots,
        changes: JobChanges,
        *,
        download_ttl_seconds: int,
        max_stream_seconds: float = EVENTS_MAX_SECONDS,
    ) -> None:
        self._jobs = jobs
        self._uploads = uploads
        self._store = store
        self._enqueuer = enqueuer
        self._streams = streams
        self._changes = changes
        self._download_ttl = download_ttl_seconds
        self._max_stream = max_stream_seconds

    async def create(
        self,
        tenant: str,
        request: JobCreate,
        idempotency_key: str | None,
        *,
        trace_id: str | None = None,
    ) -> Job:
        """Save and enqueue a job; the same key and body give back the same job, unqueued.
        ``trace_id`` (the request's) is kept on the job and sent with its message."""
        _check_input_names(request)
        now = utcnow()
        record = JobRecord(
            id=new_id(JOB_ID_PREFIX),
            tenant=tenant,
            kind=request.kind,
            inputs=dict(request.inputs),
            params=request.params.model_dump(),
            created_at=now,
            updated_at=now,
            trace_id=trace_id,
        )
        saved, new = await self._jobs.acreate(
            record,
            idempotency_key=idempotency_key,
            body_hash=_body_hash(request),
            inputs={i: self._uploads.object_key(i) for i in request.inputs.values()},
        )
        logs.bind(job_id=saved.id)  # the request's access line names its job
        if not new:  # a replay: the job may have a result, whose URL is signed
            return await anyio.to_thread.run_sync(self._job, saved)
        await self._enqueue(saved, idempotency_key)
        log.debug("job %s (%s) queued", saved.id, saved.kind.value)
        return self._job(saved)

    def get(self, tenant: str, job_id: str) -> Job:
        return self._job(self._jobs.get_for_tenant(tenant, job_id))

    def list(self, tenant: str) -> JobList:
        return JobList(jobs=[self._job(r) for r in self._jobs.list_for_tenant(tenant)])

    def cancel(self, tenant: str, job_id: str) -> Job:
        """Cancel a queued job; ask a running one to stop. A finished job stays as it is."""
        record = self._jobs.get_for_tenant(tenant, job_id)
        return self._job(self._jobs.cancel(job_id) or record)

    def events(self, tenant: str, job_id: str) -> AsyncIterator[ServerSentEvent]:
        """The job's event stream (checked to exist first, so a wrong id is a plain 404), in
        one of the tenant's stream slots (:class:`TooManyStreams` when none is free)."""
        job = self.get(tenant, job_id)
        return self._follow(tenant, job, self._streams.acquire(tenant))

    async def _follow(
        self, tenant: str, job: Job, slot: StreamSlot
    ) -> AsyncIterator[ServerSentEvent]:
        """``job`` now and at every change (woken by :class:`JobChanges`), until it finishes
        (or the stream is too old)."""
        try:
            told: dict[str, Any] | None = None
            deadline = anyio.current_time() + self._max_stream
            with self._changes.watch(job.id) as changed:
                # Read again once watching: a change just before would otherwise wait a poll.
                with contextlib.suppress(JobNotFound):
                    job = await anyio.to_thread.run_sync(self.get, tenant, job.id)
                while True:
                    if _change(job) != told:
                        told = _change(job)
                        yield ServerSentEvent(event=JOB_EVENT, data=job.model_dump_json())
                    if job.state.finished or anyio.current_time() >= deadline:
                        return
                    await self._changes.wait(changed, at_most=slot.renew_every)
                    if slot.renew_due:
                        await anyio.to_thread.run_sync(slot.renew)
                    try:
                        job = await anyio.to_thread.run_sync(self.get, tenant, job.id)
                    except JobNotFound:
                        return
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await anyio.to_thread.run_sync(slot.release)
                except redis.RedisError as e:  # the slot lapses on its own
                    log.warning("could not release an event stream slot: %s", e)

    async def _enqueue(self, record: JobRecord, idempotency_key: str | None) -> None:
        try:
            await self._enqueuer.enqueue(record.id, trace_id=record.trace_id)
        except Exception as e:
            log.warning("could not enqueue job %s", record.id, exc_info=True)
            message = "The job queue is unavailable; the job was not started. Try again."
            await anyio.to_thread.run_sync(self._unqueued, record, idempotency_key, message)
            raise QueueUnavailable(message) from e

    def _unqueued(self, record: JobRecord, idempotency_key: str | None, message: str) -> None:
        """Mark a job the queue did not take failed, and free its key for a retry."""
        self._jobs.fail(record.id, QueueUnavailable.code, message)
        if idempotency_key is not None:
            self._jobs.release_idempotency_key(record.tenant, idempotency_key, record.id)

    def _job(self, record: JobRecord) -> Job:
        result = self._result(record)
        succeeded = record.state is JobState.SUCCEEDED and result is not None
        error = (
            ErrorInfo(code=record.error_code, message=record.error_message or record.error_code)
            if record.error_code
            else None
        )
        return Job(
            id=record.id,
            kind=record.kind,
            state=record.state,
            progress=record.progress,
            inputs=record.inputs,
            created_at=record.created_at,
            updated_at=record.updated_at,
            result=result.ref() if result is not None else None,
            download_url=self._download_url(result) if succeeded and result else None,
            error=error,
            attempts=record.attempts,
            trace_id=record.trace_id,
        )

    def _result(self, record: JobRecord) -> ObjectRecord | None:
        if record.result_object_id is None:
            return None
        return self._uploads.find_object(record.result_object_id)

    def _download_url(self, result: ObjectRecord) -> str:
        return self._store.presign_download(result.key, self._download_ttl, result.name)
