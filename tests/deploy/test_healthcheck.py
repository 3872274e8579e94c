"""packaging/docker/healthcheck.py, the images' health check, against real sockets."""

from __future__ import annotations

import importlib.util
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType

import pytest

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


def test_worker_is_healthy_when_one_broker_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        urls = f"amqp://u:p@127.0.0.1:{free_port()}/%2F;amqp://u:p@127.0.0.1:{port}/%2F"
        monkeypatch.setenv("SUBTONE_BROKER_URL", urls)
        assert healthcheck.main(["worker"]) == 0


def test_worker_is_unhealthy_when_no_broker_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUBTONE_BROKER_URL", f"amqp://u:p@127.0.0.1:{free_port()}/%2F")
    assert healthcheck.main(["worker"]) == 1


def test_unknown_arguments_are_a_usage_error() -> None:
    assert healthcheck.main(["nonsense"]) == 2
