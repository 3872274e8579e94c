"""A worker SIGKILLed mid-job, and Triton stopped mid-job: the job finishes once, bit-exact,
or fails with a code; it never stays "running"."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

import pytest

from server.jobs.tasks import RETRIES_EXHAUSTED
from subtone.protocol import JobState
from tests.e2e.faults.support import (
    download_result,
    finished,
    job,
    kill,
    make_cover,
    open_uploads,
    pid_of,
    record,
    stop,
    submit_embed,
    submit_plane,
    wait_until,
)
from tests.planes import expected_patch, random_plane
from tests.stack import Stack, rabbit_vhost, running_stack

pytestmark = pytest.mark.integration

LONG_JOB_SAMPLES = 1_200_000_000
"""A cover of 2.4 GB of 16-bit audio: its plane (150 MB) makes a job of a few seconds."""


@contextlib.contextmanager
def triton_paused(stack: Stack) -> Iterator[int]:
    """Triton stopped (SIGSTOP) until the block ends: a job started meanwhile waits on it, so
    it is surely mid-flight when the test kills something, however fast the kernel is."""
    pid = pid_of(stack, "triton")
    os.killpg(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGCONT)


def test_a_worker_killed_mid_encode_is_redelivered_and_the_job_completes_once(tmp_path):
    with (
        rabbit_vhost() as broker,
        running_stack(tmp_path / "stack", broker, JOB_LEASE_SECONDS=2.0) as stack,
    ):
        with triton_paused(stack):
            plane = random_plane(tmp_path / "cover.plane", LONG_JOB_SAMPLES)
            submitted = submit_plane(stack, plane)
            wait_until(
                lambda: job(stack, submitted.job_id).state is JobState.RUNNING, "the job to run"
            )
            kill(stack, "worker")  # supervisord starts a new one, with no command typed
            assert job(stack, submitted.job_id).state is JobState.RUNNING  # as the dead one left it
        # The new worker gets the unacknowledged message from RabbitMQ.
        done = finished(stack, submitted.job_id)

        assert done.state is JobState.SUCCEEDED, done
        stored = record(stack, submitted.job_id)
        assert (stored.attempts, stored.lost_runs) == (2, 1)  # one lost run, one that finished
        got = download_result(stack, done, tmp_path / "got.patch").read_bytes()
        assert got == expected_patch(submitted.plane, submitted.k_pos, submitted.payload)
        assert open_uploads(stack) == []  # the killed run's half-written result was aborted
        results = list((stack.settings.localstore_root / "t").rglob("results/*/*"))
        assert [p.parent.name for p in results if p.is_file()].count(submitted.job_id) == 1


def test_triton_stopped_mid_job_is_retried_until_it_is_back(tmp_path):
    settings = {"JOB_MAX_RETRIES": 8, "RETRY_MIN_BACKOFF_SECONDS": 0.5,
                "RETRY_MAX_BACKOFF_SECONDS": 3.0, "TRITON_TIMEOUT_SECONDS": 10.0}  # fmt: skip
    with (
        rabbit_vhost() as broker,
        running_stack(tmp_path / "stack", broker, **settings) as stack,
    ):
        with triton_paused(stack):
            plane = random_plane(tmp_path / "cover.plane", LONG_JOB_SAMPLES)
            submitted = submit_plane(stack, plane)
            wait_until(
                lambda: job(stack, submitted.job_id).state is JobState.RUNNING, "the job to run"
            )
            kill(stack, "triton")  # mid-job, surely; supervisord starts it again
        wait_until(lambda: record(stack, submitted.job_id).attempts >= 2, "a retry")
        done = finished(stack, submitted.job_id)

        assert done.state is JobState.SUCCEEDED, done
        assert record(stack, submitted.job_id).attempts >= 2
        got = download_result(stack, done, tmp_path / "got.patch").read_bytes()
        assert got == expected_patch(submitted.plane, submitted.k_pos, submitted.payload)
        assert open_uploads(stack) == []

        # Triton gone for good: the job fails with its code after the retries, and says why.
        stop(stack, "triton")
        doomed = submit_embed(stack, make_cover(tmp_path / "other.wav", 5, seed=2))
        failed = finished(stack, doomed.job_id, timeout=240)
        assert (failed.state, failed.error and failed.error.code) == (
            JobState.FAILED,
            RETRIES_EXHAUSTED,
        )
        assert "Triton" in failed.error.message
        assert open_uploads(stack) == []
