"""``subtone standalone up|status|down`` as a person runs them: the whole stack as processes,
on the machine's Redis and RabbitMQ, which ``down`` leaves running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import httpx
import pytest
import redis

from server.standalone.processes import marked_processes
from server.standalone.stack import State
from tests.plugins import ROOT, metadata_dir
from tests.stack import REDIS_URL, distinct_ports

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_status_down_stop_only_what_up_started(tmp_path, rabbit_vhost):
    ports = distinct_ports()
    prefix = f"subtone-test-{uuid.uuid4().hex[:10]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUBTONE_")}
    env.update(
        SUBTONE_DATA_DIR=str(tmp_path / "data"),
        SUBTONE_REDIS_URL=REDIS_URL,
        SUBTONE_REDIS_PREFIX=prefix,
        SUBTONE_BROKER_URL=rabbit_vhost,
        SUBTONE_QUEUE_NAME=f"{prefix}-jobs",
        SUBTONE_CLIENT_CONFIG=str(tmp_path / "client.json"),
        PYTHONPATH=os.pathsep.join([str(ROOT), str(metadata_dir(tmp_path / "meta"))]),
    )

    def subtone(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "desktop.cli", *args],
            env=env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    up = subtone(
        "standalone", "up",
        "--api-port", str(ports.api), "--store-port", str(ports.localstore),
        "--triton-port", str(ports.triton_grpc), "--triton-http-port", str(ports.triton_http),
        "--triton-metrics-port", str(ports.triton_metrics),
    )  # fmt: skip
    home = (tmp_path / "data" / "standalone").resolve()
    state = State.load(home / "state.json")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"Subtone is up at http://127.0.0.1:{ports.api}" in up.stdout
        started = marked_processes(home)
        assert len(started) >= 5  # supervisord and its four programs (and their children)
        assert state.system == []  # the machine's Redis and RabbitMQ were already running
        # The client now points at the stack, with a token of its own that works.
        client = json.loads((tmp_path / "client.json").read_text())
        assert client["server_url"] == f"http://127.0.0.1:{ports.api}"
        jobs = httpx.get(
            f"{client['server_url']}/v1/jobs",
            headers={"Authorization": f"Bearer {client['token']}"},
            timeout=10,
        )
        assert jobs.status_code == 200

        again = subtone("standalone", "up", "--api-port", str(ports.api))
        assert again.returncode == 0 and "already running" in again.stdout

        status = subtone("standalone", "status")  # no ports given: those up used
        assert status.returncode == 0, status.stdout + status.stderr
        assert "ready" in status.stdout and "not ready" not in status.stdout
    finally:
        down = subtone("standalone", "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not any(_alive(pid) for pid in started)
    assert marked_processes(home) == []  # nothing of the stack is left
    assert subtone("standalone", "status").returncode != 0
    assert redis.Redis.from_url(REDIS_URL).ping()  # the machine's services are left alone
    for key in redis.Redis.from_url(REDIS_URL).scan_iter(match=f"{prefix}:*"):
        redis.Redis.from_url(REDIS_URL).delete(key)
