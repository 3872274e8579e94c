"""How many job event streams a tenant holds open: a slot each, in Redis, with an expiry.

``<prefix>:streams:<tenant>`` is a sorted set: one member per open stream, scored with the
time its slot lapses. Opening a stream drops the lapsed members, adds its own and counts; over
the cap it takes its member back out and is refused (429 ``too_many_streams``). An open stream
renews its slot every third of ``slot_seconds`` and removes it when it ends, so the slots of an
API process that was killed free themselves within ``slot_seconds``. Every API process shares
the count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

import redis

from server.errors import ErrorWithHeaders
from server.kit.ids import new_id

__all__ = ["RETRY_AFTER_SECONDS", "StreamSlot", "StreamSlots", "TooManyStreams"]

RETRY_AFTER_SECONDS: Final = 30
"""What a refused stream is told to wait; the client polls meanwhile."""
RENEWALS_PER_SLOT: Final = 3
_SLOT_ID_PREFIX: Final = "sse"


class TooManyStreams(ErrorWithHeaders):
    code = "too_many_streams"
    status = 429

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"This token already has {limit} job event streams open; poll GET /v1/jobs/{{id}} "
            "instead, or close one.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


class StreamSlot:
    """One open stream's slot: :meth:`renew` while it runs, :meth:`release` at its end."""

    def __init__(self, slots: StreamSlots, key: str, member: str) -> None:
        self._slots = slots
        self._key = key
        self.member = member
        self.renewed_at = slots.now()

    @property
    def renew_every(self) -> float:
        """Seconds between renewals: a follower waits no longer than this between looks."""
        return self._slots.slot_seconds / RENEWALS_PER_SLOT

    @property
    def renew_due(self) -> bool:
        return self._slots.now() - self.renewed_at >= self._slots.slot_seconds / RENEWALS_PER_SLOT

    def renew(self) -> None:
        self.renewed_at = self._slots.now()
        self._slots.renew(self._key, self.member, self.renewed_at)

    def release(self) -> None:
        self._slots.release(self._key, self.member)


class StreamSlots:
    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str,
        per_tenant: int,
        slot_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``per_tenant`` of 0 (or less) turns the cap off (slots are still counted)."""
        self._redis = client
        self._prefix = prefix
        self._limit = per_tenant
        self.slot_seconds = slot_seconds
        self.now = clock

    def _key(self, tenant: str) -> str:
        return f"{self._prefix}:streams:{tenant}"

    def _ttl(self) -> int:
        return max(1, int(self.slot_seconds) + 1)

    def acquire(self, tenant: str) -> StreamSlot:
        """A slot for one more stream of ``tenant``; :class:`TooManyStreams` when it has
        ``per_tenant`` open already."""
        key, member, now = self._key(tenant), new_id(_SLOT_ID_PREFIX), self.now()
        pipe = self._redis.pipeline(transaction=True)
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.zadd(key, {member: now + self.slot_seconds})
        pipe.zcard(key)
        pipe.expire(key, self._ttl())
        _, _, count, _ = pipe.execute()
        if self._limit > 0 and int(count) > self._limit:
            self._redis.zrem(key, member)
            raise TooManyStreams(self._limit)
        return StreamSlot(self, key, member)

    def open(self, tenant: str) -> int:
        """How many streams ``tenant`` holds open now."""
        return int(self._redis.zcount(self._key(tenant), f"({self.now()}", "+inf"))

    def renew(self, key: str, member: str, now: float) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.zadd(key, {member: now + self.slot_seconds}, xx=True)
        pipe.expire(key, self._ttl())
        pipe.execute()

    def release(self, key: str, member: str) -> None:
        self._redis.zrem(key, member)
