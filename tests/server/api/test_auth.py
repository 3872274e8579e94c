"""Bearer tokens: who may call, tokens stored only as digests, and the per-token rate limit."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
import redis
from redis.asyncio import Redis as AsyncRedis

from server.auth.admission import Admission
from server.auth.ratelimit import RateLimitExceeded
from server.auth.service import InvalidTokenName, TokenNotFound, TokenService, Unauthorized

from .conftest import REDIS_URL, Api, ApiFactory, auth, error_code

T = TypeVar("T")

PROTECTED = "/v1/jobs"


def test_a_missing_token_is_401_with_a_bearer_challenge(api: Api) -> None:
    response = api.client.get(PROTECTED)
    assert response.status_code == 401
    assert error_code(response) == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header",
    ["Bearer st_not-a-real-token", "Bearer nonsense", "Basic YWxpY2U6cGFzcw==", "Bearer"],
)
def test_an_invalid_token_is_401(api: Api, header: str) -> None:
    response = api.client.get(PROTECTED, headers={"Authorization": header})
    assert response.status_code == 401
    assert error_code(response) == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_valid_token_is_let_in(api: Api) -> None:
    response = api.client.get(PROTECTED, headers=auth(api.alice))
    assert response.status_code == 200
    assert response.json() == {"jobs": []}


def test_a_revoked_token_stops_working_at_once(api: Api) -> None:
    api.tokens.revoke("alice")
    response = api.client.get(PROTECTED, headers=auth(api.alice))
    assert response.status_code == 401


def test_over_the_rate_limit_is_429_with_retry_after(make_api: ApiFactory) -> None:
    limit = 3
    api = make_api(RATE_LIMIT_PER_MINUTE=limit)
    # A minute boundary may reset the count once; 2 * limit + 1 requests always cross it.
    statuses = [api.client.get(PROTECTED, headers=auth(api.alice)) for _ in range(2 * limit + 1)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, [r.status_code for r in statuses]
    assert error_code(limited[0]) == "rate_limited"
    assert 1 <= int(limited[0].headers["Retry-After"]) <= 60
    # Another token has its own count.
    assert api.client.get(PROTECTED, headers=auth(api.bob)).status_code == 200


def with_admission(prefix: str, use: Callable[[Callable[..., Admission]], Awaitable[T]]) -> T:
    """Run ``use`` on an event loop with a factory of admissions (API processes) on Redis."""

    async def run() -> T:
        client = AsyncRedis.from_url(REDIS_URL)
        try:

            def admission(**settings: object) -> Admission:
                values: dict[str, object] = {
                    "requests_per_minute": 0, "failures_per_minute": 0, "cache_seconds": 60.0,
                } | settings  # fmt: skip
                return Admission(client, prefix=prefix, **values)  # type: ignore[arg-type]

            return await use(admission)
        finally:
            await client.aclose()

    return asyncio.run(run())


def test_requests_are_counted_per_token_and_window(redis_client: redis.Redis, prefix: str) -> None:
    tokens = TokenService(redis_client, prefix=prefix)
    t1, t2 = tokens.create("t1")[0], tokens.create("t2")[0]
    now = [120.0]

    async def use(admission: Callable[..., Admission]) -> None:
        gate = admission(requests_per_minute=2, clock=lambda: now[0])
        await gate.admit(t1, "10.0.0.1")  # not cached yet: its record is read first
        await gate.admit(t1, "10.0.0.1")  # cached: one round trip
        now[0] = 150.5
        with pytest.raises(RateLimitExceeded) as raised:
            await gate.admit(t1, "10.0.0.1")
        assert raised.value.headers == {"Retry-After": "30"}
        await gate.admit(t2, "10.0.0.1")
        now[0] = 180.0  # the next minute
        await gate.admit(t1, "10.0.0.1")

    with_admission(prefix, use)


def test_failed_authentications_are_counted_per_address(
    redis_client: redis.Redis, prefix: str
) -> None:
    token, _ = TokenService(redis_client, prefix=prefix).create("carol")
    now = [120.0]

    async def use(admission: Callable[..., Admission]) -> None:
        gate = admission(failures_per_minute=2, clock=lambda: now[0])
        for bad in (None, token + "x"):  # a missing token counts as much as a wrong one
            with pytest.raises(Unauthorized):
                await gate.admit(bad, "10.0.0.1")
        now[0] = 170.2
        with pytest.raises(RateLimitExceeded) as raised:  # before even a valid token is asked
            await gate.admit(token, "10.0.0.1")
        assert raised.value.headers == {"Retry-After": "10"}
        assert "failed authentications" in raised.value.message
        await gate.admit(token, "10.0.0.2")
        now[0] = 180.0  # the next minute
        await gate.admit(token, "10.0.0.1")

    with_admission(prefix, use)


@pytest.mark.parametrize("cache_seconds", [0.0, 60.0])
def test_a_revoked_or_replaced_token_is_refused_at_once_by_every_process(
    redis_client: redis.Redis, prefix: str, cache_seconds: float
) -> None:
    tokens = TokenService(redis_client, prefix=prefix)
    carol, info = tokens.create("carol")
    dave, _ = tokens.create("dave")

    async def use(admission: Callable[..., Admission]) -> None:
        first, second = (admission(cache_seconds=cache_seconds) for _ in range(2))
        for gate in (first, second):
            assert (await gate.admit(carol, "10.0.0.1")).id == info.tenant
            await gate.admit(dave, "10.0.0.1")
        tokens.revoke("carol")
        tokens.create("dave")  # a new token for dave: the old one stops
        for gate in (first, second):
            for gone in (carol, dave):
                with pytest.raises(Unauthorized):
                    await gate.admit(gone, "10.0.0.1")

    with_admission(prefix, use)


def test_a_cached_token_is_not_read_again(redis_client: redis.Redis, prefix: str) -> None:
    """What is cached is whose token it is; the record is read once per process."""
    token, info = TokenService(redis_client, prefix=prefix).create("carol")
    key = f"{prefix}:token:{info.digest}"

    async def use(admission: Callable[..., Admission]) -> None:
        cached, uncached = admission(cache_seconds=60.0), admission(cache_seconds=0.0)
        await cached.admit(token, "10.0.0.1")
        redis_client.set(key, b"not a token record")  # still there, no longer readable
        assert (await cached.admit(token, "10.0.0.1")).id == info.tenant
        with pytest.raises(ValueError, match="JSON"):
            await uncached.admit(token, "10.0.0.1")

    with_admission(prefix, use)


def test_a_cached_token_is_read_again_once_its_time_is_up(
    redis_client: redis.Redis, prefix: str
) -> None:
    """The cache holds a token's tenant for ``cache_seconds``, then reads its record again."""
    token, info = TokenService(redis_client, prefix=prefix).create("dave")
    key = f"{prefix}:token:{info.digest}"
    now = [1000.0]

    async def use(admission: Callable[..., Admission]) -> None:
        cached = admission(cache_seconds=30.0, monotonic=lambda: now[0])
        await cached.admit(token, "10.0.0.1")
        redis_client.set(key, b"not a token record")
        now[0] += 29.9
        assert (await cached.admit(token, "10.0.0.1")).id == info.tenant  # still cached
        now[0] += 0.2
        with pytest.raises(ValueError, match="JSON"):  # read again: the record is what counts
            await cached.admit(token, "10.0.0.1")

    with_admission(prefix, use)


