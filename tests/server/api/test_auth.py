"""Bearer tokens: who may call, tokens stored only as digests, and the per-token rate limit."""

from __future__ import annotations

import hashlib

import pytest
import redis

from server.auth.ratelimit import FailedAuthLimiter, RateLimiter, RateLimitExceeded
from server.auth.service import InvalidTokenName, TokenNotFound, TokenService, Unauthorized

from .conftest import Api, ApiFactory, auth, error_code

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


def test_rate_limiter_counts_per_window(redis_client: redis.Redis, prefix: str) -> None:
    now = [120.0]
    limiter = RateLimiter(redis_client, prefix=prefix, per_minute=2, clock=lambda: now[0])
    limiter.hit("t1")
    limiter.hit("t1")
    now[0] = 150.5
    with pytest.raises(RateLimitExceeded) as raised:
        limiter.hit("t1")
    assert raised.value.headers == {"Retry-After": "30"}
    limiter.hit("t2")
    now[0] = 180.0  # the next minute
    limiter.hit("t1")


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


def test_failed_auth_limiter_is_per_address(redis_client: redis.Redis, prefix: str) -> None:
    now = [120.0]
    limiter = FailedAuthLimiter(redis_client, prefix=prefix, per_minute=2, clock=lambda: now[0])
    limiter.check("10.0.0.1")
    limiter.failed("10.0.0.1")
    limiter.failed("10.0.0.1")
    now[0] = 170.2
    with pytest.raises(RateLimitExceeded) as raised:
        limiter.check("10.0.0.1")
    assert raised.value.headers == {"Retry-After": "10"}
    limiter.check("10.0.0.2")
    now[0] = 180.0  # the next minute
    limiter.check("10.0.0.1")


def test_the_schema_documents_429_with_retry_after(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    for path, item in schema["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in item.items():
            limited = operation["responses"]["429"]
            assert limited["headers"]["Retry-After"]["required"] is True, (method, path)
            assert "failed authentications" in limited["description"]
