"""Which workers consume a queue now: each running worker beats in Redis, the API's
``/readyz`` counts the beats.

Per queue one sorted set, ``<prefix>:workers:<queue>``: a member per worker, scored with the
time (Redis's own clock, so hosts' clocks do not matter) its beat lapses. A worker beats every
third of ``ttl_seconds`` while it consumes and removes its member when it stops; a worker
killed outright drops out when its last beat lapses.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from typing import Final

import redis

__all__ = ["DEFAULT_HEARTBEAT_SECONDS", "NoWorkers", "WorkerHeartbeats", "worker_id"]

log = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_SECONDS: Final = 15.0
THREAD_NAME: Final = "worker-heartbeat"

_NOW_MS = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "
_BEAT = (
    _NOW_MS
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
return 1
"""
)
_COUNT = _NOW_MS + "return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')"


class NoWorkers(RuntimeError):
    """No worker consumes the queue (none has beaten within its heartbeat's lifetime)."""


def worker_id() -> str:
    """This process, recognisably: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class WorkerHeartbeats:
    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str,
        ttl_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._ttl_ms = max(1, round(ttl_seconds * 1000))
        self._beat = client.register_script(_BEAT)
        self._count = client.register_script(_COUNT)

    def _key(self, queue: str) -> str:
        return f"{self._prefix}:workers:{queue}"

    def beat(self, queue: str, worker: str) -> None:
        """``worker`` consumes ``queue`` for the next ``ttl_seconds``."""
        self._beat(keys=[self._key(queue)], args=[worker, self._ttl_ms])

    def leave(self, queue: str, worker: str) -> None:
        """``worker`` stopped consuming ``queue``."""
        self._redis.zrem(self._key(queue), worker)

    def count(self, queue: str) -> int:
        """How many workers beat on ``queue`` within their heartbeat's lifetime."""
        return int(self._count(keys=[self._key(queue)]))

    def check(self, queue: str) -> int:
        """The count; raises :class:`NoWorkers` when it is zero (a readiness check)."""
        alive = self.count(queue)
        if alive == 0:
            raise NoWorkers(f"no worker consumes the queue {queue!r}")
        return alive

    def keep_beating(self, queue: str, worker: str, stopping: threading.Event) -> threading.Thread:
        """Beat every third of the TTL until ``stopping`` is set, then leave; returns the
        (started, daemon) thread. A Redis error is logged and the next beat tries again."""

        def run() -> None:
            interval = self._ttl_ms / 3000
            while True:
                try:
                    self.beat(queue, worker)
                except redis.RedisError as e:
                    log.warning("worker heartbeat on %s failed: %s", queue, e)
                if stopping.wait(interval):
                    break
            try:
                self.leave(queue, worker)
            except redis.RedisError as e:  # it lapses by itself
                log.warning("could not remove the heartbeat of %s: %s", worker, e)

        thread = threading.Thread(target=run, name=THREAD_NAME, daemon=True)
        thread.start()
        return thread
