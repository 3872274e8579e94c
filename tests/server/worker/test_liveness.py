"""The worker's own liveness (server.jobs.heartbeat.AliveFile): its heartbeat thread keeps the
file fresh, and the container's probe (``subtone-healthcheck worker``) fails once that thread is
stuck, Dramatiq's threads are not all running, or a job's thread is stuck past its time limit
(server.jobs.inflight): then Kubernetes restarts the worker."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dramatiq
import pytest
import redis
from dramatiq import Message, Worker
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker

from server.jobs.heartbeat import AliveFile, NotAlive, WorkerHeartbeats
from server.jobs.inflight import JobsInFlight
from server.settings import Settings
from server.worker import STOP_TIMEOUT_SECONDS, stuck_after_seconds, unhealthy

TTL_SECONDS = 0.3
LAPSE_SECONDS = TTL_SECONDS / 3 + 2 * TTL_SECONDS
"""How long the file stays alive after a beat: the next beat's interval plus two TTLs."""
POLL_SECONDS = 0.02
QUEUE = "jobs"
WORKER = "worker-1"


def alive(path: Path) -> bool:
    try:
        AliveFile.check(path)
    except NotAlive:
        return False
    return True


def eventually(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


@pytest.fixture
def heartbeats(redis_client: redis.Redis, prefix: str) -> WorkerHeartbeats:
    return WorkerHeartbeats(redis_client, prefix=prefix, ttl_seconds=TTL_SECONDS)


def test_the_file_is_alive_while_the_heartbeat_runs_and_lapses_when_it_is_stuck(
    heartbeats: WorkerHeartbeats, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "worker.alive"
    stuck, release = threading.Event(), threading.Event()
    beat = heartbeats.beat

    def beat_or_hang(queue: str, worker: str) -> None:
        if stuck.is_set():
            release.wait()  # a Redis call that never returns, a deadlock
        beat(queue, worker)

    monkeypatch.setattr(heartbeats, "beat", beat_or_hang)
    stopping = threading.Event()
    thread = heartbeats.keep_beating(QUEUE, WORKER, stopping, alive=AliveFile(path))
    try:
        # While it beats, each beat pushes the file's deadline further. (Whether the file stays
        # alive between two beats depends on the scheduler of a loaded machine, not on this code:
        # what is asserted is that the deadline keeps moving.)
        assert eventually(lambda: alive(path), 5)
        deadlines = [path.stat().st_mtime]
        for _ in range(3):
            assert eventually(lambda: path.stat().st_mtime > deadlines[-1], 5)
            deadlines.append(path.stat().st_mtime)
        assert heartbeats.count(QUEUE) == 1

        stuck.set()
        # The beat in flight may still finish; then the deadline stops and the file lapses.
        assert eventually(lambda: not alive(path), LAPSE_SECONDS + 5)
        frozen = path.stat().st_mtime
        time.sleep(3 * TTL_SECONDS)
        assert path.stat().st_mtime == frozen
        assert not alive(path)
    finally:
        stopping.set()
        release.set()
        thread.join(5)
    assert not thread.is_alive()


def test_the_file_lapses_when_the_workers_threads_are_not_all_running(
    heartbeats: WorkerHeartbeats, tmp_path: Path
) -> None:
    path = tmp_path / "worker.alive"
    running = threading.Event()
    running.set()
    stopping = threading.Event()
    thread = heartbeats.keep_beating(
        QUEUE,
        WORKER,
        stopping,
        alive=AliveFile(path),
        unhealthy=lambda: None if running.is_set() else "a thread died",
    )
    try:
        assert eventually(lambda: alive(path), 5)
        running.clear()  # a Dramatiq consumer or worker thread died
        assert eventually(lambda: not alive(path), LAPSE_SECONDS + 2)
        assert heartbeats.count(QUEUE) == 1  # it still beats: only liveness lapses
    finally:
        stopping.set()
        thread.join(5)


def test_a_missing_file_is_not_alive(tmp_path: Path) -> None:
    with pytest.raises(NotAlive, match="missing"):
        AliveFile.check(tmp_path / "never-written")


STUCK_AFTER_SECONDS = 10.0


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _message(job_id: str) -> MessageProxy:
    return MessageProxy(Message("jobs", "run_job", (job_id,), {}, {}))


def test_the_oldest_job_past_the_bound_is_the_stuck_one() -> None:
    clock = Clock()
    inflight = JobsInFlight(STUCK_AFTER_SECONDS, clock=clock)
    broker = StubBroker()
    first, second = _message("job-1"), _message("job-2")
    inflight.before_process_message(broker, first)
    clock.now += 5
    inflight.before_process_message(broker, second)
    clock.now += STUCK_AFTER_SECONDS - 5
    assert inflight.stuck() is None  # job-1 has run exactly the bound
    clock.now += 1
    stuck = inflight.stuck()
    assert stuck is not None and stuck.job_id == "job-1" and stuck.running_seconds == 11
    inflight.after_process_message(broker, first, exception=RuntimeError("time limit"))
    assert inflight.stuck() is None  # job-2 has run 6 s
    clock.now += 5
    assert str(inflight.stuck()).startswith("job job-2 has run more than 10 s")
    inflight.after_skip_message(broker, second)
    assert inflight.stuck() is None


@pytest.fixture
def stub_worker() -> Iterator[tuple[StubBroker, Worker, JobsInFlight, Clock]]:
    clock = Clock()
    inflight = JobsInFlight(STUCK_AFTER_SECONDS, clock=clock)
    broker = StubBroker()
    broker.add_middleware(inflight)
    worker = Worker(broker, worker_threads=1, worker_timeout=10)
    yield broker, worker, inflight, clock
    worker.stop()
    broker.close()


def test_a_job_whose_thread_is_stuck_makes_the_worker_unhealthy(
    stub_worker: tuple[StubBroker, Worker, JobsInFlight, Clock],
) -> None:
    broker, worker, inflight, clock = stub_worker
    started, release = threading.Event(), threading.Event()

    def run_job(job_id: str) -> None:
        started.set()
        release.wait(30)  # blocked where Dramatiq's time limit cannot reach it

    actor = dramatiq.actor(broker=broker, queue_name="jobs", max_retries=0)(run_job)
    worker.start()
    try:
        actor.send("job-42")
        assert started.wait(10)
        assert unhealthy(worker, inflight) is None
        clock.now += STUCK_AFTER_SECONDS
        assert unhealthy(worker, inflight) is None
        clock.now += 1
        reason = unhealthy(worker, inflight)
        assert reason is not None and "job job-42 " in reason and "stuck" in reason
    finally:
        release.set()
    broker.join("jobs", timeout=10_000)
    assert unhealthy(worker, inflight) is None  # done: nothing in flight


def test_a_reason_to_restart_lets_the_file_lapse_and_is_logged_once(
    heartbeats: WorkerHeartbeats,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "worker.alive"
    beats: list[None] = []
    beat = heartbeats.beat

    def counted_beat(queue: str, worker: str) -> None:
        beat(queue, worker)
        beats.append(None)

    monkeypatch.setattr(heartbeats, "beat", counted_beat)
    reason: list[str] = []
    stopping = threading.Event()
    thread = heartbeats.keep_beating(
        QUEUE,
        WORKER,
        stopping,
        alive=AliveFile(path),
        unhealthy=lambda: reason[0] if reason else None,
    )
    try:
        assert eventually(lambda: alive(path), 5)
        with caplog.at_level(logging.ERROR, logger="server.jobs.heartbeat"):
            reason.append("job job-42 has run more than 900 s: its thread is stuck")
            assert eventually(lambda: not alive(path), LAPSE_SECONDS + 5)
            frozen, seen = path.stat().st_mtime, len(beats)
            assert eventually(lambda: len(beats) >= seen + 3, 5)  # it beats on, in Redis
        assert path.stat().st_mtime == frozen
        assert heartbeats.count(QUEUE) == 1
    finally:
        stopping.set()
        thread.join(5)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "job job-42 " in errors[0] and "restarted" in errors[0]


def test_a_job_counts_as_stuck_only_past_its_time_limit_and_wind_down() -> None:
    settings = Settings()
    bound = stuck_after_seconds(settings)
    assert bound >= settings.JOB_TIME_LIMIT_SECONDS + STOP_TIMEOUT_SECONDS
    assert bound >= settings.JOB_TIME_LIMIT_SECONDS + settings.TRITON_ROBUST_TIMEOUT_SECONDS
    assert bound == settings.JOB_TIME_LIMIT_SECONDS + settings.TRITON_ROBUST_TIMEOUT_SECONDS
