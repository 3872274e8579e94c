"""Request limits: a fixed one-minute window counted in Redis.

One ``INCR`` per request on ``<prefix>:<name>:<subject>:<minute>``; every API process shares the
count. A fixed window lets a burst of up to twice the limit straddle a minute boundary, which
is fine for its purpose (keeping one client from starving the others).

Two limits use it: requests per token (``rate``), and failed authentications per client
address (``authfail``): an address that has sent too many missing, mistyped or revoked tokens
this minute is answered 429 before its next token is even looked up.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from typing import Final

import redis

from server.errors import ErrorWithHeaders

__all__ = ["WINDOW_SECONDS", "FailedAuthLimiter", "RateLimitExceeded", "RateLimiter"]

WINDOW_SECONDS: Final = 60
_KEY_TTL_SECONDS: Final = 2 * WINDOW_SECONDS
REQUESTS: Final = "rate"
AUTH_FAILURES: Final = "authfail"


class RateLimitExceeded(ErrorWithHeaders):
    code = "rate_limited"
    status = 429

    def __init__(self, limit: int, retry_after_seconds: int, *, what: str = "requests") -> None:
        super().__init__(
            f"More than {limit} {what} this minute; try again in {retry_after_seconds} s.",
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
        name: str = REQUESTS,
        what: str = "requests",
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``per_minute`` of 0 (or less) turns the limit off; ``name`` keeps the counts of
        different limits apart; ``what`` is counted, in the 429's message."""
        self._redis = client
        self._prefix = prefix
        self._limit = per_minute
        self._name = name
        self._what = what
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return self._limit > 0

    def _key(self, subject: str, window: int) -> str:
        return f"{self._prefix}:{self._name}:{subject}:{window}"

    def _exceeded(self, now: float, window: int) -> RateLimitExceeded:
        retry_after = max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
        return RateLimitExceeded(self._limit, retry_after, what=self._what)

    def hit(self, subject: str) -> None:
        """Count one request of ``subject``; :class:`RateLimitExceeded` once over the limit."""
        if not self.enabled:
            return
        now = self._clock()
        window = int(now // WINDOW_SECONDS)
        key = self._key(subject, window)
        pipe = self._redis.pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, _KEY_TTL_SECONDS)
        count, _ = pipe.execute()
        if int(count) > self._limit:
            raise self._exceeded(now, window)

    def check(self, subject: str) -> None:
        """:class:`RateLimitExceeded` if ``subject`` has used up this minute's limit; counts
        nothing (a failure is counted with :meth:`hit` once it happened)."""
        if not self.enabled:
            return
        now = self._clock()
        window = int(now // WINDOW_SECONDS)
        count = self._redis.get(self._key(subject, window))
        if count is not None and int(count) >= self._limit:
            raise self._exceeded(now, window)


class FailedAuthLimiter:
    """Failed authentications per client address: :meth:`check` before a token is looked up,
    :meth:`failed` after it was refused."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str,
        per_minute: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._limiter = RateLimiter(
            client,
            prefix=prefix,
            per_minute=per_minute,
            name=AUTH_FAILURES,
            what="failed authentications from this address",
            clock=clock,
        )

    def check(self, address: str) -> None:
        self._limiter.check(address)

    def failed(self, address: str) -> None:
        """Count one refused token; the failure itself is still answered 401."""
        with contextlib.suppress(RateLimitExceeded):
            self._limiter.hit(address)
