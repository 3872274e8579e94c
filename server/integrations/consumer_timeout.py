"""Whether RabbitMQ will let a job run its full time limit before it redelivers the message.

A consumer that holds a message longer than its consumer timeout has its channel closed and the
message is delivered again: a job still running would then run twice. Our queue is declared
with ``x-consumer-timeout`` (``CONSUMER_TIMEOUT_SECONDS``), but RabbitMQ honours that argument
only from 3.12 on; before, the broker's global ``consumer_timeout`` (rabbitmq.conf, 30 min by
default) applies to every queue. :func:`check_consumer_timeout` reads the broker's version (from
its AMQP handshake, which any client sees) and, where ``rabbitmqctl`` can reach the broker (same
machine), its global ``consumer_timeout``; :func:`assess` turns what was found into a plain
verdict, which the worker logs (or refuses to start on) and ``standalone up`` prints.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from enum import StrEnum
from typing import Final
from urllib.parse import urlsplit

import pika
import pika.exceptions

__all__ = [
    "QUEUE_ARGUMENT_SINCE",
    "BrokerFacts",
    "Verdict",
    "VerdictLevel",
    "assess",
    "broker_version",
    "check_consumer_timeout",
    "global_consumer_timeout_ms",
]

QUEUE_ARGUMENT_SINCE: Final = (3, 12)
"""The first RabbitMQ that honours a queue's ``x-consumer-timeout``."""
CONNECT_TIMEOUT_SECONDS: Final = 10.0
RABBITMQCTL_TIMEOUT_SECONDS: Final = 30.0
LOCAL_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
_VERSION: Final = re.compile(r"(\d+)\.(\d+)")
_ENV_VALUE: Final = re.compile(r"\{ok,(\d+)\}")
MS_PER_SECOND: Final = 1000


class VerdictLevel(StrEnum):
    OK = "ok"
    UNKNOWN = "unknown"
    """Could not tell (the version, or an old broker's global timeout, is out of reach)."""
    TOO_SHORT = "too_short"
    """A job may run longer than the broker lets a consumer hold its message."""


@dataclass(frozen=True)
class BrokerFacts:
    version: str | None
    """``"3.10.8"``, or None when the broker did not answer."""
    global_timeout_ms: int | None
    """The broker's ``consumer_timeout``; None when it is unknown (or disabled: see
    ``global_timeout_read``)."""
    global_timeout_read: bool = False
    """Whether ``rabbitmqctl`` answered (a None timeout it read means: disabled)."""


@dataclass(frozen=True)
class Verdict:
    level: VerdictLevel
    message: str

    @property
    def ok(self) -> bool:
        return self.level is VerdictLevel.OK


def _parse_version(version: str | None) -> tuple[int, int] | None:
    found = _VERSION.match(version or "")
    return (int(found.group(1)), int(found.group(2))) if found else None


def assess(facts: BrokerFacts, *, job_limit_seconds: int, queue_timeout_seconds: int) -> Verdict:
    """Whether a job of ``job_limit_seconds`` finishes before its message would be redelivered."""
    version = _parse_version(facts.version)
    limit_ms = job_limit_seconds * MS_PER_SECOND
    fix = (
        f"set consumer_timeout = {queue_timeout_seconds * MS_PER_SECOND} in rabbitmq.conf (or "
        f"lower SUBTONE_JOB_TIME_LIMIT_SECONDS, now {job_limit_seconds} s)"
    )
    if version is None:
        return Verdict(
            VerdictLevel.UNKNOWN,
            "Could not read RabbitMQ's version; if it is older than 3.12 it ignores the queue's "
            f"x-consumer-timeout: make sure its consumer_timeout exceeds the job time limit "
            f"({job_limit_seconds} s).",
        )
    if version >= QUEUE_ARGUMENT_SINCE:
        return Verdict(
            VerdictLevel.OK,
            f"RabbitMQ {facts.version} honours the queue's x-consumer-timeout "
            f"({queue_timeout_seconds} s, above the job time limit of {job_limit_seconds} s).",
        )
    old = f"RabbitMQ {facts.version} (older than 3.12) ignores the queue's x-consumer-timeout"
    if not facts.global_timeout_read:
        return Verdict(
            VerdictLevel.UNKNOWN,
            f"{old} and its global consumer_timeout could not be read from here: make sure it "
            f"exceeds the job time limit ({job_limit_seconds} s): {fix}.",
        )
    if facts.global_timeout_ms is None:
        return Verdict(VerdictLevel.OK, f"{old}; its global consumer_timeout is disabled.")
    if facts.global_timeout_ms <= limit_ms:
        return Verdict(
            VerdictLevel.TOO_SHORT,
            f"{old} and applies its global consumer_timeout of "
            f"{facts.global_timeout_ms // MS_PER_SECOND} s, which is not above the job time limit "
            f"({job_limit_seconds} s): a job running longer would be delivered again and run "
            f"twice. To fix it, {fix}.",
        )
    return Verdict(
        VerdictLevel.OK,
        f"{old}; its global consumer_timeout ({facts.global_timeout_ms // MS_PER_SECOND} s) is "
        f"above the job time limit ({job_limit_seconds} s).",
    )


def broker_version(url: str) -> str | None:
    """The version RabbitMQ announces in its AMQP handshake; None when it does not answer."""
    parameters = pika.URLParameters(url)
    parameters.socket_timeout = CONNECT_TIMEOUT_SECONDS
    parameters.blocked_connection_timeout = CONNECT_TIMEOUT_SECONDS
    try:
        connection = pika.BlockingConnection(parameters)
    except (pika.exceptions.AMQPError, OSError):
        return None
    try:
        version = connection._impl.server_properties.get("version")
    finally:
        connection.close()
    if isinstance(version, bytes):
        version = version.decode(errors="replace")
    return version if isinstance(version, str) else None


def global_consumer_timeout_ms(url: str | None = None) -> tuple[bool, int | None]:
    """``(read, ms)``: the global ``consumer_timeout`` of the RabbitMQ ``rabbitmqctl`` reaches
    (its default node, or ``RABBITMQ_NODENAME``); ``(False, None)`` when there is no
    ``rabbitmqctl``, it cannot reach the node, or ``url`` names a broker on another machine;
    ``(True, None)`` when the timeout is disabled."""
    if url is not None and (urlsplit(url).hostname or "127.0.0.1") not in LOCAL_HOSTS:
        return False, None
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        return False, None
    try:
        out = subprocess.run(
            [ctl, "-q", "eval", "application:get_env(rabbit, consumer_timeout)."],
            capture_output=True, text=True, timeout=RABBITMQCTL_TIMEOUT_SECONDS, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return False, None
    found = _ENV_VALUE.fullmatch(out)
    if found:
        return True, int(found.group(1))
    return out == "undefined", None


def check_consumer_timeout(
    url: str, *, job_limit_seconds: int, queue_timeout_seconds: int
) -> Verdict:
    """:func:`assess` on what can be read of the broker at ``url`` from here."""
    version = broker_version(url)
    read, timeout_ms = (False, None)
    parsed = _parse_version(version)
    if parsed is not None and parsed < QUEUE_ARGUMENT_SINCE:
        read, timeout_ms = global_consumer_timeout_ms(url)
    facts = BrokerFacts(version, timeout_ms, read)
    return assess(
        facts, job_limit_seconds=job_limit_seconds, queue_timeout_seconds=queue_timeout_seconds
    )
