"""The API's job publisher on the machine's RabbitMQ (a queue of its own, deleted)."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.common import dq_name, xq_name

from server.integrations.broker import (
    RUN_JOB_ACTOR,
    TRACE_ID_OPTION,
    QueueUnavailable,
    broker_urls,
    build_broker,
    queue_declarations,
)
from server.integrations.publisher import JobPublisher, _Link
from server.settings import Settings

pytestmark = pytest.mark.integration

BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
DOWN_URL = "amqp://guest:guest@127.0.0.1:1/%2F"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"

T = TypeVar("T")


def _rabbit_answers() -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", 5672)) == 0


@pytest.fixture
def settings() -> Settings:
    if not _rabbit_answers():
        pytest.skip("no RabbitMQ on 127.0.0.1:5672")
    return Settings(BROKER_URL=BROKER_URL, QUEUE_NAME=f"subtone-test-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def dramatiq(settings: Settings) -> Iterator[RabbitmqBroker]:
    """Dramatiq's side of the same queue (what the worker declares and reads), used on this
    thread only; the queues are deleted afterwards."""
    broker = build_broker(settings)
    yield broker
    name = settings.QUEUE_NAME
    for queue in (name, dq_name(name), xq_name(name)):
        broker.channel.queue_delete(queue)
    broker.close()


def depth(broker: RabbitmqBroker, queue: str) -> int:
    """The queue's depth, after Dramatiq declared it (as a worker does)."""
    broker.declare_queue(queue, ensure=True)
    return int(broker.channel.queue_declare(queue=queue, passive=True).method.message_count)


def publishing(settings: Settings, use: Callable[[JobPublisher], Awaitable[T]]) -> T:
    """Run ``use`` with a publisher on an event loop of its own, closed afterwards."""
    broker = build_broker(settings)
    publisher = JobPublisher(
        broker_urls(settings), settings.QUEUE_NAME, queue_declarations(broker, settings.QUEUE_NAME)
    )

    async def run() -> T:
        try:
            return await use(publisher)
        finally:
            await publisher.close()

    return asyncio.run(run())


def test_concurrent_jobs_are_each_confirmed_and_queued(
    settings: Settings, dramatiq: RabbitmqBroker
) -> None:
    ids = [f"job_{n:012d}" for n in range(200)]

    async def use(publisher: JobPublisher) -> None:
        await asyncio.gather(*(publisher.enqueue(i, trace_id=TRACE) for i in ids))

    publishing(settings, use)
    assert depth(dramatiq, settings.QUEUE_NAME) == len(ids)
    method, properties, body = dramatiq.channel.basic_get(settings.QUEUE_NAME, auto_ack=True)
    assert method is not None and properties.delivery_mode == 2  # persistent
    message = json.loads(body)
    assert message["actor_name"] == RUN_JOB_ACTOR
    assert message["queue_name"] == settings.QUEUE_NAME
    assert message["args"] == [ids[0]]
    assert message["options"] == {TRACE_ID_OPTION: TRACE}


def test_concurrent_jobs_do_not_wait_for_each_others_confirms(
    settings: Settings, dramatiq: RabbitmqBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests publishing at once have their messages in flight together: a publisher that
    serialised them (one confirm awaited before the next message goes out) would never have
    more than one message unconfirmed when it publishes."""
    unconfirmed: list[int] = []
    real = _Link.publish

    def counting(link: _Link, queue: str, message_id: str, body: bytes) -> asyncio.Future[None]:
        unconfirmed.append(len(link.pending))
        return real(link, queue, message_id, body)

    monkeypatch.setattr(_Link, "publish", counting)
    ids = [f"job_{n:012d}" for n in range(200)]

    async def use(publisher: JobPublisher) -> None:
        await asyncio.gather(*(publisher.enqueue(i) for i in ids))

    publishing(settings, use)
    assert len(unconfirmed) == len(ids) and depth(dramatiq, settings.QUEUE_NAME) == len(ids)
    assert max(unconfirmed) >= 50, unconfirmed


def test_the_queues_are_declared_as_dramatiq_declares_them(
    settings: Settings, dramatiq: RabbitmqBroker
) -> None:
    """A job can be queued before any worker ran; the worker's declaration then agrees
    (RabbitMQ closes the channel of a declaration with other arguments)."""

    async def use(publisher: JobPublisher) -> None:
        await publisher.enqueue("job_000000000001")

    publishing(settings, use)
    assert depth(dramatiq, settings.QUEUE_NAME) == 1  # Dramatiq's declaration agreed
    channel = dramatiq.channel
    for name in (dq_name(settings.QUEUE_NAME), xq_name(settings.QUEUE_NAME)):
        channel.queue_declare(queue=name, passive=True)


def test_an_unreachable_broker_is_queue_unavailable() -> None:
    settings = Settings(BROKER_URL=DOWN_URL, QUEUE_NAME="subtone-test-nowhere")

    async def use(publisher: JobPublisher) -> None:
        with pytest.raises(QueueUnavailable):
            await publisher.enqueue("job_000000000001")

    publishing(settings, use)


def test_a_lost_connection_is_opened_again(settings: Settings, dramatiq: RabbitmqBroker) -> None:
    async def use(publisher: JobPublisher) -> None:
        await publisher.enqueue("job_000000000001")
        link = publisher._link
        assert link is not None
        link.connection.close()
        await asyncio.wait({link.closed}, timeout=5.0)
        assert link.closed.done()
        await publisher.enqueue("job_000000000002")
        assert publisher._link is not link

    publishing(settings, use)
    assert depth(dramatiq, settings.QUEUE_NAME) == 2


def test_a_deleted_queue_fails_the_job_and_is_declared_again(
    settings: Settings, dramatiq: RabbitmqBroker
) -> None:
    async def use(publisher: JobPublisher) -> None:
        await publisher.enqueue("job_000000000001")
        dramatiq.channel.queue_delete(settings.QUEUE_NAME)
        with pytest.raises(QueueUnavailable, match="route"):
            await publisher.enqueue("job_000000000002")
        await publisher.enqueue("job_000000000003")

    publishing(settings, use)
    method, _, body = dramatiq.channel.basic_get(settings.QUEUE_NAME, auto_ack=True)
    assert method is not None and json.loads(body)["args"] == ["job_000000000003"]
