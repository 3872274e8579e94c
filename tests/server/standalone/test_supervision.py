"""The standalone stack under supervisord: a process killed outright comes back, ready,
with nobody typing a command; ``up`` twice changes nothing; ``down`` leaves no process."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from server.standalone.processes import marked_processes
from subtone.protocol import JobState
from tests.e2e.faults.support import (
    download_result,
    finished,
    job,
    submit_plane,
    wait_until,
)
from tests.planes import expected_patch, random_plane
from tests.stack import rabbit_vhost, running_stack

pytestmark = pytest.mark.integration

BACK_SECONDS = 10.0


def _back_and_ready(stack, name: str, old_pid: int) -> None:
    def ready() -> bool:
        pid = stack.supervisor.pids().get(name)
        if pid is None or pid == old_pid:
            return False
        try:
            return httpx.get(f"{stack.url}/readyz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, f"{name} back and the stack ready", BACK_SECONDS)


def test_each_process_killed_comes_back_ready_and_a_job_in_flight_succeeds(tmp_path):
    with (
        rabbit_vhost() as broker,
        running_stack(
            tmp_path / "stack", broker, JOB_LEASE_SECONDS=2.0, WORKER_HEARTBEAT_SECONDS=3.0
        ) as stack,
    ):
        for name in ("api", "localstore", "triton"):
            old = stack.supervisor.pids()[name]
            os.killpg(old, signal.SIGKILL)  # the test restarts nothing itself
            _back_and_ready(stack, name, old)

        # A plane of 150 MB (a 2.4 GB cover): a job long enough to kill its worker mid-way.
        submitted = submit_plane(stack, random_plane(tmp_path / "cover.plane", 1_200_000_000))
        wait_until(lambda: job(stack, submitted.job_id).state is JobState.RUNNING, "the job to run")
        old = stack.supervisor.pids()["worker"]
        os.killpg(old, signal.SIGKILL)
        _back_and_ready(stack, "worker", old)
        done = finished(stack, submitted.job_id)
        assert done.state is JobState.SUCCEEDED, done
        got = download_result(stack, done, tmp_path / "got.patch").read_bytes()
        assert got == expected_patch(submitted.plane, submitted.k_pos, submitted.payload)


def test_up_twice_changes_nothing_and_down_leaves_no_process(tmp_path):
    with rabbit_vhost() as broker, running_stack(tmp_path / "stack", broker) as stack:
        before = stack.supervisor.pids()
        said: list[str] = []
        stack.supervisor.up(report=said.append)
        assert stack.supervisor.pids() == before
        programs = [line for line in said if not line.startswith("note:")]
        assert programs and all("already running" in line for line in programs), said
        home = stack.supervisor.home
        assert marked_processes(home)
    deadline = time.monotonic() + 10
    while marked_processes(home) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marked_processes(home) == []
