"""Job records, progress and idempotency keys in Redis.

A record is one JSON value under ``<prefix>:job:<id>``; every change goes through
:meth:`JobRepository._update`, an optimistic (WATCH/MULTI) read-modify-write, so the API
cancelling and the worker reporting progress never overwrite each other. State changes are
one-way: a finished job never runs again, whoever asks.

A job is created in one round trip (:data:`_CREATE_SCRIPT`): its inputs checked to be the
tenant's objects, its idempotency key claimed, its record saved and indexed. The API does it
on the event loop (:meth:`JobRepository.acreate`, with the asynchronous client).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import redis
import redis.asyncio
from pydantic import BaseModel, ConfigDict

from server.jobs import changes
from server.kit.clock import utcnow
from subtone.errors import SubtoneError
from subtone.protocol import JobKind, JobState

__all__ = [
    "WORKER_LOST",
    "IdempotencyConflict",
    "JobNotFound",
    "JobRecord",
    "JobRepository",
    "MissingInput",
    "request_hash",
]


class JobNotFound(SubtoneError):
    code = "not_found"
    status = 404

    def __init__(self, job_id: str) -> None:
        super().__init__(f"There is no job {job_id}.")


class IdempotencyConflict(SubtoneError):
    code = "idempotency_conflict"
    status = 409

    def __init__(self) -> None:
        super().__init__(
            "This Idempotency-Key was already used for a different request; use a new key."
        )


class MissingInput(SubtoneError):
    """A job's input is not one of the tenant's objects (none, or another tenant's)."""

    code = "not_found"
    status = 404

    def __init__(self, object_id: str) -> None:
        super().__init__(f"There is no object {object_id}.")
        self.object_id = object_id


class JobRecord(BaseModel):
    """The stored job: what the API reports and what the worker reloads."""

    model_config = ConfigDict(extra="forbid")

    id: str
    tenant: str
    kind: JobKind
    state: JobState = JobState.QUEUED
    progress: float = 0.0
    inputs: dict[str, str]
    params: dict[str, str]
    created_at: datetime
    updated_at: datetime
    result_object_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    attempts: int = 0
    lost_runs: int = 0
    """Runs that ended without a word: their worker was killed or lost (see ``start``)."""
    cancel_requested: bool = False
    trace_id: str | None = None
    """The trace id of the request that created the job (:mod:`subtone.tracing`)."""


WORKER_LOST = "worker_lost"


def worker_lost_message(runs: int) -> str:
    return (
        f"The job stopped its worker {runs} times without finishing (the worker was killed or "
        "ran out of memory), so it was given up. Try a smaller cover, or ask the operators."
    )


def _text(value: object) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def request_hash(*parts: str) -> str:
    """A digest of a request body, to tell a retried request from a different one."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


_CREATE_SCRIPT = """
-- KEYS: idempotency key ('' for none), job key, tenant's index, then the inputs' object records
-- ARGV: claim ('<job id>:<body hash>'), record JSON, TTL seconds, index score, job key prefix,
--       tenant id
-- Returns {1, ''} (created), {0, claim} (the key's job), {2, n} (input n is not the tenant's)
for i = 4, #KEYS do
  local raw = redis.call('GET', KEYS[i])
  local ok, object = false, nil
  if raw then
    ok, object = pcall(cjson.decode, raw)
  end
  if not ok or type(object) ~= 'table' or object['tenant'] ~= ARGV[6] then
    return {2, tostring(i - 3)}
  end
end
if KEYS[1] ~= '' then
  local claim = redis.call('GET', KEYS[1])
  if claim then
    local job_id = string.sub(claim, 1, (string.find(claim, ':', 1, true) or 0) - 1)
    if redis.call('EXISTS', ARGV[5] .. job_id) == 1 then
      return {0, claim}
    end
    -- the claim outlived its record (the record expired first): take it over
  end
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], string.sub(KEYS[2], string.len(ARGV[5]) + 1))
redis.call('EXPIRE', KEYS[3], ARGV[3])
return {1, ''}
"""


class JobRepository:
    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str,
        ttl_seconds: int,
        aclient: redis.asyncio.Redis | None = None,
    ) -> None:
        """``aclient``: the same Redis for :meth:`acreate` (the API's event loop)."""
        self._redis = client
        self._aredis = aclient
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._create_script = client.register_script(_CREATE_SCRIPT)
        self._acreate_script = aclient.register_script(_CREATE_SCRIPT) if aclient else None

    def _key(self, job_id: str) -> str:
        return f"{self._prefix}:job:{job_id}"

    def _index(self, tenant: str) -> str:
        return f"{self._prefix}:jobs:{tenant}"

    def _running(self) -> str:
        """Running jobs, scored by their last sign of life (a UNIX time)."""
        return f"{self._prefix}:running"

    def _idem(self, tenant: str, key: str) -> str:
        return f"{self._prefix}:idem:{tenant}:{hashlib.sha256(key.encode()).hexdigest()}"

    # Creation ----------------------------------------------------------------------------

    def create(
        self,
        record: JobRecord,
        *,
        idempotency_key: str | None,
        body_hash: str,
        inputs: Mapping[str, str] | None = None,
    ) -> tuple[JobRecord, bool]:
        """Save a new job, or return the one already made for this idempotency key.

        Returns the record and whether it is new (only a new job is enqueued). Checking the
        inputs (``inputs``: object id → the key of its record; :class:`MissingInput` unless
        each is the tenant's), claiming the key and saving the record are one atomic step (a
        Lua script), so two concurrent requests with the same key make one job between them.
        """
        keys, args = self._create_call(record, idempotency_key, body_hash, inputs or {})
        outcome = self._create_script(keys=keys, args=args)
        claim = self._created(outcome, record, body_hash, inputs or {})
        if claim is None:
            return record, True
        return self._existing(claim), False

    async def acreate(
        self,
        record: JobRecord,
        *,
        idempotency_key: str | None,
        body_hash: str,
        inputs: Mapping[str, str] | None = None,
    ) -> tuple[JobRecord, bool]:
        """:meth:`create` on the asynchronous client (one round trip for a new job)."""
        if self._acreate_script is None or self._aredis is None:
            raise RuntimeError("this repository was made without an asynchronous client")
        keys, args = self._create_call(record, idempotency_key, body_hash, inputs or {})
        outcome = await self._acreate_script(keys=keys, args=args)
        claim = self._created(outcome, record, body_hash, inputs or {})
        if claim is None:
            return record, True
        raw = await self._aredis.get(self._key(claim))
        return self._found(claim, raw), False

    def _create_call(
        self,
        record: JobRecord,
        idempotency_key: str | None,
        body_hash: str,
        inputs: Mapping[str, str],
    ) -> tuple[list[str], list[Any]]:
        idem = self._idem(record.tenant, idempotency_key) if idempotency_key is not None else ""
        keys = [idem, self._key(record.id), self._index(record.tenant), *inputs.values()]
        args = [
            f"{record.id}:{body_hash}",
            record.model_dump_json(),
            self._ttl,
            record.created_at.timestamp(),
            self._key(""),
            record.tenant,
        ]
        return keys, args

    @staticmethod
    def _created(
        outcome: Sequence[Any], record: JobRecord, body_hash: str, inputs: Mapping[str, str]
    ) -> str | None:
        """None for a new job, else the id of the job the idempotency key names."""
        status = int(outcome[0])
        if status == 2:
            raise MissingInput(list(inputs)[int(_text(outcome[1])) - 1])
        if status == 1:
            return None
        job_id, _, stored_hash = _text(outcome[1]).partition(":")
        if stored_hash != body_hash:
            raise IdempotencyConflict()
        return job_id

    def _existing(self, job_id: str) -> JobRecord:
        return self._found(job_id, self._redis.get(self._key(job_id)))

    @staticmethod
    def _found(job_id: str, raw: object) -> JobRecord:
        if not raw:  # expired between the script and this read: the key is spent
            raise JobNotFound(job_id)
        return JobRecord.model_validate_json(raw)  # type: ignore[arg-type]

    def release_idempotency_key(self, tenant: str, idempotency_key: str, job_id: str) -> None:
        """Forget the key's claim by ``job_id`` (a job that could not be queued), so that
        retrying the request with the same key makes a new job instead of returning it."""
        idem = self._idem(tenant, idempotency_key)
        if _text(self._redis.get(idem)).partition(":")[0] == job_id:
            self._redis.delete(idem)

    # Reads -------------------------------------------------------------------------------

    def get(self, job_id: str) -> JobRecord | None:
        raw = self._redis.get(self._key(job_id))
        return JobRecord.model_validate_json(raw) if raw else None

    def get_for_tenant(self, tenant: str, job_id: str) -> JobRecord:
        """The job, if it belongs to ``tenant``; another tenant's job does not exist."""
        record = self.get(job_id)
        if record is None or record.tenant != tenant:
            raise JobNotFound(job_id)
        return record

    def list_for_tenant(self, tenant: str, *, limit: int = 100) -> list[JobRecord]:
        ids = self._redis.zrevrange(self._index(tenant), 0, limit - 1)
        records = [self.get(_text(i)) for i in ids]
        return [r for r in records if r is not None]

    def count_by_state(self) -> dict[JobState, int]:
        counts = dict.fromkeys(JobState, 0)
        for key in self._redis.scan_iter(match=self._key("*"), count=500):
            raw = self._redis.get(key)
            if raw:
                counts[JobRecord.model_validate_json(raw).state] += 1
        return counts

    # Changes -----------------------------------------------------------------------------

    def _update(
        self, job_id: str, change: Callable[[JobRecord], JobRecord | None]
    ) -> JobRecord | None:
        """Apply ``change`` atomically; it returns the new record or None to leave it."""
        key = self._key(job_id)
        with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    raw = pipe.get(key)
                    if raw is None:
                        pipe.unwatch()
                        return None
                    current = JobRecord.model_validate_json(raw)
                    new = change(current.model_copy(deep=True))
                    if new is None:
                        pipe.unwatch()
                        return current
                    new.updated_at = utcnow()
                    if new.state.finished:
                        new.params = {}  # the position key is not kept once it is not needed
                    pipe.multi()
                    pipe.set(key, new.model_dump_json(), keepttl=True)
                    if new.state is JobState.RUNNING:
                        pipe.zadd(self._running(), {job_id: new.updated_at.timestamp()})
                    else:
                        pipe.zrem(self._running(), job_id)
                    pipe.publish(changes.channel(self._prefix, job_id), job_id)
                    pipe.execute()
                    return new
                except redis.WatchError:
                    continue

    def start(self, job_id: str, *, max_lost_runs: int) -> JobRecord | None:
        """Mark a delivered job running; None when it must not run (finished or cancelled).

        The caller holds the job's lease (:mod:`server.jobs.lease`), so a job found
        ``running`` is not running anywhere: its last run ended without settling it (the
        worker was killed, or lost its connection). Such a job runs again, unless it has
        already lost ``max_lost_runs`` runs: then it fails with ``worker_lost`` (a cover that
        kills its worker every time must not take the workers down for ever).
        """

        def change(r: JobRecord) -> JobRecord | None:
            if r.state.finished:
                return None
            if r.cancel_requested:
                r.state = JobState.CANCELLED
                return r
            if r.state is JobState.RUNNING:
                r.lost_runs += 1
                if r.lost_runs >= max_lost_runs:
                    r.state, r.error_code, r.error_message = (
                        JobState.FAILED,
                        WORKER_LOST,
                        worker_lost_message(r.lost_runs),
                    )
                    return r
            r.state, r.attempts = JobState.RUNNING, r.attempts + 1
            return r

        record = self._update(job_id, change)
        if record is None or record.state is not JobState.RUNNING:
            return None
        return record

    def stale_running(self, *, older_than: datetime) -> list[str]:
        """Running jobs with no sign of life since ``older_than``."""
        ids = self._redis.zrangebyscore(self._running(), "-inf", older_than.timestamp())
        return [_text(i) for i in ids]

    def reclaim(self, job_id: str, *, older_than: datetime, max_lost_runs: int) -> JobState | None:
        """Take back a running job with no sign of life since ``older_than``: ``queued`` with
        one more lost run (to be sent again), or ``failed`` (``worker_lost``) once it lost
        ``max_lost_runs``. Returns the new state, or None if the job was left alone (it came
        back to life or finished meanwhile, or is gone)."""

        taken: JobState | None = None

        def change(r: JobRecord) -> JobRecord | None:
            nonlocal taken
            taken = None
            if r.state is not JobState.RUNNING or r.updated_at > older_than:
                return None
            r.lost_runs += 1
            if r.lost_runs >= max_lost_runs:
                r.state, r.error_code, r.error_message = (
                    JobState.FAILED,
                    WORKER_LOST,
                    worker_lost_message(r.lost_runs),
                )
            else:
                r.state = JobState.QUEUED
            taken = r.state
            return r

        if self._update(job_id, change) is None:  # no such job (expired): forget it
            self._redis.zrem(self._running(), job_id)
        return taken

    def unclaim(self, job_id: str) -> None:
        """Undo :meth:`reclaim` when the job could not be sent: ``running`` (and stale) again,
        so that a later sweep tries once more."""

        def change(r: JobRecord) -> JobRecord | None:
            if r.state is not JobState.QUEUED:
                return None
            r.state, r.lost_runs = JobState.RUNNING, max(0, r.lost_runs - 1)
            return r

        self._update(job_id, change)

    def set_progress(self, job_id: str, progress: float) -> None:
        def change(r: JobRecord) -> JobRecord | None:
            if r.state is not JobState.RUNNING:
                return None
            r.progress = max(r.progress, min(1.0, progress))
            return r

        self._update(job_id, change)

    def requeue(self, job_id: str) -> None:
        """A transient failure will be retried: show the job as queued again."""

        def change(r: JobRecord) -> JobRecord | None:
            if r.state is not JobState.RUNNING:
                return None
            r.state = JobState.QUEUED
            return r

        self._update(job_id, change)

    def succeed(self, job_id: str, result_object_id: str) -> JobRecord | None:
        def change(r: JobRecord) -> JobRecord | None:
            if r.state.finished:
                return None
            r.state, r.progress, r.result_object_id = JobState.SUCCEEDED, 1.0, result_object_id
            return r

        return self._update(job_id, change)

    def fail(self, job_id: str, code: str, message: str) -> JobRecord | None:
        def change(r: JobRecord) -> JobRecord | None:
            if r.state.finished:
                return None
            r.state, r.error_code, r.error_message = JobState.FAILED, code, message
            return r

        return self._update(job_id, change)

    def cancel(self, job_id: str) -> JobRecord | None:
        """Cancel a queued job now; ask a running one to stop (the worker honours it)."""

        def change(r: JobRecord) -> JobRecord | None:
            if r.state.finished:
                return None
            r.cancel_requested = True
            if r.state is JobState.QUEUED:
                r.state = JobState.CANCELLED
            return r

        return self._update(job_id, change)

    def mark_cancelled(self, job_id: str) -> None:
        def change(r: JobRecord) -> JobRecord | None:
            if r.state.finished:
                return None
            r.state = JobState.CANCELLED
            return r

        self._update(job_id, change)

    def cancel_requested(self, job_id: str) -> bool:
        record = self.get(job_id)
        return record is None or record.cancel_requested
