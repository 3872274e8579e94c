"""One run of a job at a time, and jobs whose worker died: the lease, lost runs, the reaper."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from server.integrations.broker import QueueUnavailable
from server.jobs import lease, runner
from server.jobs.lease import JobLeases
from server.jobs.progress import JobInterrupted
from server.jobs.reaper import Reaper
from server.jobs.repository import WORKER_LOST
from server.kit import logs
from server.kit.clock import utcnow
from subtone.protocol import JobState
from tests.server.worker.support import (
    PAYLOAD,
    TENANT,
    CountingEngine,
    SlowEngine,
    World,
    cover_bytes,
    extract,
    make_deps,
)

MAX_LOST_RUNS = 3
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
LOST_LEASE = "lost its lease"


def crashed_run(world: World, job_id: str, *, lease_seconds: float | None = None) -> None:
    """What a worker killed mid-job leaves: the job ``running`` and (maybe) its lease."""
    assert world.deps.jobs.start(job_id, max_lost_runs=MAX_LOST_RUNS) is not None
    if lease_seconds is not None:
        key = f"{world.deps.settings.REDIS_PREFIX}:lease:{job_id}"
        world.deps.jobs._redis.set(key, "a-dead-worker", px=int(lease_seconds * 1000))


def test_two_deliveries_at_once_run_the_job_once(settings, redis_client, store, tmp_path):
    engine = CountingEngine()
    world = World(make_deps(settings, redis_client, store, engine=engine), store)
    alone = CountingEngine(0.0)
    solo = World(make_deps(settings, redis_client, store, engine=alone), store)
    cover = cover_bytes(tmp_path, seconds=8.0)
    runner.run(solo.embed_job(cover, PAYLOAD), deps=solo.deps)  # how many windows one run takes

    job_id = world.embed_job(cover, PAYLOAD)
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            runner.run(job_id, deps=world.deps)
        except BaseException as e:
            errors.append(e)

    deliveries = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in deliveries:
        thread.start()
    for thread in deliveries:
        thread.join(60)

    assert errors == []
    record = world.record(job_id)
    assert (record.state, record.attempts, record.lost_runs) == (JobState.SUCCEEDED, 1, 0)
    assert engine.windows == alone.windows  # the second delivery ran nothing
    assert len(world.result_files(job_id)) == 1
    assert extract(world.stego(job_id), world.k_pos) == PAYLOAD
    assert world.leftovers() == []


def test_a_job_whose_worker_died_is_taken_over_once_its_lease_lapses(world, tmp_path):
    job_id = world.embed_job(cover_bytes(tmp_path), PAYLOAD)
    crashed_run(world, job_id, lease_seconds=0.5)

    runner.run(job_id, deps=world.deps)  # RabbitMQ's redelivery

    record = world.record(job_id)
    assert (record.state, record.attempts, record.lost_runs) == (JobState.SUCCEEDED, 2, 1)
    assert extract(world.stego(job_id), world.k_pos) == PAYLOAD


def test_a_job_that_keeps_killing_its_worker_fails_worker_lost(world, tmp_path):
    job_id = world.embed_job(cover_bytes(tmp_path), PAYLOAD)
    for _ in range(MAX_LOST_RUNS):
        crashed_run(world, job_id)

    runner.run(job_id, deps=world.deps)  # the delivery after the last crash

    record = world.record(job_id)
    assert (record.state, record.error_code) == (JobState.FAILED, WORKER_LOST)
    assert f"{MAX_LOST_RUNS} times" in (record.error_message or "")
    assert world.result_files(job_id) == []


def test_a_delivery_waiting_for_the_lease_hands_back_when_the_worker_stops(world, tmp_path):
    job_id = world.embed_job(cover_bytes(tmp_path), PAYLOAD)
    crashed_run(world, job_id, lease_seconds=60)
    threading.Timer(0.3, world.deps.stopping.set).start()

    with pytest.raises(JobInterrupted):
        runner.run(job_id, deps=world.deps)

    assert world.record(job_id).state is JobState.RUNNING  # untouched: the next worker decides


# -- the keeper's log lines --------------------------------------------------------------------


def wait_for_line(lines: Callable[[], list[dict[str, object]]], text: str) -> dict[str, object]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [line for line in lines() if text in str(line["event"])]
        if found:
            return found[0]
        time.sleep(0.02)
    raise AssertionError(f"no log line with {text!r} in {lines()}")


def test_the_lease_keepers_log_lines_carry_the_jobs_trace(redis_client, prefix, log_lines):
    leases = JobLeases(redis_client, prefix=prefix, ttl_seconds=0.3)
    with (
        logs.bound(trace_id=TRACE, job_id="job_x"),
        leases.hold("job_x", stopping=threading.Event(), finished=lambda: False) as held,
    ):
        assert held
        redis_client.delete(f"{prefix}:lease:job_x")  # lost: the keeper's renewal says so
        line = wait_for_line(log_lines, LOST_LEASE)

    assert (line["level"], line["thread"]) == ("error", lease.THREAD_NAME)
    assert (line["trace_id"], line["job_id"]) == (TRACE, "job_x")


def test_a_run_the_reaper_sent_logs_the_jobs_own_trace_from_the_lease_keeper(
    settings, redis_client, store, tmp_path, log_lines
):
    """A message without a trace id (the reaper's) runs under the trace stored on the job,
    in the keeper thread too, which starts before the job is loaded."""
    lost = threading.Event()

    def lose_the_lease() -> None:
        if not lost.is_set():
            lost.set()
            redis_client.delete(f"{settings.REDIS_PREFIX}:lease:{job_id}")
            wait_for_line(log_lines, LOST_LEASE)

    world = World(
        make_deps(settings, redis_client, store, engine=SlowEngine(0.0, lose_the_lease)), store
    )
    job_id = world.embed_job(cover_bytes(tmp_path), PAYLOAD, trace_id=TRACE)

    runner.run(job_id, deps=world.deps)  # no trace bound: as the reaper's message runs

    line = wait_for_line(log_lines, LOST_LEASE)
    assert line["thread"] == lease.THREAD_NAME
    assert (line["trace_id"], line["job_id"], line["tenant_id"]) == (TRACE, job_id, TENANT)
    assert world.record(job_id).state is JobState.SUCCEEDED  # carrying on is safe


# -- the reaper --------------------------------------------------------------------------------


class Sent:
    def __init__(self, fail: bool = False) -> None:
        self.ids: list[str] = []
        self.fail = fail

    def __call__(self, job_id: str) -> None:
        if self.fail:
            raise QueueUnavailable("RabbitMQ is not reachable (test)")
        self.ids.append(job_id)


def reaper(world: World, send: Sent, *, later_seconds: float = 0.0) -> Reaper:
    """A reaper whose clock runs ``later_seconds`` ahead (stale after 10 s)."""
    return Reaper(
        world.deps.jobs,
        world.deps.leases,
        send,
        stale_seconds=10,
        max_lost_runs=MAX_LOST_RUNS,
        clock=lambda: utcnow() + timedelta(seconds=later_seconds),
    )


def test_the_reaper_sends_again_a_running_job_that_lost_its_worker_and_message(world, tmp_path):
    job_id = world.embed_job(cover_bytes(tmp_path), PAYLOAD)
    crashed_run(world, job_id)
    send = Sent()

    assert reaper(world, send).sweep() == []  # not stale yet
    assert reaper(world, send, later_seconds=60).sweep() == [job_id]

    record = world.record(job_id)
    assert (record.state, record.lost_runs) == (JobState.QUEUED, 1)
    assert send.ids == [job_id]
    assert reaper(world, send, later_seconds=60).sweep() == []  # queued now, not sent twice

    runner.run(job_id, deps=world.deps)  # the message the reaper sent
    assert world.record(job_id).state is JobState.SUCCEEDED
    assert extract(world.stego(job_id), world.k_pos) == PAYLOAD


def test_the_reaper_leaves_a_job_whose_run_holds_its_lease(world, tmp_path):
    job_id = world.embed_job(cover_bytes(tmp_path), PAYLOAD)
    crashed_run(world, job_id, lease_seconds=60)  # alive, only its heartbeat is late
    send = Sent()

    assert reaper(world, send, later_seconds=60).sweep() == []
    assert world.record(job_id).state is JobState.RUNNING


def test_the_reaper_fails_a_job_that_lost_too_many_workers(world, tmp_path):
    job_id = world.embed_job(cover_bytes(tmp_path), PAYLOAD)
    for _ in range(MAX_LOST_RUNS):
        crashed_run(world, job_id)
        reaper(world, Sent(), later_seconds=60).sweep()

    record = world.record(job_id)
    assert (record.state, record.error_code) == (JobState.FAILED, WORKER_LOST)


def test_a_job_the_reaper_could_not_send_is_tried_again_later(world, tmp_path):
    job_id = world.embed_job(cover_bytes(tmp_path), PAYLOAD)
    crashed_run(world, job_id)

    assert reaper(world, Sent(fail=True), later_seconds=60).sweep() == []
    record = world.record(job_id)
    assert (record.state, record.lost_runs) == (JobState.RUNNING, 0)

    send = Sent()
    assert reaper(world, send, later_seconds=60).sweep() == [job_id]
    assert send.ids == [job_id]


def test_a_run_aborts_the_result_upload_its_killed_predecessor_left(world, tmp_path):
    job_id = world.embed_job(cover_bytes(tmp_path), PAYLOAD)
    crashed_run(world, job_id)
    key = runner.result_key(world.record(job_id))
    orphan = world.store.create_multipart(key, "audio/wav")  # what the dead run was writing
    world.store.upload_part(key, orphan, 1, b"half a result")
    unrelated = world.store.create_multipart(key + ".other", "audio/wav")

    runner.run(job_id, deps=world.deps)

    assert world.record(job_id).state is JobState.SUCCEEDED
    assert [u.upload_id for u in world.store.list_multipart_uploads(key)] == [unrelated]
    assert extract(world.stego(job_id), world.k_pos) == PAYLOAD
