"""Progress reporting on a clock: few Redis writes, a heartbeat, cancel and shutdown signals."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from server.jobs.progress import THREAD_NAME, JobCancelled, JobInterrupted, JobProgress
from server.kit import logs

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


class CountingJobs:
    """Records what the reporter asks of the job repository."""

    def __init__(self) -> None:
        self.writes: list[float] = []
        self.cancelled = False

    def set_progress(self, job_id: str, progress: float) -> None:
        self.writes.append(progress)

    def cancel_requested(self, job_id: str) -> bool:
        return self.cancelled


def test_many_callbacks_make_at_most_one_write_per_interval():
    jobs = CountingJobs()
    interval, duration = 0.1, 0.55
    with JobProgress(
        jobs, "job_x", stopping=threading.Event(), interval_seconds=interval, heartbeat_seconds=5
    ) as progress:
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < duration:
            progress(elapsed / duration)
            time.sleep(0.001)

    assert 2 <= len(jobs.writes) <= duration / interval + 1
    assert jobs.writes == sorted(jobs.writes)


def test_a_stalled_job_still_writes_a_heartbeat():
    jobs = CountingJobs()
    with JobProgress(
        jobs, "job_x", stopping=threading.Event(), interval_seconds=0.02, heartbeat_seconds=0.1
    ) as progress:
        progress(0.5)
        time.sleep(0.45)

    assert 3 <= len(jobs.writes) <= 8  # 0.5 once, then one heartbeat each 0.1 s
    assert set(jobs.writes) == {0.5}


def test_a_cancel_request_is_raised_on_the_next_callback():
    jobs = CountingJobs()
    with JobProgress(
        jobs, "job_x", stopping=threading.Event(), interval_seconds=0.01, heartbeat_seconds=1
    ) as progress:
        progress(0.1)
        jobs.cancelled = True
        time.sleep(0.1)
        with pytest.raises(JobCancelled):
            progress(0.2)


def test_a_fresh_check_sees_a_cancel_the_reporter_has_not_yet_read():
    jobs = CountingJobs()
    with JobProgress(
        jobs, "job_x", stopping=threading.Event(), interval_seconds=60, heartbeat_seconds=60
    ) as progress:
        jobs.cancelled = True
        progress(0.9)  # not seen yet: the reporter reads once a minute here
        with pytest.raises(JobCancelled):
            progress.check_now()


def test_the_workers_shutdown_interrupts_the_job():
    stopping = threading.Event()
    with JobProgress(CountingJobs(), "job_x", stopping=stopping) as progress:
        progress(0.1)
        stopping.set()
        with pytest.raises(JobInterrupted):
            progress(0.2)


class UnreachableJobs(CountingJobs):
    """A repository whose Redis is away: every progress write fails."""

    def set_progress(self, job_id: str, progress: float) -> None:
        raise redis.ConnectionError("Redis is away (test)")


def test_the_reporters_log_lines_carry_the_jobs_trace(log_lines):
    jobs = UnreachableJobs()
    with (
        logs.bound(trace_id=TRACE, job_id="job_x", tenant_id="alice"),
        JobProgress(jobs, "job_x", stopping=threading.Event(), interval_seconds=0.01) as progress,
    ):
        progress(0.5)
        deadline = time.monotonic() + 5
        while not log_lines() and time.monotonic() < deadline:
            time.sleep(0.01)

    line = log_lines()[0]
    assert line["thread"] == THREAD_NAME
    assert line["event"] == "could not report progress of job job_x: Redis is away (test)"
    assert (line["trace_id"], line["job_id"], line["tenant_id"]) == (TRACE, "job_x", "alice")
