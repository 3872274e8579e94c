"""The JSON logs every server process writes (server.kit.logs)."""

from __future__ import annotations

import io
import json
import logging

import pytest

from server.kit.logs import bound, configure_logging


@pytest.fixture
def lines():
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging("worker", "info", stream=stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_a_line_is_json_with_the_bound_context(lines):
    with bound(trace_id="a" * 32, job_id="job_1"):
        logging.getLogger("server.jobs").info("job %s started", "job_1")
    (line,) = lines()
    assert line["event"] == "job job_1 started" and line["level"] == "info"
    assert (line["trace_id"], line["job_id"], line["process"]) == ("a" * 32, "job_1", "worker")


def test_pika_closing_a_closed_connection_at_shutdown_is_not_an_error_line(lines):
    pika_log = logging.getLogger("pika.adapters.blocking_connection")
    pika_log.error("BlockingConnection.close(200, 'Normal shutdown') called on closed connection.")
    pika_log.error("Connection workflow failed: AMQPConnectionError")
    logging.getLogger("pika").info("connecting")  # pika's INFO chatter stays out
    assert [line["event"] for line in lines()] == [
        "Connection workflow failed: AMQPConnectionError"
    ]
