"""The whole stack as real processes (API, local store or S3, worker, Triton), started by the
standalone supervisor exactly as ``subtone standalone up`` starts it, with a Redis key prefix
and a queue of its own (:mod:`server.standalone.private`), and two tenants' tokens; shared by
the integration, fault and desktop tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from server.auth.service import TokenService
from server.settings import Settings
from server.standalone.private import (
    LOCAL_REDIS_URL,
    distinct_ports,
    free_ports,
    private_stack,
    rabbit_vhost,
)
from server.standalone.stack import Ports
from server.standalone.supervisor import Supervisor

__all__ = ["REDIS_URL", "Stack", "distinct_ports", "free_port", "rabbit_vhost", "running_stack"]

REDIS_URL = LOCAL_REDIS_URL


def free_port() -> int:
    return free_ports(1)[0]


@dataclass
class Stack:
    url: str
    token: str
    other_token: str
    settings: Settings
    supervisor: Supervisor
    redis: redis.Redis


@contextmanager
def running_stack(
    data_dir: Path,
    broker_url: str,
    *,
    redis_url: str = REDIS_URL,
    ports: Ports | None = None,
    model_repository: Path | None = None,
    **overrides: object,
) -> Iterator[Stack]:
    """The stack on ``broker_url`` and ``redis_url`` with these settings overrides; two
    tenants' tokens; everything stopped and its Redis keys deleted afterwards."""
    with private_stack(
        data_dir,
        broker_url,
        redis_url=redis_url,
        ports=ports,
        model_repository=model_repository,
        **overrides,
    ) as stack:
        tokens = TokenService(stack.redis, prefix=stack.settings.REDIS_PREFIX)
        alice, _ = tokens.create("alice")
        bob, _ = tokens.create("bob")
        yield Stack(stack.url, alice, bob, stack.settings, stack.supervisor, stack.redis)