def test_tokens_are_stored_only_as_digests(redis_client: redis.Redis, prefix: str) -> None:
    tokens = TokenService(redis_client, prefix=prefix)
    token, info = tokens.create("carol")
    assert token.startswith("st_") and len(token) > 40
    assert info.digest == hashlib.sha256(token.encode()).hexdigest()
    secret_part = token.encode()
    for key in redis_client.scan_iter(match=f"{prefix}:*"):
        assert secret_part not in key
        kind = redis_client.type(key)
        values = (
            redis_client.hvals(key) + redis_client.hkeys(key)
            if kind == b"hash"
            else [redis_client.get(key) or b""]
        )
        assert all(secret_part not in value for value in values)


def test_authenticate_gives_the_tenant(redis_client: redis.Redis, prefix: str) -> None:
    tokens = TokenService(redis_client, prefix=prefix)
    token, info = tokens.create("carol")
    tenant = tokens.authenticate(token)
    assert (tenant.id, tenant.name) == (info.tenant, "carol")
    with pytest.raises(Unauthorized):
        tokens.authenticate(token + "x")


def test_a_new_token_replaces_the_old_one_and_keeps_the_tenant(
    redis_client: redis.Redis, prefix: str
) -> None:
    tokens = TokenService(redis_client, prefix=prefix)
    old, first = tokens.create("carol")
    new, second = tokens.create("carol")
    assert second.tenant == first.tenant
    with pytest.raises(Unauthorized):
        tokens.authenticate(old)
    assert tokens.authenticate(new).id == first.tenant
    assert [i.name for i in tokens.list()] == ["carol"]


