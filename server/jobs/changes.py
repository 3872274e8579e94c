"""Job changes pushed to the API's event streams (Redis pub/sub), not found by polling.

Every change of a job's record (:meth:`~server.jobs.repository.JobRepository._update`, in the
same transaction as the write) publishes the job's id on :func:`channel`. Each API process
holds one pattern subscription (:class:`JobChanges`) and wakes the streams that follow that
job, so a client learns that its job finished a few milliseconds after the worker says so,
not up to a poll interval later (it was half a second: a quarter of a short encode's time).

Pub/sub is fire-and-forget: a message published while the subscription is down is lost. So
a follower still re-reads its job now and then (:data:`SAFETY_POLL_SECONDS`, or
:data:`FALLBACK_POLL_SECONDS` while there is no subscription), and every follower is woken
when the subscription is made again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.client import PubSub

__all__ = ["FALLBACK_POLL_SECONDS", "SAFETY_POLL_SECONDS", "JobChanges", "channel"]

log = logging.getLogger(__name__)

SAFETY_POLL_SECONDS = 5.0
"""How often a follower re-reads its job while subscribed (a change it was not told of)."""
FALLBACK_POLL_SECONDS = 0.5
"""How often it re-reads while the subscription is down."""
READ_TIMEOUT_SECONDS = 1.0
RECONNECT_MAX_SECONDS = 5.0
SUBSCRIBE_WAIT_SECONDS = 2.0
"""How long :meth:`JobChanges.start` waits for the first subscription (then streams poll)."""


def channel(prefix: str, job_id: str) -> str:
    """Where a change of ``job_id`` is announced (the message is the job's id)."""
    return f"{prefix}:job-changed:{job_id}"


class JobChanges:
    """One API process's subscription to job changes, and the streams waiting on them."""

    def __init__(self, aredis: AsyncRedis, *, prefix: str) -> None:
        self._redis = aredis
        self._pattern = channel(prefix, "*")
        self._skip = len(channel(prefix, ""))
        self._waiting: dict[str, set[asyncio.Event]] = {}
        self._subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def poll_seconds(self) -> float:
        """How long a follower may wait for a change before it looks for itself."""
        return SAFETY_POLL_SECONDS if self._subscribed.is_set() else FALLBACK_POLL_SECONDS

    async def start(self) -> None:
        """Subscribe (on the running event loop); waits a little for the first subscription,
        and carries on without it (followers poll until it is made)."""
        self._task = asyncio.create_task(self._listen(), name="job-changes")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), SUBSCRIBE_WAIT_SECONDS)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @contextlib.contextmanager
    def watch(self, job_id: str) -> Iterator[asyncio.Event]:
        """An event set at each change of ``job_id`` while the block runs (the follower
        clears it before each read, so a change during the read sets it again)."""
        event = asyncio.Event()
        self._waiting.setdefault(job_id, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiting.get(job_id, set())
            waiters.discard(event)
            if not waiters:
                self._waiting.pop(job_id, None)

    async def wait(self, event: asyncio.Event, *, at_most: float | None = None) -> None:
        """Until ``event`` is set or :attr:`poll_seconds` (or ``at_most``) have passed;
        clears it."""
        timeout = self.poll_seconds if at_most is None else min(at_most, self.poll_seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        event.clear()

    async def _listen(self) -> None:
        failures = 0
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(self._pattern)
                self._subscribed.set()
                if failures:
                    log.info("job change notifications are back")
                failures = 0
                self._wake_all()  # what was published while unsubscribed
                await self._dispatch(pubsub)
            except (redis.RedisError, OSError) as e:
                self._subscribed.clear()
                if not failures:
                    log.warning("job change notifications lost (%s); streams poll meanwhile", e)
                failures += 1
                await asyncio.sleep(min(RECONNECT_MAX_SECONDS, 0.1 * 2**failures))
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.shield(pubsub.aclose())

    async def _dispatch(self, pubsub: PubSub) -> None:
        while True:
            message = await pubsub.get_message(timeout=READ_TIMEOUT_SECONDS)
            if message is None or message.get("type") != "pmessage":
                continue
            name = message["channel"]
            job_id = (name.decode() if isinstance(name, bytes) else str(name))[self._skip :]
            for event in self._waiting.get(job_id, ()):
                event.set()

    def _wake_all(self) -> None:
        for waiters in self._waiting.values():
            for event in waiters:
                event.set()
