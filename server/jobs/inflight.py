"""The jobs a worker runs now, each with the time it started (a Dramatiq middleware), so that
the worker's liveness can tell a thread stuck inside one job from a busy one.

Dramatiq's time limit stops a job by raising an exception in its thread, which the thread only
sees when it next runs Python: a thread blocked for good (a deadlock, a call that never returns)
never sees it, keeps its message, and would keep the worker alive for ever. A job still running
``stuck_after_seconds`` after it started (the time limit plus the time a thread may need to
notice it and wind down) is reported by :meth:`JobsInFlight.stuck`; the heartbeat then lets
the worker's liveness lapse (:meth:`server.jobs.heartbeat.WorkerHeartbeats.keep_beating`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dramatiq.broker import Broker, MessageProxy
from dramatiq.middleware import Middleware

__all__ = ["JobsInFlight", "StuckJob"]


@dataclass(frozen=True)
class StuckJob:
    job_id: str
    running_seconds: float
    limit_seconds: float

    def __str__(self) -> str:
        return (
            f"job {self.job_id} has run more than {self.limit_seconds:.0f} s (its time limit and "
            "the time to wind down): its thread is stuck"
        )


class JobsInFlight(Middleware):
    """Dramatiq middleware: the messages being processed, by id, with their job id (the
    message's first argument) and start time on ``clock`` (seconds, monotonic)."""

    def __init__(
        self, stuck_after_seconds: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stuck_after_seconds = stuck_after_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._started: dict[str, tuple[str, float]] = {}

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        job_id = str(message.args[0]) if message.args else message.message_id
        with self._lock:
            self._started[message.message_id] = (job_id, self._clock())

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any | None = None,
        exception: BaseException | None = None,
    ) -> None:
        self._forget(message)

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        self._forget(message)

    def _forget(self, message: MessageProxy) -> None:
        with self._lock:
            self._started.pop(message.message_id, None)

    def stuck(self) -> StuckJob | None:
        """The job that has run longest, if it has run longer than ``stuck_after_seconds``."""
        with self._lock:
            started = list(self._started.values())
        if not started:
            return None
        job_id, since = min(started, key=lambda item: item[1])
        running = self._clock() - since
        if running <= self.stuck_after_seconds:
            return None
        return StuckJob(job_id, running, self.stuck_after_seconds)
