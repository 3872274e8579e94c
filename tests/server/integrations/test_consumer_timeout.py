"""RabbitMQ's consumer timeout against the job time limit: the verdict on what was read (pure),
what is read of the machine's RabbitMQ (3.10 here: it ignores the queue's argument), and what
the worker does with it."""

from __future__ import annotations

import logging
import shutil

import pytest

from server.integrations.consumer_timeout import (
    BrokerFacts,
    VerdictLevel,
    assess,
    broker_version,
    check_consumer_timeout,
    global_consumer_timeout_ms,
)
from server.settings import BrokerTimeoutCheck, Settings
from server.worker import broker_timeout_allows_jobs

BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
HOUR_MS = 3600 * 1000
needs_rabbitmq = pytest.mark.skipif(
    shutil.which("rabbitmqctl") is None, reason="no RabbitMQ on this machine"
)


def _verdict(facts: BrokerFacts, job_limit: int = 7200) -> VerdictLevel:
    return assess(facts, job_limit_seconds=job_limit, queue_timeout_seconds=10800).level


@pytest.mark.parametrize(
    ("facts", "level"),
    [
        (BrokerFacts("3.13.7", None), VerdictLevel.OK),  # honours x-consumer-timeout
        (BrokerFacts("3.12.0", 1000, True), VerdictLevel.OK),
        (BrokerFacts("3.10.8", 30 * 60 * 1000, True), VerdictLevel.TOO_SHORT),
        (BrokerFacts("3.10.8", 2 * HOUR_MS, True), VerdictLevel.TOO_SHORT),  # equal: too short
        (BrokerFacts("3.10.8", 3 * HOUR_MS, True), VerdictLevel.OK),
        (BrokerFacts("3.11.2", None, True), VerdictLevel.OK),  # disabled
        (BrokerFacts("3.10.8", None, False), VerdictLevel.UNKNOWN),  # not readable from here
        (BrokerFacts(None, None), VerdictLevel.UNKNOWN),
    ],
)
def test_the_verdict(facts: BrokerFacts, level: VerdictLevel) -> None:
    assert _verdict(facts) is level


def test_a_too_short_verdict_says_what_to_change() -> None:
    verdict = assess(
        BrokerFacts("3.10.8", 1_800_000, True), job_limit_seconds=7200, queue_timeout_seconds=10800
    )
    assert "3.10.8" in verdict.message and "1800 s" in verdict.message
    assert "consumer_timeout = 10800000" in verdict.message
    assert "SUBTONE_JOB_TIME_LIMIT_SECONDS" in verdict.message


@needs_rabbitmq
def test_the_version_and_the_global_timeout_are_read_from_the_machines_rabbitmq() -> None:
    version = broker_version(BROKER_URL)
    assert version is not None and version[0].isdigit()
    read, timeout_ms = global_consumer_timeout_ms(BROKER_URL)
    assert read and (timeout_ms is None or timeout_ms > 0)
    # A broker on another machine: rabbitmqctl here would read the wrong one.
    assert global_consumer_timeout_ms("amqp://guest:guest@rabbitmq.example:5672/%2F") == (
        False,
        None,
    )


def test_a_broker_that_does_not_answer_is_unknown() -> None:
    verdict = check_consumer_timeout(
        "amqp://guest:guest@127.0.0.1:1/%2F", job_limit_seconds=60, queue_timeout_seconds=120
    )
    assert verdict.level is VerdictLevel.UNKNOWN


def _machine_timeout_seconds() -> int:
    version = broker_version(BROKER_URL) or ""
    if tuple(int(p) for p in version.split(".")[:2]) >= (3, 12):
        pytest.skip(f"RabbitMQ {version} honours the queue's timeout")
    read, timeout_ms = global_consumer_timeout_ms(BROKER_URL)
    if not read or timeout_ms is None:
        pytest.skip("the machine's RabbitMQ has no global consumer_timeout")
    return timeout_ms // 1000


@needs_rabbitmq
@pytest.mark.parametrize(
    ("check", "starts"), [(BrokerTimeoutCheck.WARN, True), (BrokerTimeoutCheck.REFUSE, False)]
)
def test_the_worker_on_a_broker_that_would_run_jobs_twice(
    tmp_path, caplog: pytest.LogCaptureFixture, check: BrokerTimeoutCheck, starts: bool
) -> None:
    limit = _machine_timeout_seconds()  # not below the broker's timeout
    settings = Settings(
        DATA_DIR=tmp_path,
        BROKER_URL=BROKER_URL,
        JOB_TIME_LIMIT_SECONDS=limit,
        CONSUMER_TIMEOUT_SECONDS=limit + 60,
        BROKER_TIMEOUT_CHECK=check,
    )
    with caplog.at_level(logging.INFO, logger="server.worker"):
        assert broker_timeout_allows_jobs(settings) is starts
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "run twice" in errors[0].getMessage()


@needs_rabbitmq
def test_the_worker_starts_quietly_when_the_broker_covers_the_limit(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    limit = _machine_timeout_seconds() - 60
    settings = Settings(
        DATA_DIR=tmp_path,
        BROKER_URL=BROKER_URL,
        JOB_TIME_LIMIT_SECONDS=limit,
        CONSUMER_TIMEOUT_SECONDS=limit + 120,
        BROKER_TIMEOUT_CHECK=BrokerTimeoutCheck.REFUSE,
    )
    with caplog.at_level(logging.INFO, logger="server.worker"):
        assert broker_timeout_allows_jobs(settings)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
