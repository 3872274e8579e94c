"""Who a request is from, and whether it may go on: in one Redis round trip.

Every request needs Redis anyway (its token's rate limit is counted there, across the API
processes), so the rest of what authentication asks rides in the same call: one Lua script
(:data:`ADMIT_SCRIPT`) checks the address's failed authentications, checks that the token
still exists, and counts the request against the tenant's limit.

What each API process caches (``cache_seconds``) is only *which tenant a token belongs to*,
which never changes for a token; whether the token still exists is asked on every request.
So a revoked (or replaced) token is refused at once, by every process, cache or not: the
cache saves the record's read and parsing, never the check. A token not in the cache costs a
second round trip (its record is read first, to learn the tenant whose requests to count).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from typing import Final

import redis.asyncio

from server.auth.ratelimit import (
    AUTH_FAILURES,
    COUNTER_TTL_SECONDS,
    REQUESTS,
    counter_key,
    exceeded,
    window_of,
)
from server.auth.service import (
    MAX_TOKEN_LENGTH,
    TOKEN_PREFIX,
    Tenant,
    TokenInfo,
    Unauthorized,
    token_digest,
    token_key,
)

__all__ = ["ADMIT_SCRIPT", "MAX_CACHED_TOKENS", "Admission"]

MAX_CACHED_TOKENS: Final = 10_000
"""Tokens one API process remembers at most (the cache is emptied when full)."""
FAILURES_WHAT: Final = "failed authentications from this address"
NO_TOKEN: Final = ""
"""Looked up in place of a missing or malformed token: no token's digest is empty."""

ADMIT_SCRIPT: Final = """
-- KEYS[1]: the address's failed authentications this minute
-- KEYS[2]: the token's record
-- KEYS[3]: the tenant's requests this minute ('' when not counted, or the tenant not known)
-- ARGV[1]: failed authentications allowed a minute (0: no limit)
-- ARGV[2]: the counters' lifetime, seconds
-- ARGV[3]: '1' to return the token's record, '0' to check only that it exists
local failures_allowed = tonumber(ARGV[1])
if failures_allowed > 0 and tonumber(redis.call('GET', KEYS[1]) or '0') >= failures_allowed then
  return {'blocked'}
end
local record = false
if ARGV[3] == '1' then
  record = redis.call('GET', KEYS[2])
elseif redis.call('EXISTS', KEYS[2]) == 1 then
  record = ''
end
if not record then
  if failures_allowed > 0 then
    redis.call('INCR', KEYS[1])
    redis.call('EXPIRE', KEYS[1], ARGV[2])
  end
  return {'refused'}
end
local requests = 0
if KEYS[3] ~= '' then
  requests = redis.call('INCR', KEYS[3])
  redis.call('EXPIRE', KEYS[3], ARGV[2])
end
return {'admitted', record, requests}
"""


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Admission:
    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        prefix: str,
        requests_per_minute: int,
        failures_per_minute: int,
        cache_seconds: float,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``requests_per_minute``: per token, ``failures_per_minute``: failed
        authentications per address (0 or less turns either off); ``cache_seconds``: how long
        a token's tenant is remembered (0: its record is read on every request)."""
        self._redis = client
        self._prefix = prefix
        self._requests = max(0, requests_per_minute)
        self._failures = max(0, failures_per_minute)
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, Tenant]] = {}
        self._script = client.register_script(ADMIT_SCRIPT)

    async def admit(self, token: str | None, address: str) -> Tenant:
        """The tenant of ``token``, its request counted; :class:`Unauthorized` (counted as a
        failure of ``address``) or :class:`RateLimitExceeded`."""
        now = self._clock()
        window = window_of(now)
        well_formed = (
            token is not None and token.startswith(TOKEN_PREFIX) and len(token) <= MAX_TOKEN_LENGTH
        )
        digest = token_digest(token) if well_formed and token is not None else NO_TOKEN
        cached = self._cached(digest)
        requests = (
            self._counter(REQUESTS, cached.id, window)
            if cached is not None and self._requests
            else ""
        )
        outcome = await self._script(
            keys=[
                self._counter(AUTH_FAILURES, address, window),
                token_key(self._prefix, digest),
                requests,
            ],
            args=[self._failures, COUNTER_TTL_SECONDS, "0" if cached is not None else "1"],
        )
        verdict = _text(outcome[0])
        if verdict == "blocked":
            raise exceeded(self._failures, now, what=FAILURES_WHAT)
        if verdict != "admitted":
            self._cache.pop(digest, None)
            raise Unauthorized(_refusal(token, well_formed))
        if cached is not None:
            tenant, count = cached, int(outcome[2])
        else:
            info = TokenInfo.model_validate_json(outcome[1])
            if not hmac.compare_digest(info.digest, digest):
                raise Unauthorized(_refusal(token, well_formed))
            tenant = Tenant(id=info.tenant, name=info.name)
            self._remember(digest, tenant)
            count = await self._count(tenant, window) if self._requests else 0
        if self._requests and count > self._requests:
            raise exceeded(self._requests, now, what="requests")
        return tenant

    def _counter(self, name: str, subject: str, window: int) -> str:
        return counter_key(self._prefix, name, subject, window)

    async def _count(self, tenant: Tenant, window: int) -> int:
        key = self._counter(REQUESTS, tenant.id, window)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, COUNTER_TTL_SECONDS)
            count, _ = await pipe.execute()
        return int(count)

    def _cached(self, digest: str) -> Tenant | None:
        if digest == NO_TOKEN:
            return None
        entry = self._cache.get(digest)
        if entry is None:
            return None
        if entry[0] <= self._monotonic():
            del self._cache[digest]
            return None
        return entry[1]

    def _remember(self, digest: str, tenant: Tenant) -> None:
        if self._cache_seconds <= 0:
            return
        if len(self._cache) >= MAX_CACHED_TOKENS:
            self._cache.clear()
        self._cache[digest] = (self._monotonic() + self._cache_seconds, tenant)


def _refusal(token: str | None, well_formed: bool) -> str:
    if token is None:
        return "A valid API token is required: Authorization: Bearer st_…"
    if not well_formed:
        return "The API token is not valid."
    return "The API token is not valid (mistyped, or revoked)."
