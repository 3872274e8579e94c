"""scripts/compose-check.sh (run by CI as root, with Docker): what can be checked without it."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import yaml

from tests.deploy.conftest import COMPOSE_DIR, ROOT, run

SCRIPT = ROOT / "scripts" / "compose-check.sh"
CHECK_DIR = ROOT / "scripts" / "compose-check"
OVERRIDE = CHECK_DIR / "docker-compose.check.yml"
SWAPPED = {"rabbitmq", "redis", "minio", "minio-init"}
"""What no registry serves here; the project's own services are never overridden."""


def test_the_script_is_valid_bash() -> None:
    result = run(["bash", "-n", str(SCRIPT)])
    assert result.returncode == 0, result.stderr


def test_the_override_swaps_only_what_cannot_be_pulled() -> None:
    services = yaml.safe_load(OVERRIDE.read_text())["services"]
    assert set(services) <= SWAPPED
    base = yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())["services"]
    for name, service in services.items():
        assert name in base
        assert set(service) <= {"image", "entrypoint", "environment", "healthcheck"}, name


def test_the_project_dockerfiles_get_no_ca_certificates() -> None:
    """The machine's CAs reach only the check's own base image, never the users' Dockerfiles."""
    for dockerfile in (ROOT / "packaging" / "docker").glob("*.Dockerfile"):
        assert not re.search(r"ca-certificates|\bca/|--mount=type=secret", dockerfile.read_text())
    assert "ca/" in (CHECK_DIR / "python.Dockerfile").read_text()


def test_the_script_uses_debians_docker_and_its_own_daemon() -> None:
    text = SCRIPT.read_text()
    assert "DOCKER=/usr/bin/docker" in text
    assert "export DOCKER_HOST=unix://$WORK/docker.sock" in text
    assert 'kill "$DOCKERD_PID"' in text
    assert "pkill" not in text and "killall" not in text


def test_every_pip_install_of_the_stand_ins_is_pinned() -> None:
    lock = (CHECK_DIR / "localstack-requirements.txt").read_text().splitlines()
    pins = [line for line in lock if line and not line.startswith("#")]
    assert pins and all(re.fullmatch(r"[\w.-]+==[\w.+-]+", line) for line in pins)
    assert any(line.startswith("localstack-core==") for line in pins)


# --- scripts/compose-check/jobs.py: the check's questions about jobs, asked of the API ---------

JOBS = [
    {"id": "job_new", "state": "running", "attempts": 1},
    {"id": "job_b", "state": "succeeded", "attempts": 2},
    {"id": "job_a", "state": "succeeded", "attempts": 1},
]


@contextlib.contextmanager
def fake_api(status: int = 200) -> Iterator[str]:
    """``GET /v1/jobs`` and ``GET /v1/jobs/{id}`` answering JOBS (or ``status``) to the token."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            by_id = {job["id"]: job for job in JOBS}
            job_id = self.path.removeprefix("/v1/jobs/")
            if self.headers["Authorization"] != "Bearer tok":
                code, body = 401, {"code": "unauthorized"}
            elif status != 200:
                code, body = status, {"code": "rate_limited"}
            elif self.path == "/v1/jobs":
                code, body = 200, {"jobs": JOBS}
            elif job_id in by_id:
                code, body = 200, by_id[job_id]
            else:
                code, body = 404, {"code": "not_found"}
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def jobs_py(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SUBTONE_URL": url, "SUBTONE_TOKEN": "tok"}
    return subprocess.run(
        [sys.executable, str(CHECK_DIR / "jobs.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_jobs_py_answers_from_the_api(tmp_path: Path) -> None:
    known = tmp_path / "known"
    known.write_text("job_a\njob_b\n")
    with fake_api() as url:
        assert jobs_py(url, "count", "succeeded").stdout == "2\n"
        assert jobs_py(url, "show", "job_b").stdout == "succeeded attempts=2\n"
        assert jobs_py(url, "new", str(known)).stdout == "job_new running attempts=1\n"
        assert jobs_py(url, "wait-running", str(known), "5").stdout == "job_new\n"


def test_jobs_py_fails_with_the_reason_when_the_api_does_not_answer() -> None:
    """Never an empty list or a zero: the check must not read an error as "no jobs"."""
    with fake_api(status=429) as url:
        result = jobs_py(url, "count", "succeeded")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "HTTP 429" in result.stderr


def test_jobs_py_refuses_a_new_job_that_finished_before_it_was_seen_running(
    tmp_path: Path,
) -> None:
    known = tmp_path / "known"
    known.write_text("job_a\n")  # job_b (succeeded) is the oldest new one
    with fake_api() as url:
        result = jobs_py(url, "wait-running", str(known), "5")
    assert result.returncode == 1
    assert "job_b was succeeded attempts=2 before it was seen running" in result.stderr
