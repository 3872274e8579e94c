"""The worker on real services: RabbitMQ (a vhost of our own), the machine's Redis (a key prefix
of our own), a local folder store and a real tritonserver."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from dramatiq.common import dq_name, xq_name

from server.integrations.broker import BrokerQueue, build_broker
from server.integrations.localstore import LocalStore
from server.integrations.triton import TritonEngine
from server.jobs import runner
from server.jobs.metrics import DEAD_LETTERS, JOB_RETRIES, JOBS
from server.jobs.repository import JobRecord
from server.jobs.runner import RunnerDeps
from server.settings import Settings
from server.standalone.tritonserver import MODEL_REPOSITORY, TritonProcess, free_port
from server.worker import build_worker
from subtone.protocol import JobKind, JobState
from tests.server.worker.support import (
    PAYLOAD,
    CountingEngine,
    SlowEngine,
    World,
    cover_bytes,
    extract,
    make_deps,
    rabbitmqctl_rows,
    stored,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
JOB_TIMEOUT_SECONDS = 90.0
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
POLL_SECONDS = 0.1
TRITON_TIMEOUT_SECONDS = 30.0
MAX_RETRIES = 2
EMBED = JobKind.EMBED.value


@pytest.fixture(scope="module")
def triton() -> Iterator[TritonProcess]:
    with TritonProcess(MODEL_REPOSITORY) as server:
        yield server


@pytest.fixture
def queue_settings(settings: Settings, rabbit_vhost: str, store: LocalStore) -> Settings:
    return settings.model_copy(
        update={
            "BROKER_URL": f"amqp://guest:guest@127.0.0.1:5672/{rabbit_vhost}",
            "QUEUE_NAME": f"jobs-{uuid.uuid4().hex[:8]}",
            "LOCALSTORE_ROOT": store.root,
            "JOB_MAX_RETRIES": MAX_RETRIES,
            "RETRY_MIN_BACKOFF_SECONDS": 0.01,
            "RETRY_MAX_BACKOFF_SECONDS": 0.05,
        }
    )


@pytest.fixture
def sender(queue_settings: Settings) -> Iterator[BrokerQueue]:
    """The API's side of the queue."""
    queue = BrokerQueue(build_broker(queue_settings), queue_settings.QUEUE_NAME)
    yield queue
    queue.close()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = JOB_TIMEOUT_SECONDS):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(POLL_SECONDS)


def counted(deps: RunnerDeps, name: str, **labels: str) -> float:
    """A sample of the worker's metrics (0 when the series does not exist)."""
    return deps.metrics.registry.get_sample_value(name, labels) or 0.0


def finished(world: World, job_id: str) -> JobRecord:
    wait_until(lambda: world.record(job_id).state.finished, f"job {job_id} to finish")
    return world.record(job_id)


def message_count(settings: Settings, queue_name: str) -> int:
    broker = build_broker(settings)
    try:
        frame = broker.channel.queue_declare(queue=queue_name, passive=True)
        return int(frame.method.message_count)
    finally:
        broker.close()


class InProcessWorker:
    """A Dramatiq worker in this process, on its own broker connection."""

    def __init__(self, settings: Settings, deps: RunnerDeps) -> None:
        self.broker = build_broker(settings)
        self.worker = build_worker(self.broker, settings, deps)
        self.deps = deps

    def __enter__(self) -> InProcessWorker:
        self.worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.deps.stopping.set()
        self.worker.stop(timeout=int(STOP_TIMEOUT_SECONDS * 1000))
        self.broker.close()


# -- the worker process ----------------------------------------------------------------------


def worker_env(settings: Settings, triton: TritonProcess) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUBTONE_")}
    env.update(
        SUBTONE_BROKER_URL=settings.BROKER_URL,
        SUBTONE_QUEUE_NAME=settings.QUEUE_NAME,
        SUBTONE_REDIS_URL=settings.REDIS_URL,
        SUBTONE_REDIS_PREFIX=settings.REDIS_PREFIX,
        SUBTONE_TRITON_URL=triton.grpc_url,
        SUBTONE_STORAGE_BACKEND="local",
        SUBTONE_LOCALSTORE_ROOT=str(settings.localstore_root),
        SUBTONE_DATA_DIR=str(settings.DATA_DIR),
    )
    return env


