"""One run of a job at a time: a lease in Redis, held while the job runs.

RabbitMQ can deliver the same job twice: a message redelivered after a consumer timeout, a
job handed back whose ack was lost, the API's publish retried after a confirm timed out, or
the reaper sending a job whose worker vanished. Each delivery first takes the job's lease
(``SET NX PX`` with a token of its own, kept alive by a thread while the job runs). A
delivery that finds the lease taken waits: when the other run finishes, the job is finished
and this delivery has nothing to do; when the other run's worker dies, its lease lapses
within ``ttl_seconds`` and this delivery takes the job over. Either way the job runs once at
a time and publishes one result.
"""

from __future__ import annotations

import contextvars
import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

import redis

from server.jobs.progress import JobInterrupted

__all__ = ["DEFAULT_LEASE_SECONDS", "JobLeases"]

log = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS: Final = 30.0
WAIT_SECONDS: Final = 1.0
"""How often a delivery waiting for a lease looks again."""
THREAD_NAME: Final = "job-lease"

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class JobLeases:
    def __init__(
        self, client: redis.Redis, *, prefix: str, ttl_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._ttl_ms = max(1, round(ttl_seconds * 1000))
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def _key(self, job_id: str) -> str:
        return f"{self._prefix}:lease:{job_id}"

    def held(self, job_id: str) -> bool:
        """Whether some run holds the job's lease now."""
        return bool(self._redis.exists(self._key(job_id)))

    @contextmanager
    def hold(
        self,
        job_id: str,
        *,
        stopping: threading.Event,
        finished: Callable[[], bool],
        wait_seconds: float = WAIT_SECONDS,
    ) -> Iterator[bool]:
        """Take the job's lease for the ``with`` block, waiting while another run holds it.

        Yields True once held, or False (the job needs nothing more) when ``finished()`` turns
        true while waiting; raises :class:`JobInterrupted` if the worker starts stopping
        meanwhile.
        """
        token = secrets.token_hex(16)
        key = self._key(job_id)
        while not self._redis.set(key, token, nx=True, px=self._ttl_ms):
            if finished():
                yield False
                return
            log.info("job %s is being run by another delivery: waiting for it", job_id)
            if stopping.wait(wait_seconds):
                raise JobInterrupted()
        done = threading.Event()
        # In a copy of this thread's context: a new thread's is empty, and the keeper's log
        # lines must carry the job's trace (server.kit.logs).
        keeper = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._keep, job_id, token, done),
            name=THREAD_NAME,
            daemon=True,
        )
        keeper.start()
        try:
            yield True
        finally:
            done.set()
            keeper.join()
            try:
                self._release(keys=[key], args=[token])
            except redis.RedisError as e:  # it lapses by itself within its TTL
                log.warning("could not release the lease of job %s: %s", job_id, e)

    def _keep(self, job_id: str, token: str, done: threading.Event) -> None:
        key, interval = self._key(job_id), self._ttl_ms / 3000
        while not done.wait(interval):
            try:
                renewed = self._renew(keys=[key], args=[token, self._ttl_ms])
            except redis.RedisError as e:
                log.warning("could not renew the lease of job %s: %s", job_id, e)
                continue
            if not renewed:
                # Redis lost it, or a pause longer than the TTL let another run take it. The
                # runs write the same bytes under the same key, so carrying on is safe.
                log.error("job %s lost its lease; another run may have taken it", job_id)
                return
