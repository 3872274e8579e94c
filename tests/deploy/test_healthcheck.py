"""packaging/docker/healthcheck.py, the images' health check, against real sockets."""

from __future__ import annotations

import importlib.util
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

from server.jobs.heartbeat import AliveFile, default_alive_file
from tests.deploy.conftest import DOCKER_DIR


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("healthcheck", DOCKER_DIR / "healthcheck.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


healthcheck = load()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path in ("/healthz", "/v2/health/ready") else 503)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_url_is_healthy_when_it_answers_2xx(http_port: int) -> None:
    assert healthcheck.main(["url", f"http://127.0.0.1:{http_port}/v2/health/ready"]) == 0


def test_url_is_unhealthy_when_it_answers_an_error(http_port: int) -> None:
    assert healthcheck.main(["url", f"http://127.0.0.1:{http_port}/other"]) == 1


def test_url_is_unhealthy_when_nothing_listens() -> None:
    assert healthcheck.main(["url", f"http://127.0.0.1:{free_port()}/"]) == 1


def test_api_asks_healthz_on_the_configured_port(
    http_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUBTONE_API_PORT", str(http_port))
    assert healthcheck.main(["api"]) == 0


def test_broker_is_healthy_when_one_broker_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        urls = f"amqp://u:p@127.0.0.1:{free_port()}/%2F;amqp://u:p@127.0.0.1:{port}/%2F"
        monkeypatch.setenv("SUBTONE_BROKER_URL", urls)
        assert healthcheck.main(["broker"]) == 0


def test_broker_is_unhealthy_when_no_broker_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUBTONE_BROKER_URL", f"amqp://u:p@127.0.0.1:{free_port()}/%2F")
    assert healthcheck.main(["broker"]) == 1


def test_worker_is_alive_while_its_liveness_file_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    alive = default_alive_file()
    assert alive.parent == tmp_path
    # No broker anywhere: the liveness check asks nothing over the network.
    monkeypatch.setenv("SUBTONE_BROKER_URL", f"amqp://u:p@127.0.0.1:{free_port()}/%2F")
    assert healthcheck.main(["worker"]) == 1  # not started yet
    AliveFile(alive).alive_for(30)
    assert healthcheck.main(["worker"]) == 0
    AliveFile(alive).alive_for(-1)  # its heartbeat stopped pushing it forward
    assert healthcheck.main(["worker"]) == 1


def test_a_dead_worker_is_told_to_stop_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """compose's check: Docker never restarts an unhealthy container, so the check stops the
    worker (SIGTERM: it hands its job back) and the restart policy starts a new one."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    alive = default_alive_file()
    assert alive.parent == tmp_path
    worker = subprocess.Popen(["sleep", "60"])
    try:
        AliveFile(alive).alive_for(30)
        assert healthcheck.main(["worker", "--stop-if-dead", str(worker.pid)]) == 0
        assert worker.poll() is None
        AliveFile(alive).alive_for(-1)
        assert healthcheck.main(["worker", "--stop-if-dead", str(worker.pid)]) == 1
        assert worker.wait(10) == -signal.SIGTERM
    finally:
        worker.kill()
        worker.wait()


def test_unknown_arguments_are_a_usage_error() -> None:
    assert healthcheck.main(["nonsense"]) == 2
