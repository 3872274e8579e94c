"""The API's job publisher: RabbitMQ on the event loop, with publisher confirms.

One connection and one channel per API process (pika's asyncio adapter), opened on the first
job and again after a failure. Each request publishes its message and awaits RabbitMQ's
confirm of *that* message, so any number of requests have a message in flight at once: no
thread, no lock, no request waiting behind another's confirm (a blocking channel confirms one
message at a time; RabbitMQ acknowledges in batches when it is busy).

The queues are declared as Dramatiq declares them (:func:`broker.queue_declarations`) when the
channel opens, so a job can be queued before any worker has started. Messages are persistent
and ``mandatory``: a message RabbitMQ cannot route (someone deleted the queue) is returned,
reported as :class:`QueueUnavailable`, and the next job opens a fresh channel that declares
the queues again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import pika
import pika.exceptions
from pika import spec
from pika.adapters.asyncio_connection import AsyncioConnection

from server.integrations.broker import (
    BROKER_CALL_TIMEOUT_SECONDS,
    QueueDeclaration,
    QueueUnavailable,
    job_message,
)

__all__ = ["JobPublisher"]

log = logging.getLogger(__name__)

PERSISTENT = 2
"""AMQP delivery mode of a message kept across a broker restart."""
CLOSE_TIMEOUT_SECONDS = 5.0
_PIKA_ERRORS = (pika.exceptions.AMQPError, OSError, ValueError)


def _declare(channel: Any, declaration: QueueDeclaration, callback: Callable[[Any], None]) -> None:
    channel.queue_declare(
        queue=declaration.name,
        durable=True,
        arguments=dict(declaration.arguments),
        callback=callback,
    )


class _Link:
    """One connection and its channel in confirm mode, with the messages awaiting a confirm
    (by delivery tag: 1, 2, … in publishing order on this channel)."""

    def __init__(self, connection: AsyncioConnection, loop: asyncio.AbstractEventLoop) -> None:
        self.connection = connection
        self.channel: Any = None
        self.loop = loop
        self.pending: dict[int, asyncio.Future[None]] = {}
        self.message_ids: dict[str, int] = {}
        self.returned: set[int] = set()
        self.last_tag = 0
        self.closed: asyncio.Future[None] = loop.create_future()
        """Done (with the reason, as :class:`QueueUnavailable`) once the connection closed."""
        self.reason: object = None
        """Why the channel or the connection closed, once one did."""
        self.stale = False
        """A message came back unroutable: publish on a new link (declaring the queues again)."""

    @property
    def usable(self) -> bool:
        return self.reason is None and not self.stale and bool(self.channel.is_open)

    def lost(self, reason: object) -> None:
        """The channel or the connection closed: every message still waiting has failed, and
        the connection (whose only channel this is) closes."""
        if self.reason is None:
            self.reason = reason
        for future in self.pending.values():
            if not future.done():
                future.set_exception(
                    QueueUnavailable(f"RabbitMQ closed the connection before confirming: {reason}")
                )
        self.pending.clear()
        self.message_ids.clear()
        self.close()

    def ended(self, reason: object) -> None:
        """The connection closed (its socket with it)."""
        self.lost(reason)
        if not self.closed.done():
            self.closed.set_exception(
                QueueUnavailable(f"The RabbitMQ connection closed: {self.reason}")
            )
            self.closed.exception()  # retrieved: nobody may be waiting on it

    def publish(self, queue: str, message_id: str, body: bytes) -> asyncio.Future[None]:
        self.channel.basic_publish(
            exchange="",
            routing_key=queue,
            body=body,
            properties=pika.BasicProperties(delivery_mode=PERSISTENT, message_id=message_id),
            mandatory=True,
        )
        self.last_tag += 1
        future: asyncio.Future[None] = self.loop.create_future()
        self.pending[self.last_tag] = future
        self.message_ids[message_id] = self.last_tag
        return future

    def forget(self, message_id: str) -> None:
        """The publisher stopped waiting for this message (it timed out)."""
        tag = self.message_ids.pop(message_id, None)
        if tag is not None:
            self.pending.pop(tag, None)

    def on_return(self, _channel: Any, _method: Any, properties: Any, _body: bytes) -> None:
        tag = self.message_ids.get(properties.message_id)
        if tag is not None:
            self.returned.add(tag)
        self.stale = True

    def on_confirm(self, frame: Any) -> None:
        method = frame.method
        acked = isinstance(method, spec.Basic.Ack)
        if method.multiple:
            tags = [tag for tag in self.pending if tag <= method.delivery_tag]
        else:
            tags = [method.delivery_tag]
        for tag in tags:
            future = self.pending.pop(tag, None)
            returned = tag in self.returned
            self.returned.discard(tag)
            if future is None or future.done():
                continue
            if not acked:
                future.set_exception(QueueUnavailable("RabbitMQ refused the message (nack)."))
            elif returned:
                future.set_exception(
                    QueueUnavailable("RabbitMQ could not route the message: the queue is gone.")
                )
            else:
                future.set_result(None)
        if not self.pending:
            self.message_ids.clear()
            if self.stale:
                self.close()

    def close(self) -> None:
        with contextlib.suppress(*_PIKA_ERRORS):
            if not (self.connection.is_closed or self.connection.is_closing):
                self.connection.close()


class JobPublisher:
    """Sends job ids to the workers' queue from the event loop (:class:`AsyncEnqueuer`)."""

    def __init__(
        self,
        urls: Sequence[str],
        queue_name: str,
        declarations: Sequence[QueueDeclaration],
        *,
        timeout_seconds: float = BROKER_CALL_TIMEOUT_SECONDS,
    ) -> None:
        """``urls``: RabbitMQ's AMQP URLs (tried in order); ``declarations``: the queues to
        declare on each new channel."""
        self._urls = list(urls)
        self._queue = queue_name
        self._declarations = list(declarations)
        self._timeout = timeout_seconds
        self._link: _Link | None = None
        self._opening: asyncio.Future[_Link] | None = None
        self._open_links: set[_Link] = set()
        """Every link not closed yet (a stale one closes after its last confirm)."""

    async def enqueue(self, job_id: str, *, trace_id: str | None = None) -> None:
        message = job_message(self._queue, job_id, trace_id)
        try:
            async with asyncio.timeout(self._timeout):
                link = await self._ready()
                try:
                    confirmed = link.publish(self._queue, message.message_id, message.encode())
                except _PIKA_ERRORS as e:
                    link.lost(e)
                    raise QueueUnavailable(f"RabbitMQ is not reachable: {e!r}") from e
                try:
                    await confirmed
                finally:
                    link.forget(message.message_id)
        except TimeoutError as e:
            raise QueueUnavailable(
                f"RabbitMQ did not answer in {self._timeout:g} s; could not queue the job."
            ) from e

    async def close(self) -> None:
        """Close the connections (waiting a little for RabbitMQ to say each closed)."""
        self._link = None
        opening, self._opening = self._opening, None
        if opening is not None and not opening.done():
            opening.cancel()
        links = list(self._open_links)
        for link in links:
            link.close()
        for link in links:
            await asyncio.wait({link.closed}, timeout=CLOSE_TIMEOUT_SECONDS)

    # Opening -------------------------------------------------------------------------------

    async def _ready(self) -> _Link:
        """The open link, opening one (once, however many requests wait for it) if needed."""
        link = self._link
        if link is not None and link.usable:
            return link
        if link is not None:
            self._link = None
            self._retire(link)
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())
            self._opening.add_done_callback(self._opened)
        return await asyncio.shield(self._opening)

    def _opened(self, opening: asyncio.Future[_Link]) -> None:
        if self._opening is opening:
            self._opening = None
        if not opening.cancelled() and opening.exception() is None:
            self._link = opening.result()

    @staticmethod
    def _retire(link: _Link) -> None:
        """A stale link closes once its last message is confirmed (or now, if none waits)."""
        if not link.pending:
            link.close()

    async def _open(self) -> _Link:
        loop = asyncio.get_running_loop()
        connected: asyncio.Future[Any] = loop.create_future()

        def done(result: object) -> None:
            if not connected.done():
                connected.set_result(result)

        try:
            workflow = AsyncioConnection.create_connection(
                [pika.URLParameters(url) for url in self._urls], done, custom_ioloop=loop
            )
        except _PIKA_ERRORS as e:
            raise QueueUnavailable(f"RabbitMQ is not reachable: {e!r}") from e
        try:
            result = await connected
        except asyncio.CancelledError:
            workflow.abort()
            raise
        if not isinstance(result, AsyncioConnection):
            raise QueueUnavailable(f"RabbitMQ is not reachable: {result!r}")
        link = _Link(result, loop)
        result.add_on_close_callback(lambda _conn, reason: link.ended(reason))
        self._open_links.add(link)
        link.closed.add_done_callback(lambda _: self._open_links.discard(link))
        try:
            link.channel = await self._step(link, lambda cb: result.channel(on_open_callback=cb))
            link.channel.add_on_close_callback(lambda _ch, reason: link.lost(reason))
            link.channel.add_on_return_callback(link.on_return)
            await self._step(
                link, lambda cb: link.channel.confirm_delivery(link.on_confirm, callback=cb)
            )
            for declaration in self._declarations:
                await self._step(link, functools.partial(_declare, link.channel, declaration))
        except BaseException:
            link.close()
            raise
        log.info("publishing jobs on RabbitMQ (queue %s)", self._queue)
        return link

    @staticmethod
    async def _step(link: _Link, start: Callable[[Callable[[Any], None]], None]) -> Any:
        """Start one asynchronous pika call and wait for its callback (or the link closing)."""
        answered: asyncio.Future[Any] = link.loop.create_future()

        def callback(value: Any) -> None:
            if not answered.done():
                answered.set_result(value)

        try:
            start(callback)
        except _PIKA_ERRORS as e:
            raise QueueUnavailable(f"RabbitMQ is not reachable: {e!r}") from e
        await asyncio.wait({answered, link.closed}, return_when=asyncio.FIRST_COMPLETED)
        if not answered.done():
            answered.cancel()
            link.closed.result()  # raises the reason
        return answered.result()
