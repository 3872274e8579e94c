"""Request limits: a fixed one-minute window counted in Redis.

One counter per subject and minute, ``<prefix>:<name>:<subject>:<minute>``, shared by every
API process and incremented by :mod:`server.auth.admission` in the request's one round trip.
A fixed window lets a burst of up to twice the limit straddle a minute boundary, which is fine
for its purpose (keeping one client from starving the others).

Two limits use it: requests per token (``rate``), and failed authentications per client
address (``authfail``): an address that has sent too many missing, mistyped or revoked tokens
this minute is answered 429 before its next token is even looked up.
"""

from __future__ import annotations

import math
from typing import Final

from server.errors import ErrorWithHeaders

__all__ = [
    "AUTH_FAILURES",
    "COUNTER_TTL_SECONDS",
    "REQUESTS",
    "WINDOW_SECONDS",
    "RateLimitExceeded",
    "counter_key",
    "exceeded",
    "window_of",
]

WINDOW_SECONDS: Final = 60
COUNTER_TTL_SECONDS: Final = 2 * WINDOW_SECONDS
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


def window_of(now: float) -> int:
    """The minute (since the epoch) that ``now`` (a UNIX time) falls in."""
    return int(now // WINDOW_SECONDS)


def counter_key(prefix: str, name: str, subject: str, window: int) -> str:
    """The counter of limit ``name`` for ``subject`` in minute ``window``."""
    return f"{prefix}:{name}:{subject}:{window}"


def exceeded(limit: int, now: float, *, what: str) -> RateLimitExceeded:
    """The 429 for ``limit`` at ``now``, retried when its minute is over."""
    retry_after = max(1, math.ceil((window_of(now) + 1) * WINDOW_SECONDS - now))
    return RateLimitExceeded(limit, retry_after, what=what)
