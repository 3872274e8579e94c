"""A per-token request limit: a fixed one-minute window counted in Redis.

One ``INCR`` per request on ``<prefix>:rate:<subject>:<minute>``; every API process shares the
count. A fixed window lets a burst of up to twice the limit straddle a minute boundary, which
is fine for its purpose (keeping one client from starving the others).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import redis

from server.errors import ErrorWithHeaders

__all__ = ["WINDOW_SECONDS", "RateLimitExceeded", "RateLimiter"]

WINDOW_SECONDS = 60
_KEY_TTL_SECONDS = 2 * WINDOW_SECONDS


class RateLimitExceeded(ErrorWithHeaders):
    code = "rate_limited"
    status = 429

    def __init__(self, limit: int, retry_after_seconds: int) -> None:
        super().__init__(
            f"More than {limit} requests this minute; try again in {retry_after_seconds} s.",
            headers={"Retry-After": str(retry_after_seconds)},
        )
        self.retry_after_seconds = retry_after_seconds


class RateLimiter:
    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str,
        per_minute: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``per_minute`` of 0 (or less) turns the limit off."""
        self._redis = client
        self._prefix = prefix
        self._limit = per_minute
        self._clock = clock

    def hit(self, subject: str) -> None:
        """Count one request of ``subject``; :class:`RateLimitExceeded` once over the limit."""
        if self._limit <= 0:
            return
        now = self._clock()
        window = int(now // WINDOW_SECONDS)
        key = f"{self._prefix}:rate:{subject}:{window}"
        pipe = self._redis.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, _KEY_TTL_SECONDS)
        count, _ = pipe.execute()
        if int(count) > self._limit:
            retry_after = max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
            raise RateLimitExceeded(self._limit, retry_after)
