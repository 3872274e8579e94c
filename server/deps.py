"""The API's clients to the outside world, built once at start-up (or handed in by tests).

Nothing here connects: Redis, RabbitMQ and Triton connect on first use, so the API starts
(and ``/healthz`` answers) while a dependency is still coming up; ``/readyz`` tells which.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from server.integrations.broker import BrokerQueue, Enqueuer, build_broker
from server.integrations.factory import build_store
from server.integrations.storage import ObjectStore
from server.integrations.triton import TritonEngine
from server.settings import Settings

__all__ = [
    "Dependencies",
    "QueueProbe",
    "ReadyProbe",
    "TritonProbe",
    "build_dependencies",
    "build_redis",
]

log = logging.getLogger(__name__)

REDIS_SOCKET_TIMEOUT_SECONDS = 5.0
REDIS_CONNECT_TIMEOUT_SECONDS = 2.0
REDIS_HEALTH_CHECK_SECONDS = 30
REDIS_RETRIES = 2
REDIS_RETRY_BASE_SECONDS = 0.05
REDIS_RETRY_CAP_SECONDS = 0.5
"""A request fails fast (503) while Redis is away, instead of backing off for seconds."""
TRITON_PROBE_TIMEOUT_SECONDS = 2.0
"""Readiness asks Triton with this deadline, not the inference timeout."""


class QueueProbe(Protocol):
    """The job queue as the API watches it."""

    def ping(self) -> None: ...

    def queue_depth(self) -> int: ...


class ReadyProbe(Protocol):
    def ready(self) -> None:
        """Return when ready; raise otherwise."""
        ...


@dataclass
class Dependencies:
    """Everything outside the process the API talks to."""

    redis: redis.Redis
    store: ObjectStore
    enqueuer: Enqueuer
    queue: QueueProbe
    triton: ReadyProbe
    closers: list[Callable[[], None]] = field(default_factory=list)
    """Run (last first) when the app that built these stops."""

    def close(self) -> None:
        for close in reversed(self.closers):
            try:
                close()
            except Exception:
                log.exception("closing a client failed")


class TritonProbe:
    """Triton's readiness (server and both models), with a short deadline; connects lazily."""

    def __init__(self, url: str, *, timeout_seconds: float = TRITON_PROBE_TIMEOUT_SECONDS) -> None:
        self._url = url
        self._timeout = timeout_seconds
        self._engine: TritonEngine | None = None
        self._lock = threading.Lock()

    def ready(self) -> None:
        with self._lock:
            if self._engine is None:
                self._engine = TritonEngine(self._url, timeout_seconds=self._timeout)
            engine = self._engine
        engine.ready()

    def close(self) -> None:
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()


def build_redis(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT_SECONDS,
        health_check_interval=REDIS_HEALTH_CHECK_SECONDS,
        retry=Retry(
            ExponentialWithJitterBackoff(
                base=REDIS_RETRY_BASE_SECONDS, cap=REDIS_RETRY_CAP_SECONDS
            ),
            REDIS_RETRIES,
        ),
    )


def build_dependencies(settings: Settings) -> Dependencies:
    client = build_redis(settings)
    queue = BrokerQueue(
        build_broker(settings), settings.QUEUE_NAME, publishers=settings.BROKER_PUBLISHERS
    )
    triton = TritonProbe(settings.TRITON_URL)
    return Dependencies(
        redis=client,
        store=build_store(settings),
        enqueuer=queue,
        queue=queue,
        triton=triton,
        closers=[client.close, queue.close, triton.close],
    )
