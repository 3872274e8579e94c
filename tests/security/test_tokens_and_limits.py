"""Tokens are stored hashed and compared in constant time; bodies, uploads and bursts are
limited: 413 for a body over ``MAX_REQUEST_BODY_BYTES`` (declared or chunked), 413 for an
upload over ``MAX_UPLOAD_BYTES``, 429 with ``Retry-After`` for a burst from one token."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator

import pytest
import redis

from server.auth import service as auth_service
from tests.server.api.conftest import Api, ApiFactory, auth, error_code

from .helpers import redis_items

# --- tokens ----------------------------------------------------------------------------------


def test_tokens_are_stored_only_as_digests(api: Api, redis_client: redis.Redis) -> None:
    # Use both tokens, so anything the API keeps per request is in Redis too.
    for token in (api.alice, api.bob):
        assert api.client.get("/v1/jobs", headers=auth(token)).status_code == 200
    stored = list(redis_items(redis_client, api.settings.REDIS_PREFIX))
    assert stored
    for token in (api.alice, api.bob):
        secret_part = token.removeprefix(auth_service.TOKEN_PREFIX).encode()
        assert not any(secret_part in item for item in stored)
        digest = hashlib.sha256(token.encode()).hexdigest()
        assert redis_client.exists(f"{api.settings.REDIS_PREFIX}:token:{digest}")


def test_tokens_are_found_by_digest_and_compared_in_constant_time(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def spy(a, b):  # type: ignore[no-untyped-def]
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert api.client.get("/v1/jobs", headers=auth(api.alice)).status_code == 200
    digest = hashlib.sha256(api.alice.encode()).hexdigest()
    assert (digest, digest) in calls
    assert api.alice not in {str(a) for a, _ in calls} | {str(b) for _, b in calls}


# --- body and upload size ---------------------------------------------------------------------


BODY_LIMIT = 4096


def _chunks(total: int, size: int = 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


@pytest.mark.parametrize("token", [True, False], ids=["token", "no-token"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize(
    "path", ["/v1/uploads", "/v1/jobs", "/v1/uploads/up_aaaaaaaaaaaa/complete"]
)
def test_a_body_over_the_limit_is_413(
    make_api: ApiFactory, path: str, chunked: bool, token: bool
) -> None:
    api = make_api(MAX_REQUEST_BODY_BYTES=BODY_LIMIT)
    headers = {"Content-Type": "application/json"} | (auth(api.alice) if token else {})
    body = _chunks(BODY_LIMIT + 1) if chunked else b" " * (BODY_LIMIT + 1)
    r = api.client.post(path, content=body, headers=headers)
    assert r.status_code == 413, r.text
    assert error_code(r) == "body_too_large"
    # At the limit, the same request is read (and refused for what it says, not its size).
    r = api.client.post(path, content=_chunks(BODY_LIMIT) if chunked else b" " * BODY_LIMIT,
                        headers=headers)  # fmt: skip
    assert r.status_code != 413


def test_an_upload_over_the_size_limit_is_413(api: Api) -> None:
    body = {"name": "big.wav", "size": api.settings.MAX_UPLOAD_BYTES + 1, "sha256": "0" * 64}
    r = api.client.post("/v1/uploads", json=body, headers=auth(api.alice))
    assert r.status_code == 413 and error_code(r) == "upload_too_large"


# --- rate limit ---------------------------------------------------------------------------


def test_a_burst_from_one_token_is_429_with_retry_after(make_api: ApiFactory) -> None:
    api = make_api(RATE_LIMIT_PER_MINUTE=5)
    answers = [api.client.get("/v1/jobs", headers=auth(api.alice)) for _ in range(8)]
    assert [r.status_code for r in answers] == [200] * 5 + [429] * 3
    for r in answers[5:]:
        assert error_code(r) == "rate_limited"
        assert 1 <= int(r.headers["Retry-After"]) <= 60
    # Another token has its own budget; endpoints of any kind count for the limited one.
    assert api.client.get("/v1/jobs", headers=auth(api.bob)).status_code == 200
    assert api.client.post("/v1/uploads", json={}, headers=auth(api.alice)).status_code == 429
