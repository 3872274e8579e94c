"""SIGTERM to a real worker process in the middle of a job (what a KEDA scale-down, a rollout or
a node drain sends), then a second worker: how much work the second run does again, against
what packaging/k8s/README.md promises an operator."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from server.integrations.broker import BrokerQueue, build_broker
from server.integrations.localstore import LocalStore
from server.jobs.heartbeat import AliveFile, NotAlive
from server.settings import Settings
from server.worker import STOP_TIMEOUT_SECONDS
from subtone.protocol import JobState
from tests.server.worker.support import PAYLOAD, World, cover_bytes, extract

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
K8S_README = REPO / "packaging" / "k8s" / "README.md"
STATED_LOSS = re.compile(r"loses at most (\d+) s of work")
WINDOW_SECONDS = 0.25
"""Each window's time in the stand-in engine: a job of many windows takes seconds."""
COVER_SECONDS = 20.0
WINDOWS_BEFORE_SIGTERM = 4
START_TIMEOUT_SECONDS = 60.0
JOB_TIMEOUT_SECONDS = 120.0
POLL_SECONDS = 0.05


def wait_until(condition: Callable[[], object], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(POLL_SECONDS)


def windows(log: Path) -> dict[str, float]:
    """Window key → seconds it took, as the worker logged them."""
    if not log.exists():
        return {}
    return {key: float(s) for key, s in (line.split() for line in log.read_text().splitlines())}


def stated_loss_seconds() -> int:
    """The most work one stopped worker loses, as packaging/k8s/README.md states it."""
    found = STATED_LOSS.search(" ".join(K8S_README.read_text().split()))
    assert found, "packaging/k8s/README.md no longer states what a stopped worker loses"
    return int(found.group(1))


class WorkerRun:
    """``python -m server.worker`` (Triton replaced by a slow in-process engine that logs each
    window), in its own temporary folder (and so with its own liveness file)."""

    def __init__(self, settings: Settings, folder: Path) -> None:
        folder.mkdir()
        (folder / "tmp").mkdir()
        self.log = folder / "windows.log"
        self.alive = folder / "tmp" / f"subtone-worker-{os.getuid()}.alive"
        env = {
            "PATH": "/usr/bin:/bin",
            "TMPDIR": str(folder / "tmp"),
            "SUBTONE_BROKER_URL": settings.BROKER_URL,
            "SUBTONE_QUEUE_NAME": settings.QUEUE_NAME,
            "SUBTONE_REDIS_URL": settings.REDIS_URL,
            "SUBTONE_REDIS_PREFIX": settings.REDIS_PREFIX,
            "SUBTONE_STORAGE_BACKEND": "local",
            "SUBTONE_LOCALSTORE_ROOT": str(settings.localstore_root),
            "SUBTONE_DATA_DIR": str(settings.DATA_DIR),
            "SUBTONE_WINDOWS_IN_FLIGHT": str(settings.WINDOWS_IN_FLIGHT),
        }
        self.output = (folder / "worker.out").open("wb")
        command = [sys.executable, "-m", "tests.server.worker.windows_worker"]
        self.process = subprocess.Popen(
            [*command, str(self.log), str(WINDOW_SECONDS)],
            env={**env, "PYTHONPATH": str(REPO)},
            cwd=REPO,
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )
        self.out = folder / "worker.out"

    def is_alive(self) -> bool:
        try:
            AliveFile.check(self.alive)
        except NotAlive:
            return False
        return True

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_TIMEOUT_SECONDS)
        finally:
            self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.output.close()


@pytest.fixture
def queue_settings(settings: Settings, rabbit_vhost: str, store: LocalStore) -> Settings:
    return settings.model_copy(
        update={
            "BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{rabbit_vhost}",
            "QUEUE_NAME": f"jobs-{uuid.uuid4().hex[:8]}",
            "LOCALSTORE_ROOT": store.root,
        }
    )


def test_a_worker_stopped_mid_job_costs_at_most_the_stated_work(
    world: World, queue_settings: Settings, tmp_path: Path
) -> None:
    job_id = world.embed_job(cover_bytes(tmp_path, seconds=COVER_SECONDS), PAYLOAD)
    queue = BrokerQueue(build_broker(queue_settings), queue_settings.QUEUE_NAME)
    try:
        queue.enqueue(job_id)
    finally:
        queue.close()

    first = WorkerRun(queue_settings, tmp_path / "first")
    try:
        wait_until(
            lambda: len(windows(first.log)) >= WINDOWS_BEFORE_SIGTERM,
            "the first worker to be in the middle of the job",
            START_TIMEOUT_SECONDS,
        )
        assert first.is_alive()  # its liveness probe passes while it works
        signalled = time.monotonic()
        code = first.stop()
        stopped_in = time.monotonic() - signalled
    finally:
        first.close()
    assert code == 0, first.out.read_text()
    assert not first.alive.exists()
    # It finished the window in flight, handed the job back and left, long before any grace.
    assert stopped_in < STOP_TIMEOUT_SECONDS
    assert world.record(job_id).state is JobState.QUEUED, first.out.read_text()
    done_before = windows(first.log)

    second = WorkerRun(queue_settings, tmp_path / "second")
    try:
        wait_until(
            lambda: world.record(job_id).state.finished, "the second run", JOB_TIMEOUT_SECONDS
        )
    finally:
        second.stop()
    record = world.record(job_id)
    assert record.state is JobState.SUCCEEDED, second.out.read_text()
    assert extract(world.stego(job_id), world.k_pos) == PAYLOAD
    done_after = windows(second.log)

    redone = done_before.keys() & done_after.keys()
    redone_seconds = sum(done_after[key] for key in redone)
    print(
        f"stopped after {len(done_before)} windows ({sum(done_before.values()):.1f} s), "
        f"in {stopped_in:.1f} s; the next run did {len(done_after)} windows, "
        f"{len(redone)} of them again ({redone_seconds:.1f} s)"
    )
    # The second run went on past where the first was stopped.
    assert done_after.keys() - done_before.keys()
    # At most what the first run had done is done again (from the start, today), and that is
    # within what packaging/k8s/README.md tells an operator a stopped worker loses.
    assert len(redone) <= len(done_before)
    assert redone_seconds <= stated_loss_seconds()
