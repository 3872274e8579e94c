"""RabbitMQ through Dramatiq: the broker both processes build, and the API's sending side.

:func:`build_broker` is the one place the broker is configured (publisher confirms, our queue
declared with Dramatiq's dead-letter set-up), so the API and the worker always declare the
queue with the same arguments. The API never imports the actor: it sends a message *by name*
(:data:`RUN_JOB_ACTOR`) carrying only the job id, after the job record is saved.

:class:`BrokerQueue` runs broker calls on a few threads of its own (``publishers``): pika's
blocking connection is not thread-safe, and Dramatiq's broker keeps one connection per thread,
so each thread publishes (and waits for RabbitMQ's confirm) on its own connection. The worker
re-sends jobs through it; the API probes the queue through it (``/readyz``, the depth in
``/metrics``) and publishes through :class:`server.integrations.publisher.JobPublisher`, on
the event loop, which declares the queues exactly as Dramatiq does (:func:`queue_declarations`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import NamedTuple, Protocol, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pika.exceptions
from dramatiq import Message
from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL, RabbitmqBroker
from dramatiq.common import dq_name, xq_name
from dramatiq.errors import DramatiqError

from server.settings import Settings
from subtone.errors import SubtoneError

__all__ = [
    "RUN_JOB_ACTOR",
    "TRACE_ID_OPTION",
    "AsyncEnqueuer",
    "BrokerQueue",
    "Enqueuer",
    "QueueDeclaration",
    "QueueUnavailable",
    "broker_urls",
    "build_broker",
    "job_message",
    "queue_declarations",
]

TRACE_ID_OPTION = "trace_id"
"""The message option carrying the trace id of the request that created the job."""
RUN_JOB_ACTOR = "run_job"
"""The worker's actor that runs a job; messages name it, the API never imports it."""
CONSUMER_TIMEOUT_ARGUMENT = "x-consumer-timeout"
"""RabbitMQ's per-queue delivery acknowledgement timeout (milliseconds)."""
MS_PER_SECOND = 1000
BROKER_CALL_TIMEOUT_SECONDS = 30.0
"""How long the API waits for RabbitMQ (connect, declare, publish and confirm)."""
BLOCKED_CONNECTION_TIMEOUT_SECONDS = 20
"""A connection RabbitMQ blocks (memory or disk alarm) is dropped after this, not waited on."""
DEFAULT_PUBLISHERS = 4
"""Threads (each with its own connection) that publish for one API process."""
_URL_SEPARATOR = ";"
_BLOCKED_TIMEOUT_PARAM = "blocked_connection_timeout"

T = TypeVar("T")


class QueueUnavailable(SubtoneError):
    """RabbitMQ cannot take the message right now."""

    code = "queue_unavailable"
    status = 503


class Enqueuer(Protocol):
    """Hands a saved job to the workers."""

    def enqueue(self, job_id: str, *, trace_id: str | None = None) -> None:
        """Send the job id (and the trace id of the request that made it); raise
        :class:`QueueUnavailable` when it cannot be sent."""
        ...


class AsyncEnqueuer(Protocol):
    """Hands a saved job to the workers, on the event loop."""

    async def enqueue(self, job_id: str, *, trace_id: str | None = None) -> None:
        """As :meth:`Enqueuer.enqueue`: returns once RabbitMQ has confirmed the message."""
        ...


class _Broker(RabbitmqBroker):
    """Dramatiq's broker, declaring our queues with RabbitMQ's per-queue consumer timeout.

    RabbitMQ 3.12+ honours ``x-consumer-timeout``; older versions ignore it (checked on 3.10.8)
    and apply ``consumer_timeout`` from rabbitmq.conf (compose/rabbitmq/20-subtone.conf).
    """

    def __init__(self, *, consumer_timeout_ms: int, url: str) -> None:
        super().__init__(url=url, confirm_delivery=True)
        self.consumer_timeout_ms = consumer_timeout_ms

    def _build_queue_arguments(self, queue_name: str) -> dict[str, object]:
        arguments: dict[str, object] = super()._build_queue_arguments(queue_name)  # type: ignore[no-untyped-call]
        arguments[CONSUMER_TIMEOUT_ARGUMENT] = self.consumer_timeout_ms
        return arguments


class QueueDeclaration(NamedTuple):
    name: str
    arguments: Mapping[str, object]


