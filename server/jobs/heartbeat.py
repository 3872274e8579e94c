"""Which workers consume a queue now: each running worker beats in Redis, the API's
``/readyz`` counts the beats. The same thread keeps the worker's own liveness file
(:class:`AliveFile`) fresh: a probe in its container (``subtone-healthcheck worker``) fails once
that thread is stuck, and Kubernetes restarts the worker.

Per queue one sorted set, ``<prefix>:workers:<queue>``: a member per worker, scored with the
time (Redis's own clock, so hosts' clocks do not matter) its beat lapses. A worker beats every
third of ``ttl_seconds`` while it consumes and removes its member when it stops; a worker
killed outright drops out when its last beat lapses.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Final

import redis

__all__ = [
    "DEFAULT_HEARTBEAT_SECONDS",
    "AliveFile",
    "NoWorkers",
    "NotAlive",
    "WorkerHeartbeats",
    "default_alive_file",
    "worker_id",
]

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


class NotAlive(RuntimeError):
    """The process behind an :class:`AliveFile` has not said it is alive in time."""


class AliveFile:
    """One process's own liveness, for a probe that runs beside it (an exec probe, a Docker
    ``HEALTHCHECK``): a file whose modification time is the moment until which the process
    counts as alive. The process pushes it forward while it works; :meth:`check` fails once that
    moment has passed (or the file is missing), whatever the rest of the process still does.
    Nothing in Redis or RabbitMQ is asked: a broker or Redis outage restarts no worker."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def alive_for(self, seconds: float) -> None:
        """Alive for the next ``seconds``. An error is logged: the next call tries again."""
        until = time.time() + seconds
        try:
            self.path.touch()
            os.utime(self.path, (until, until))
        except OSError as e:
            log.warning("could not write the liveness file %s: %s", self.path, e)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    @staticmethod
    def check(path: Path) -> float:
        """Seconds ``path``'s process stays alive without another word; raises
        :class:`NotAlive` when it is past or ``path`` is missing."""
        try:
            until = path.stat().st_mtime
        except FileNotFoundError:
            raise NotAlive(f"{path} is missing: the worker has not started") from None
        left = until - time.time()
        if left < 0:
            raise NotAlive(f"{path}: no word from the worker's heartbeat for {-left:.0f} s")
        return left


def default_alive_file() -> Path:
    """The worker's liveness file: in the temporary folder (``TMPDIR``; ``/tmp``, an emptyDir in
    Kubernetes), one per user, so that the probe (same user, same container) finds it and two
    users' workers on one machine do not share one."""
    owner = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"subtone-worker-{owner}.alive"


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

    def keep_beating(
        self,
        queue: str,
        worker: str,
        stopping: threading.Event,
        *,
        alive: AliveFile | None = None,
        unhealthy: Callable[[], str | None] = lambda: None,
    ) -> threading.Thread:
        """Beat every third of the TTL until ``stopping`` is set, then leave; returns the
        (started, daemon) thread. A Redis error is logged and the next beat tries again.

        After each beat (made or failed) while ``unhealthy()`` says nothing, ``alive`` is kept
        alive until two TTLs past the next beat: long enough for a beat that waits on an
        unreachable Redis, short enough that a stuck thread is noticed within a minute. When
        ``unhealthy()`` gives a reason (Dramatiq's threads not all running, a job's thread
        stuck), ``alive`` is left to lapse and the reason is logged, once, as an ERROR."""

        def run() -> None:
            interval = self._ttl_ms / 3000
            alive_seconds = interval + 2 * self._ttl_ms / 1000
            reported: str | None = None
            while True:
                try:
                    self.beat(queue, worker)
                except redis.RedisError as e:
                    log.warning("worker heartbeat on %s failed: %s", queue, e)
                if alive is not None:
                    reason = unhealthy()
                    if reason is None:
                        alive.alive_for(alive_seconds)
                    elif reason != reported:
                        log.error("%s: liveness lapses, the worker is to be restarted", reason)
                    reported = reason
                if stopping.wait(interval):
                    break
            try:
                self.leave(queue, worker)
            except redis.RedisError as e:  # it lapses by itself
                log.warning("could not remove the heartbeat of %s: %s", worker, e)

        thread = threading.Thread(target=run, name=THREAD_NAME, daemon=True)
        thread.start()
        return thread
