"""The worker's Prometheus metrics (server.jobs.metrics), read from its registry after real
runs: jobs by kind and outcome, run time, queue wait, retries and dead letters by code, bytes."""

from __future__ import annotations

from dataclasses import replace

import dramatiq
import pytest
import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker

from server.integrations.broker import RUN_JOB_ACTOR
from server.integrations.triton import TritonUnavailable
from server.jobs import runner
from server.jobs.metrics import (
    BYTES_PROCESSED,
    DEAD_LETTERS,
    JOB_QUEUE_WAIT,
    JOB_RETRIES,
    JOB_RUN_DURATION,
    JOBS,
    WorkerMetrics,
)
from server.jobs.tasks import RETRIES_EXHAUSTED, JobFailures, TransientFailure
from subtone.protocol import JobKind, JobState
from tests.server.worker.support import (
    PAYLOAD,
    FailingEngine,
    World,
    cover_bytes,
    make_deps,
    plane_of,
    stored,
)

EMBED = JobKind.EMBED.value
EXTRACT = JobKind.EXTRACT.value


def sample(metrics: WorkerMetrics, name: str, **labels: str) -> float:
    """A sample's value in the worker's registry; 0 when the series does not exist."""
    return metrics.registry.get_sample_value(name, labels) or 0.0


def jobs(metrics: WorkerMetrics, kind: str, outcome: str) -> float:
    return sample(metrics, f"{JOBS}_total", kind=kind, outcome=outcome)


def runs(metrics: WorkerMetrics, kind: str, outcome: str) -> float:
    return sample(metrics, f"{JOB_RUN_DURATION}_count", kind=kind, outcome=outcome)


def test_a_succeeded_embed_counts_its_run_its_wait_and_its_bytes(world: World, tmp_path):
    cover = cover_bytes(tmp_path)
    job_id = world.embed_job(cover, PAYLOAD)
    metrics = world.deps.metrics

    runner.run(job_id, deps=world.deps)

    assert world.record(job_id).state is JobState.SUCCEEDED
    assert jobs(metrics, EMBED, "succeeded") == 1
    assert jobs(metrics, EMBED, "failed") == 0
    assert runs(metrics, EMBED, "succeeded") == 1
    assert sample(metrics, f"{JOB_RUN_DURATION}_sum", kind=EMBED, outcome="succeeded") > 0
    assert sample(metrics, f"{JOB_QUEUE_WAIT}_count", kind=EMBED) == 1
    read = len(plane_of(cover)) + len(PAYLOAD)  # the plane and the secret
    assert sample(metrics, f"{BYTES_PROCESSED}_total", kind=EMBED, direction="in") == read
    written = len(stored(world, job_id))  # the patch
    assert sample(metrics, f"{BYTES_PROCESSED}_total", kind=EMBED, direction="out") == written


def test_a_failed_job_counts_as_failed_under_its_kind_with_no_bytes(world: World, tmp_path):
    plane = world.put_plane(cover_bytes(tmp_path))
    job_id = world.job(JobKind.EXTRACT, {"plane": plane}, k_pos_hex="00")  # a bad key
    metrics = world.deps.metrics

    runner.run(job_id, deps=world.deps)

    assert world.record(job_id).state is JobState.FAILED
    assert jobs(metrics, EXTRACT, "failed") == 1
    assert jobs(metrics, EXTRACT, "succeeded") == jobs(metrics, EMBED, "failed") == 0
    assert runs(metrics, EXTRACT, "failed") == 1
    assert sample(metrics, f"{JOB_QUEUE_WAIT}_count", kind=EXTRACT) == 1
    assert sample(metrics, f"{BYTES_PROCESSED}_total", kind=EXTRACT, direction="in") == 0


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (TritonUnavailable("Triton is down (test)"), "triton_unavailable"),
        (redis.ConnectionError("Redis is down (test)"), "redis_unavailable"),
    ],
)
def test_a_transient_error_counts_a_retry_by_its_code(
    settings, redis_client, store, tmp_path, error: Exception, code: str
):
    failing = World(make_deps(settings, redis_client, store, engine=FailingEngine(error)), store)
    job_id = failing.embed_job(cover_bytes(tmp_path), PAYLOAD)
    metrics = failing.deps.metrics

    with pytest.raises(type(error)):
        runner.run(job_id, deps=failing.deps)

    assert sample(metrics, f"{JOB_RETRIES}_total", code=code) == 1
    assert jobs(metrics, EMBED, "retried") == 1
    assert runs(metrics, EMBED, "retried") == 1
    assert jobs(metrics, EMBED, "failed") == jobs(metrics, EMBED, "succeeded") == 0


def test_the_queue_wait_is_observed_on_a_jobs_first_run_only(
    settings, redis_client, store, tmp_path
):
    world = World(make_deps(settings, redis_client, store), store)
    shared = world.deps.metrics
    down = FailingEngine(TritonUnavailable("Triton is down (test)"))
    failing = replace(world.deps, engine=down)  # the same worker, Triton away
    job_id = world.embed_job(cover_bytes(tmp_path), PAYLOAD)

    with pytest.raises(TritonUnavailable):
        runner.run(job_id, deps=failing)
    runner.run(job_id, deps=world.deps)  # the retry

    assert world.record(job_id).state is JobState.SUCCEEDED
    assert sample(shared, f"{JOB_QUEUE_WAIT}_count", kind=EMBED) == 1
    assert (jobs(shared, EMBED, "retried"), jobs(shared, EMBED, "succeeded")) == (1, 1)


def given_up(deps: runner.RunnerDeps, job_id: str, exception: BaseException) -> None:
    """What Dramatiq's middleware does with a message it gives up on (the ``.XQ``)."""
    message = MessageProxy(
        dramatiq.Message(
            queue_name=deps.settings.QUEUE_NAME,
            actor_name=RUN_JOB_ACTOR,
            args=(job_id,),
            kwargs={},
            options={"retries": deps.settings.JOB_MAX_RETRIES},
        )
    )
    message.fail()
    JobFailures(deps).after_process_message(StubBroker(), message, exception=exception)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (TritonUnavailable("Triton is down (test)"), "triton_unavailable"),
        (redis.ConnectionError("Redis is down (test)"), "redis_unavailable"),
    ],
)
def test_a_dead_letter_counts_under_the_code_of_what_failed(
    world: World, tmp_path, error: Exception, code: str
):
    job_id = world.embed_job(cover_bytes(tmp_path), PAYLOAD)
    metrics = world.deps.metrics

    given_up(world.deps, job_id, TransientFailure(error))  # how the actor raises it

    assert sample(metrics, f"{DEAD_LETTERS}_total", code=code) == 1
    assert sample(metrics, f"{DEAD_LETTERS}_total", code="TransientFailure") == 0
    assert world.record(job_id).error_code == RETRIES_EXHAUSTED
