"""The workers' reaper: no job stays ``running`` for ever.

A worker that dies mid-job leaves its job ``running``. Usually RabbitMQ redelivers the job's
message as soon as the dead worker's connection closes, and the next run takes the job over
(:mod:`server.jobs.lease`). When the message went down with the worker (a broker restarted
without its queue, a queue purged by hand), nothing would ever run the job again: the reaper
finds running jobs with no heartbeat for ``JOB_STALE_SECONDS`` and no lease, marks them
``queued`` (one more lost run; ``worker_lost`` once they lost ``JOB_MAX_LOST_RUNS``) and sends
them again. A duplicate send is harmless: the lease lets one run at a time, and a finished
job is never run again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import redis

from server.integrations.broker import QueueUnavailable
from server.jobs.lease import JobLeases
from server.jobs.repository import JobRepository
from server.kit.clock import utcnow
from subtone.protocol import JobState

__all__ = ["Reaper"]

log = logging.getLogger(__name__)

THREAD_NAME = "job-reaper"


class Reaper:
    def __init__(
        self,
        jobs: JobRepository,
        leases: JobLeases,
        send: Callable[[str], None],
        *,
        stale_seconds: float,
        max_lost_runs: int,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._jobs = jobs
        self._leases = leases
        self._send = send
        self._stale = timedelta(seconds=stale_seconds)
        self._max_lost_runs = max_lost_runs
        self._clock = clock

    def sweep(self) -> list[str]:
        """Send again every running job that lost its worker; returns their ids."""
        cutoff = self._clock() - self._stale
        sent = []
        for job_id in self._jobs.stale_running(older_than=cutoff):
            if self._leases.held(job_id):  # a run is alive, only its heartbeat is late
                continue
            state = self._jobs.reclaim(job_id, older_than=cutoff, max_lost_runs=self._max_lost_runs)
            if state is JobState.FAILED:
                log.warning("job %s lost its worker too many times: failed", job_id)
            if state is not JobState.QUEUED:
                continue
            try:
                self._send(job_id)
            except QueueUnavailable as e:
                log.warning("could not send job %s again (next sweep retries): %s", job_id, e)
                self._jobs.unclaim(job_id)
                continue
            log.warning("job %s lost its worker and its message: sent again", job_id)
            sent.append(job_id)
        return sent

    def run_every(self, interval_seconds: float, stopping: threading.Event) -> threading.Thread:
        """Sweep every ``interval_seconds`` on a daemon thread until ``stopping`` is set."""

        def loop() -> None:
            while not stopping.wait(interval_seconds):
                try:
                    self.sweep()
                except redis.RedisError as e:
                    log.warning("reaper: Redis is not reachable: %s", e)

        thread = threading.Thread(target=loop, name=THREAD_NAME, daemon=True)
        thread.start()
        return thread
