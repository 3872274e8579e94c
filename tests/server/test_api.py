"""``python -m server.api`` with two API processes behind one port: ``/metrics`` counts every
process's requests (prometheus-client's multiprocess mode), whichever process answers it.

The API runs as it does in production, on the machine's Redis (a key prefix of its own) and
RabbitMQ (a vhost of its own). Which process served a request is read from its access line:
each line is JSON with the process's ``pid`` and the request's trace id, which the test sets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from server.metrics import REQUEST_DURATION
from server.standalone.private import LOCAL_REDIS_URL, free_ports, rabbit_vhost, unique_name
from server.standalone.programs import port_open
from subtone.tracing import REQUEST_ID_HEADER, new_trace_id
from tests.servers import answers, stop, wait_for

REPO = Path(__file__).resolve().parents[2]
PROCESSES = 2
ROUTE = "/version"
"""The route whose requests are counted (it needs no token and touches nothing)."""
BATCH = 40
"""Requests sent at once, each on a connection of its own, so that both processes accept."""
MAX_REQUESTS = 2000
SETTLE_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 15.0
PARALLEL = 8


@dataclass
class Api:
    url: str
    log: Path

    def access_lines(self) -> list[dict[str, object]]:
        """The access lines logged so far (one per request, by the process that served it)."""
        found = []
        for text in self.log.read_text(errors="replace").splitlines():
            try:
                line = json.loads(text)
            except ValueError:
                continue
            if isinstance(line, dict) and line.get("logger") == "server.access":
                found.append(line)
        return found

    def pids(self, event: str, trace_ids: set[str] | None = None) -> set[int]:
        """The processes that logged ``event`` (of these traces' requests, when given)."""
        return {
            int(str(line["pid"]))
            for line in self.access_lines()
            if line["event"] == event and (trace_ids is None or line["trace_id"] in trace_ids)
        }

    def get(self, path: str, trace_id: str | None = None) -> httpx.Response:
        """One request on a connection of its own."""
        headers = {REQUEST_ID_HEADER: trace_id} if trace_id else {}
        response = httpx.get(f"{self.url}{path}", headers=headers, timeout=10.0)
        assert response.status_code == 200, response.text
        return response


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    if not (port_open("127.0.0.1", 6379) and port_open("127.0.0.1", 5672)):
        pytest.skip("no Redis on 127.0.0.1:6379 or no RabbitMQ on 127.0.0.1:5672")
    (port,) = free_ports(1)
    prefix = unique_name("subtone-test-api")
    log = tmp_path / "api.log"
    with rabbit_vhost("subtone-test-api") as broker_url:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SUBTONE_") and k != "PROMETHEUS_MULTIPROC_DIR"
        }
        env.update(
            SUBTONE_API_WORKERS=str(PROCESSES),
            SUBTONE_API_PORT=str(port),
            SUBTONE_DATA_DIR=str(tmp_path / "data"),
            SUBTONE_REDIS_URL=LOCAL_REDIS_URL,
            SUBTONE_REDIS_PREFIX=prefix,
            SUBTONE_BROKER_URL=broker_url,
            SUBTONE_QUEUE_NAME=f"{prefix}-jobs",
            SUBTONE_STORAGE_BACKEND="local",
            SUBTONE_LOG_LEVEL="INFO",
        )
        with log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "server.api"], cwd=REPO, env=env, stdout=out, stderr=out
            )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda: answers(f"{url}/healthz"), process, log, "the API")
            yield Api(url, log)
        finally:
            _stop(process)
            client = redis.Redis.from_url(LOCAL_REDIS_URL)
            for key in client.scan_iter(match=f"{prefix}:*", count=1000):
                client.delete(key)
            client.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the API and every process it started (uvicorn stops its own on SIGTERM)."""
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    stop(process)
    _, alive = psutil.wait_procs(children, timeout=STOP_TIMEOUT_SECONDS)
    for child in alive:
        child.kill()


def counted(text: str, route: str) -> float:
    """The requests to ``route`` that ``/metrics`` reports, every status added up."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == REQUEST_DURATION
        for sample in family.samples
        if sample.name == f"{REQUEST_DURATION}_count" and sample.labels["route"] == route
    )


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + SETTLE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_metrics_add_up_every_processs_requests_whichever_answers(api: Api):
    # N requests, in batches on connections of their own, until both processes served some.
    sent = 0
    with ThreadPoolExecutor(PARALLEL) as pool:
        while len(api.pids(f"GET {ROUTE} 200")) < PROCESSES and sent < MAX_REQUESTS:
            list(pool.map(lambda _: api.get(ROUTE), range(BATCH)))
            sent += BATCH
            time.sleep(0.1)  # their access lines are written once each answer has gone
    assert len(api.pids(f"GET {ROUTE} 200")) == PROCESSES, f"one process served all {sent}"

    # A process records a request once its answer has gone: wait for the last ones.
    until(lambda: counted(api.get("/metrics").text, ROUTE) == sent, f"{sent} requests counted")

    # Ask again until each process has answered /metrics: each answer counts all N.
    answered: dict[str, float] = {}
    with ThreadPoolExecutor(PARALLEL) as pool:
        while len(api.pids("GET /metrics 200", set(answered))) < PROCESSES:
            assert len(answered) < MAX_REQUESTS, "one process answered every /metrics"
            traces = [new_trace_id() for _ in range(PARALLEL)]
            for trace, response in zip(
                traces, pool.map(lambda t: api.get("/metrics", t), traces), strict=True
            ):
                answered[trace] = counted(response.text, ROUTE)
            time.sleep(0.1)

    assert set(answered.values()) == {sent}
