"""Shared by the security and privacy tests: the API's operations, everything in Redis."""

from __future__ import annotations

from collections.abc import Iterator

import redis

from server.app import create_app
from server.settings import Settings

METHODS = ("get", "put", "post", "delete", "patch")


def openapi() -> dict:
    return create_app(Settings()).openapi()


def operations(prefix: str = "") -> list[tuple[str, str]]:
    """Every ``(METHOD, path)`` of the app's OpenAPI under ``prefix``: a new endpoint joins
    every test built on this."""
    spec = openapi()
    return [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        if path.startswith(prefix)
        for method in item
        if method in METHODS
    ]


def redis_items(client: redis.Redis, prefix: str) -> Iterator[bytes]:
    """Every key under ``prefix`` and every value, field and member it holds."""
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        yield key
        kind = client.type(key)
        if kind == b"string":
            yield client.get(key) or b""
        elif kind == b"hash":
            for field, value in client.hgetall(key).items():
                yield field
                yield value
        elif kind == b"zset":
            yield from (m for m, _ in client.zrange(key, 0, -1, withscores=True))
        elif kind == b"set":
            yield from client.smembers(key)
        elif kind == b"list":
            yield from client.lrange(key, 0, -1)
        else:
            raise AssertionError(f"unexpected Redis type {kind!r} at {key!r}")