def consumers(vhost: str) -> dict[str, str]:
    """Queue name → prefetch count of the consumers on the vhost."""
    rows = rabbitmqctl_rows(vhost, "list_consumers", "queue_name", "prefetch_count")
    return {row[0]: row[1] for row in rows}


def test_the_worker_process_runs_queued_jobs_and_stops_on_sigterm(
    world, queue_settings, rabbit_vhost, triton, sender, tmp_path
):
    queue = queue_settings.QUEUE_NAME
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "server.worker"],
            env=worker_env(queue_settings, triton),
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: queue in consumers(rabbit_vhost), "the worker to consume", 60)
        # One message per worker thread: a long job never holds a second one.
        assert consumers(rabbit_vhost)[queue] == "1"
        arguments = dict(rabbitmqctl_rows(rabbit_vhost, "list_queues", "name", "arguments"))
        assert '"x-consumer-timeout"' in arguments[queue]

        cover = cover_bytes(tmp_path, seconds=4.0)
        embed = world.embed_job(cover, PAYLOAD)
        sender.enqueue(embed)
        record = finished(world, embed)
        assert record.state is JobState.SUCCEEDED, (record, log.read_text())
        result = world.stego(embed)
        assert extract(result, world.k_pos) == PAYLOAD

        extract_id = world.extract_job(result)
        sender.enqueue(extract_id)
        assert finished(world, extract_id).state is JobState.SUCCEEDED
        assert stored(world, extract_id) == PAYLOAD
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    assert code == 0, log.read_text()
    assert "worker stopping" in log.read_text()
    assert world.k_pos.hex() not in log.read_text()


# -- retries and the dead-letter queue ---------------------------------------------------------


def test_a_job_whose_triton_is_unreachable_ends_retries_exhausted_in_the_dlq(
    world, queue_settings, redis_client, store, sender, tmp_path, caplog
):
    down = TritonEngine(f"127.0.0.1:{free_port()}", timeout_seconds=2.0)
    deps = make_deps(queue_settings, redis_client, store, engine=down)
    job_id = world.embed_job(cover_bytes(tmp_path), PAYLOAD)

    with InProcessWorker(queue_settings, deps), caplog.at_level(logging.INFO):
        sender.enqueue(job_id)
        record = finished(world, job_id)
        wait_until(
            lambda: message_count(queue_settings, xq_name(queue_settings.QUEUE_NAME)) == 1,
            "the message in the dead-letter queue",
            10,
        )
    down.close()

    assert (record.state, record.error_code) == (JobState.FAILED, "retries_exhausted")
    assert record.attempts == MAX_RETRIES + 1
    assert "Triton" in (record.error_message or "")
    assert f"tried {MAX_RETRIES + 1} times" in (record.error_message or "")
    # Each expected, retried failure is one WARNING line, with no traceback and no ERROR.
    retried = [r for r in caplog.records if "transient error" in r.getMessage()]
    assert len(retried) == MAX_RETRIES + 1
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in retried)
    assert not [r for r in caplog.records if r.exc_info is not None], caplog.text
    assert not [r for r in caplog.records if "unhandled exception" in r.getMessage()]
    assert message_count(queue_settings, queue_settings.QUEUE_NAME) == 0
    assert message_count(queue_settings, dq_name(queue_settings.QUEUE_NAME)) == 0
    assert world.leftovers() == []
    # Each run counted a retry, and the message given up a dead letter, under Triton's code.
    assert counted(deps, f"{JOB_RETRIES}_total", code="triton_unavailable") == MAX_RETRIES + 1
    assert counted(deps, f"{JOBS}_total", kind=EMBED, outcome="retried") == MAX_RETRIES + 1
    assert counted(deps, f"{DEAD_LETTERS}_total", code="triton_unavailable") == 1


