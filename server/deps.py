"""The API's clients to the outside world, built once at start-up (or handed in by tests).

Nothing here connects: Redis, RabbitMQ and Triton connect on first use, so the API starts
(and ``/healthz`` answers) while a dependency is still coming up; ``/readyz`` tells which.

The request path (authentication, rate limits, creating and queueing a job) runs on the event
loop, on :attr:`Dependencies.aredis` and the asynchronous publisher: no thread hop per
request. Their connections belong to the event loop that opened them, so the app drops them
(:meth:`Dependencies.disconnect`) when it stops, whoever built the clients.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from server.integrations.broker import (
    AsyncEnqueuer,
    BrokerQueue,
    broker_urls,
    build_broker,
    queue_declarations,
)
from server.integrations.factory import build_store
from server.integrations.publisher import JobPublisher
from server.integrations.storage import ObjectStore
from server.integrations.triton import TritonEngine
from server.settings import Settings

__all__ = [
    "Dependencies",
    "QueueProbe",
    "ReadyProbe",
    "TritonProbe",
    "build_async_redis",
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
    aredis: AsyncRedis
    """The same Redis, for the request path on the event loop."""
    store: ObjectStore
    enqueuer: AsyncEnqueuer
    queue: QueueProbe
    triton: ReadyProbe
    closers: list[Callable[[], None]] = field(default_factory=list)
    """Run (last first) when the app that built these stops."""
    disconnectors: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """Drop the connections of the event loop that is stopping (the clients stay usable)."""

    async def disconnect(self) -> None:
        """Drop every connection opened on the running event loop (Redis's, the publisher's):
        they cannot outlive it. Run by the app when it stops, whoever built these."""
        for disconnect in (self.aredis.connection_pool.disconnect, *self.disconnectors):
            try:
                await disconnect()
            except Exception:
                log.exception("dropping a client's connections failed")

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


def build_async_redis(settings: Settings) -> AsyncRedis:
    """The asynchronous client, with :func:`build_redis`'s timeouts and retries."""
    return AsyncRedis.from_url(
        settings.REDIS_URL,
        socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT_SECONDS,
        health_check_interval=REDIS_HEALTH_CHECK_SECONDS,
        retry=AsyncRetry(
            ExponentialWithJitterBackoff(
                base=REDIS_RETRY_BASE_SECONDS, cap=REDIS_RETRY_CAP_SECONDS
            ),
            REDIS_RETRIES,
        ),
    )


def build_dependencies(settings: Settings) -> Dependencies:
    client = build_redis(settings)
    broker = build_broker(settings)
    # Probes only (/readyz, the queue depth in /metrics): jobs go through the publisher.
    queue = BrokerQueue(broker, settings.QUEUE_NAME, publishers=1)
    publisher = JobPublisher(
        broker_urls(settings), settings.QUEUE_NAME, queue_declarations(broker, settings.QUEUE_NAME)
    )
    triton = TritonProbe(settings.TRITON_URL)
    return Dependencies(
        redis=client,
        aredis=build_async_redis(settings),
        store=build_store(settings),
        enqueuer=publisher,
        queue=queue,
        triton=triton,
        closers=[client.close, queue.close, triton.close],
        disconnectors=[publisher.close],
    )
