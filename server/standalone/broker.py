"""The broker's ``consumer_timeout``, checked (and on a RabbitMQ the stack runs, raised) by
``up``: RabbitMQ before 3.12 ignores our queue's ``x-consumer-timeout`` and applies its
global ``consumer_timeout`` (30 min by default), so a longer job would be redelivered
mid-run."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Final

from server.integrations.consumer_timeout import (
    VerdictLevel,
    check_consumer_timeout,
    global_consumer_timeout_ms,
)
from server.settings import Settings
from server.standalone.processes import run_or_explain

__all__ = ["ensure_consumer_timeout", "rabbitmq_consumer_timeout_ms"]

RABBITMQ_START_TIMEOUT_SECONDS: Final = 90


def rabbitmq_consumer_timeout_ms() -> int | None:
    """The local RabbitMQ's global ``consumer_timeout`` (ms), or None when it cannot be read
    (no rabbitmqctl, not allowed, not running) or is disabled."""
    return global_consumer_timeout_ms()[1]


def ensure_consumer_timeout(
    settings: Settings, report: Callable[[str], None], *, owned: bool
) -> None:
    """On a RabbitMQ the stack runs (``owned``), wait for it to start and raise its
    ``consumer_timeout`` to the settings'; on the machine's own, say when it is too short."""
    wanted = settings.CONSUMER_TIMEOUT_SECONDS * 1000
    if owned:
        ctl = shutil.which("rabbitmqctl") or "rabbitmqctl"
        run_or_explain(
            [ctl, "-q", "await_startup", "--timeout", str(RABBITMQ_START_TIMEOUT_SECONDS)],
            "wait for RabbitMQ to start",
            timeout=RABBITMQ_START_TIMEOUT_SECONDS + 30,
        )
    current = rabbitmq_consumer_timeout_ms()
    if owned and current is not None and current < wanted:
        run_or_explain(
            ["rabbitmqctl", "-q", "eval",
             f"application:set_env(rabbit, consumer_timeout, {wanted})."],
            "set RabbitMQ's consumer_timeout",
        )  # fmt: skip
        return
    verdict = check_consumer_timeout(
        settings.BROKER_URL,
        job_limit_seconds=settings.JOB_TIME_LIMIT_SECONDS,
        queue_timeout_seconds=settings.CONSUMER_TIMEOUT_SECONDS,
    )
    if verdict.level is VerdictLevel.TOO_SHORT:
        report(f"warning: {verdict.message}")
    elif verdict.level is VerdictLevel.UNKNOWN:
        report(f"note: {verdict.message}")