# -- the same job delivered twice -------------------------------------------------------------


def messages(vhost: str, queue: str) -> int:
    """Messages in the queue, ready or delivered and not yet acknowledged."""
    return int(dict(rabbitmqctl_rows(vhost, "list_queues", "name", "messages"))[queue])


def test_a_job_delivered_twice_at_once_runs_once_and_both_deliveries_are_acked(
    world, queue_settings, rabbit_vhost, redis_client, store, sender, tmp_path, caplog
):
    two = queue_settings.model_copy(update={"WORKER_CONCURRENCY": 2})
    engine = CountingEngine(0.05)
    alone = CountingEngine(0.0)
    cover = cover_bytes(tmp_path, seconds=8.0)
    solo = World(make_deps(two, redis_client, store, engine=alone), store)
    runner.run(solo.embed_job(cover, PAYLOAD), deps=solo.deps)
    job_id = world.embed_job(cover, PAYLOAD)

    with (
        caplog.at_level(logging.INFO, logger="server.jobs"),
        InProcessWorker(two, make_deps(two, redis_client, store, engine=engine)),
    ):
        sender.enqueue(job_id)
        sender.enqueue(job_id)  # e.g. a publish retried after its confirm timed out
        record = finished(world, job_id)
        wait_until(lambda: messages(rabbit_vhost, two.QUEUE_NAME) == 0, "both acks", 30)

    assert "being run by another delivery" in caplog.text  # the two overlapped
    assert (record.state, record.attempts) == (JobState.SUCCEEDED, 1)
    assert engine.windows == alone.windows
    assert len(world.result_files(job_id)) == 1
    assert extract(world.stego(job_id), world.k_pos) == PAYLOAD
    assert world.leftovers() == []


# -- shutdown and the time limit ---------------------------------------------------------------


def test_a_stopping_worker_hands_its_job_back_and_the_next_one_finishes_it(
    world, queue_settings, redis_client, store, sender, tmp_path, caplog
):
    job_id = world.embed_job(cover_bytes(tmp_path, seconds=20.0), PAYLOAD)
    slow = make_deps(queue_settings, redis_client, store, engine=SlowEngine(0.2))

    # Leaving the worker's block is the SIGTERM path: the stop flag, then Worker.stop().
    with caplog.at_level(logging.INFO, logger="server.jobs"), InProcessWorker(queue_settings, slow):
        sender.enqueue(job_id)
        wait_until(lambda: world.record(job_id).progress > 0, "the job to make progress")

    assert "interrupted by the worker's shutdown" in caplog.text
    assert world.record(job_id).state is JobState.QUEUED
    assert message_count(queue_settings, queue_settings.QUEUE_NAME) == 1
    assert world.leftovers() == []

    with InProcessWorker(queue_settings, make_deps(queue_settings, redis_client, store)):
        record = finished(world, job_id)
    assert (record.state, record.attempts) == (JobState.SUCCEEDED, 2)
    assert extract(world.stego(job_id), world.k_pos) == PAYLOAD


def test_a_job_over_the_time_limit_fails_and_is_not_retried(
    world, queue_settings, redis_client: redis.Redis, store, sender, tmp_path
):
    limited = queue_settings.model_copy(update={"JOB_TIME_LIMIT_SECONDS": 1})
    deps = make_deps(limited, redis_client, store, engine=SlowEngine(2.5))
    job_id = world.embed_job(cover_bytes(tmp_path), PAYLOAD)

    with InProcessWorker(limited, deps):
        sender.enqueue(job_id)
        record = finished(world, job_id)

    assert (record.state, record.error_code) == (JobState.FAILED, "time_limit_exceeded")
    assert record.attempts == 1
    assert message_count(limited, xq_name(limited.QUEUE_NAME)) == 0
    assert world.leftovers() == []
    assert counted(deps, f"{DEAD_LETTERS}_total", code="time_limit_exceeded") == 1
    assert counted(deps, f"{JOBS}_total", kind=EMBED, outcome="failed") == 1