def queue_declarations(broker: RabbitmqBroker, queue_name: str) -> list[QueueDeclaration]:
    """The durable queues Dramatiq's ``broker`` declares for ``queue_name``, with the same
    arguments (RabbitMQ refuses a second declaration that differs): the queue, its delay
    queue and its dead-letter queue (``RabbitmqBroker._ensure_queue``)."""
    arguments: dict[str, object] = broker._build_queue_arguments(queue_name)  # type: ignore[no-untyped-call]
    return [
        QueueDeclaration(queue_name, arguments),
        QueueDeclaration(dq_name(queue_name), arguments),
        QueueDeclaration(xq_name(queue_name), {"x-message-ttl": DEAD_MESSAGE_TTL}),
    ]


def broker_urls(settings: Settings) -> list[str]:
    """``BROKER_URL``'s (``;``-separated) URLs, each with our blocked-connection timeout."""
    return _with_defaults(settings.BROKER_URL).split(_URL_SEPARATOR)


def build_broker(settings: Settings) -> RabbitmqBroker:
    """The Dramatiq broker on ``BROKER_URL`` with publisher confirms and ``QUEUE_NAME`` declared
    (with ``x-consumer-timeout`` = ``CONSUMER_TIMEOUT_SECONDS``).

    Nothing connects here: the connection opens on first use.
    """
    broker = _Broker(
        url=_with_defaults(settings.BROKER_URL),
        consumer_timeout_ms=settings.CONSUMER_TIMEOUT_SECONDS * MS_PER_SECOND,
    )
    broker.declare_queue(settings.QUEUE_NAME)
    return broker


def job_message(queue_name: str, job_id: str, trace_id: str | None = None) -> Message[None]:
    """The message that runs ``job_id``: the actor by name, the id as its only argument, and
    the trace id (:mod:`subtone.tracing`) in the message's options."""
    options = {TRACE_ID_OPTION: trace_id} if trace_id else {}
    return Message(
        queue_name=queue_name, actor_name=RUN_JOB_ACTOR, args=(job_id,), kwargs={}, options=options
    )


def _with_defaults(url: str) -> str:
    """Each of the (``;``-separated) URLs with our blocked-connection timeout unless it has one."""
    return _URL_SEPARATOR.join(_with_default(part) for part in url.split(_URL_SEPARATOR))


def _with_default(url: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault(_BLOCKED_TIMEOUT_PARAM, str(BLOCKED_CONNECTION_TIMEOUT_SECONDS))
    return urlunsplit(parts._replace(query=urlencode(query)))


class BrokerQueue:
    """The API's side of the job queue: send job ids, report the queue's depth."""

    def __init__(
        self,
        broker: RabbitmqBroker,
        queue_name: str,
        *,
        timeout_seconds: float = BROKER_CALL_TIMEOUT_SECONDS,
        publishers: int = DEFAULT_PUBLISHERS,
    ) -> None:
        self._broker = broker
        self._queue = queue_name
        self._timeout = timeout_seconds
        self._thread = ThreadPoolExecutor(max_workers=publishers, thread_name_prefix="broker")

    def enqueue(self, job_id: str, *, trace_id: str | None = None) -> None:
        message = job_message(self._queue, job_id, trace_id)
        self._call(lambda: self._broker.enqueue(message), "queue the job")

    def queue_depth(self) -> int:
        """Messages waiting in the queue (a passive declare's message count)."""
        return self._call(self._depth, "read the queue's depth")

    def ping(self) -> None:
        """Raise :class:`QueueUnavailable` unless RabbitMQ answers for our queue."""
        self.queue_depth()

    def close(self) -> None:
        """Close the connection (on its own thread) and stop the thread."""
        with contextlib.suppress(FutureTimeout, DramatiqError, pika.exceptions.AMQPError, OSError):
            self._thread.submit(self._broker.close).result(timeout=self._timeout)
        self._thread.shutdown(wait=False, cancel_futures=True)

    def _depth(self) -> int:
        self._broker.declare_queue(self._queue, ensure=True)
        frame = self._broker.channel.queue_declare(queue=self._queue, passive=True)
        return int(frame.method.message_count)

    def _call(self, call: Callable[[], T], what: str) -> T:
        future = self._thread.submit(self._guarded, call)
        try:
            return future.result(timeout=self._timeout)
        except FutureTimeout as e:
            raise QueueUnavailable(
                f"RabbitMQ did not answer in {self._timeout:g} s; could not {what}."
            ) from e
        except (DramatiqError, pika.exceptions.AMQPError, OSError) as e:
            raise QueueUnavailable(f"RabbitMQ is not reachable; could not {what}: {e!r}") from e

    def _guarded(self, call: Callable[[], T]) -> T:
        """Run ``call``; after a failure drop the connection so the next call opens a new one."""
        try:
            return call()
        except (DramatiqError, pika.exceptions.AMQPError, OSError):
            del self._broker.connection
            raise
