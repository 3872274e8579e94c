"""The worker's own liveness (server.jobs.heartbeat.AliveFile): its heartbeat thread keeps the
file fresh, and the container's probe (``subtone-healthcheck worker``) fails once that thread is
stuck or Dramatiq's threads are not all running: then Kubernetes restarts the worker."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from server.jobs.heartbeat import AliveFile, NotAlive, WorkerHeartbeats

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
        QUEUE, WORKER, stopping, alive=AliveFile(path), healthy=running.is_set
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
