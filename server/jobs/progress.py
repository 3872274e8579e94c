"""A running job's progress, cancel requests and the worker's shutdown, off the codec's thread.

The codec calls :class:`JobProgress` after every window (many times a second); that call only
records the fraction and raises :class:`JobCancelled` or :class:`JobInterrupted` when the job
must stop. A background thread does the Redis work on a clock: it writes the progress at most
once per ``interval_seconds`` (and at least once per ``heartbeat_seconds`` while the job runs,
so ``updated_at`` shows it is alive), and reads whether the owner asked to cancel.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Final, Protocol, Self

import redis

__all__ = [
    "DEFAULT_HEARTBEAT_SECONDS",
    "DEFAULT_INTERVAL_SECONDS",
    "JobCancelled",
    "JobInterrupted",
    "JobProgress",
    "ProgressStore",
]

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_SECONDS: Final = 1.0
DEFAULT_HEARTBEAT_SECONDS: Final = 5.0
THREAD_NAME: Final = "job-progress"
JOIN_TIMEOUT_SECONDS: Final = 10.0


class JobCancelled(Exception):
    """The job's owner cancelled it while it ran."""


class JobInterrupted(Exception):
    """The worker is shutting down: the job is handed back to the queue."""


class ProgressStore(Protocol):
    """Where progress goes and cancel requests come from (:class:`JobRepository`)."""

    def set_progress(self, job_id: str, progress: float) -> None: ...

    def cancel_requested(self, job_id: str) -> bool: ...


class JobProgress:
    """The codec's progress callback for one job; a context manager that runs the reporter."""

    def __init__(
        self,
        jobs: ProgressStore,
        job_id: str,
        *,
        stopping: threading.Event,
        interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
        heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._jobs = jobs
        self._job_id = job_id
        self._stopping = stopping
        self._interval = interval_seconds
        self._heartbeat = heartbeat_seconds
        self._clock = clock
        self._fraction = 0.0
        self._written = 0.0
        self._last_write = clock()
        self._cancelled = threading.Event()
        self._done = threading.Event()
        # In a copy of the job's context: a new thread's is empty, and the reporter's log
        # lines must carry the job's trace (server.kit.logs).
        self._thread = threading.Thread(
            target=contextvars.copy_context().run, args=(self._loop,), name=THREAD_NAME, daemon=True
        )

    # -- the codec's side ------------------------------------------------------------------

    def __call__(self, fraction: float) -> None:
        self._fraction = fraction
        self.check()

    def check(self) -> None:
        """Raise if the job must stop now (as last seen by the reporter)."""
        if self._cancelled.is_set():
            raise JobCancelled()
        if self._stopping.is_set():
            raise JobInterrupted()

    def check_now(self) -> None:
        """:meth:`check` with a fresh read of the cancel flag (before publishing a result)."""
        if self._jobs.cancel_requested(self._job_id):
            self._cancelled.set()
        self.check()

    # -- the reporter ----------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join(JOIN_TIMEOUT_SECONDS)

    def _loop(self) -> None:
        while not self._done.wait(self._interval):
            try:
                self._tick()
            except redis.RedisError as e:
                # Progress is advisory: the job goes on, and its final write decides.
                log.warning("could not report progress of job %s: %s", self._job_id, e)

    def _tick(self) -> None:
        fraction, now = self._fraction, self._clock()
        if fraction > self._written or now - self._last_write >= self._heartbeat:
            self._jobs.set_progress(self._job_id, fraction)
            self._written, self._last_write = fraction, now
        if self._jobs.cancel_requested(self._job_id):
            self._cancelled.set()