def test_list_and_revoke(redis_client: redis.Redis, prefix: str) -> None:
    tokens = TokenService(redis_client, prefix=prefix)
    tokens.create("dave")
    tokens.create("carol")
    assert [i.name for i in tokens.list()] == ["carol", "dave"]
    tokens.revoke("carol")
    assert [i.name for i in tokens.list()] == ["dave"]
    with pytest.raises(TokenNotFound):
        tokens.revoke("carol")


@pytest.mark.parametrize("name", ["", "has space", "../x", "-dash-first", "x" * 65])
def test_token_names_are_checked(redis_client: redis.Redis, prefix: str, name: str) -> None:
    with pytest.raises(InvalidTokenName):
        TokenService(redis_client, prefix=prefix).create(name)


# --- failed authentications per address ------------------------------------------------------


def test_failed_authentications_from_one_address_are_429_with_retry_after(
    make_api: ApiFactory,
) -> None:
    limit = 3
    api = make_api(AUTH_FAILURES_PER_MINUTE=limit)
    bad = {"Authorization": "Bearer st_not-a-real-token"}
    # A minute boundary may reset the count once; 2 * limit + 1 failures always cross it.
    responses = [api.client.get(PROTECTED, headers=bad) for _ in range(2 * limit + 1)]
    statuses = [r.status_code for r in responses]
    assert set(statuses) == {401, 429}, statuses
    limited = next(r for r in responses if r.status_code == 429)
    assert error_code(limited) == "rate_limited"
    assert "failed authentications" in limited.json()["error"]["message"]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # Once limited, the address is refused before any token is looked up: even a valid one.
    if statuses[-1] == 429:
        assert api.client.get(PROTECTED, headers=auth(api.alice)).status_code == 429


def test_missing_tokens_count_as_failures(make_api: ApiFactory) -> None:
    api = make_api(AUTH_FAILURES_PER_MINUTE=2)
    statuses = [api.client.get(PROTECTED).status_code for _ in range(5)]
    assert 429 in statuses, statuses


def test_valid_tokens_are_not_counted_as_failures(make_api: ApiFactory) -> None:
    api = make_api(AUTH_FAILURES_PER_MINUTE=2)
    statuses = [api.client.get(PROTECTED, headers=auth(api.alice)).status_code for _ in range(6)]
    assert statuses == [200] * 6


def test_the_schema_documents_429_with_retry_after(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    for path, item in schema["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in item.items():
            limited = operation["responses"]["429"]
            assert limited["headers"]["Retry-After"]["required"] is True, (method, path)
            assert "failed authentications" in limited["description"]
