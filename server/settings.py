"""Every setting of the stack, read once from the environment (prefix ``SUBTONE_``).

Units are in the names. Secrets have no usable default: outside ``development`` a missing or
default secret is refused at start-up.
"""

from __future__ import annotations

import os
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Self

import platformdirs
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["MULTIPROC_ENV", "BrokerTimeoutCheck", "Environment", "Settings", "StorageBackend"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's multiprocess mode is on in a process whose environment names this
folder (set by ``server.api`` when ``API_WORKERS`` > 1)."""
MiB = 1024 * 1024
GiB = 1024 * MiB
DEV_SECRET = "dev-only-not-a-secret"  # noqa: S105 - refused outside development


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class BrokerTimeoutCheck(StrEnum):
    OFF = "off"
    WARN = "warn"
    REFUSE = "refuse"


class StorageBackend(StrEnum):
    S3 = "s3"
    LOCAL = "local"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("subtone", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUBTONE_", extra="ignore", frozen=True)

    ENV: Environment = Environment.DEVELOPMENT
    LOG_LEVEL: str = "INFO"
    DATA_DIR: Path = Field(default_factory=default_data_dir)

    # API
    API_HOST: str = "127.0.0.1"
    API_PORT: int = 8600
    API_WORKERS: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    """API processes (uvicorn workers) behind the one port; default: the machine's cores. With
    more than one, ``/metrics`` adds up every process's (prometheus-client's multiprocess
    mode, in ``METRICS_DIR``)."""
    METRICS_DIR: Path | None = None
    """Where the API processes keep their metrics (default: DATA_DIR/metrics); emptied when
    the API starts."""
    TOKEN_CACHE_SECONDS: float = Field(default=60.0, ge=0.0)
    """How long an API process remembers which tenant a token belongs to (0: it reads the
    token's record on every request). Revocation is immediate whatever this is: that the token
    still exists is checked on every request, in the round trip that counts its rate limit."""
    MAX_REQUEST_BODY_BYTES: int = 1 * MiB
    RATE_LIMIT_PER_MINUTE: int = 600
    """Requests one token may make per minute before it gets 429."""
    AUTH_FAILURES_PER_MINUTE: int = 60
    """Missing, invalid or revoked tokens one client address may send per minute; past it the
    address gets 429 (even with a valid token) until the minute is over. 0 turns it off."""
    MAX_EVENT_STREAMS_PER_TENANT: int = 16
    """Job event streams (``GET /v1/jobs/{id}/events``) one tenant may hold open at once; past
    it 429, and the client polls instead. 0 turns the cap off."""
    EVENT_STREAM_SLOT_SECONDS: int = 60
    """An open stream renews its slot this often (a third of it); the slot of a stream whose
    API process was killed frees itself after this long."""

    # Redis (job records, upload sessions, tokens, idempotency keys)
    REDIS_URL: str = "redis://127.0.0.1:6379/0"
    REDIS_PREFIX: str = "subtone"
    """Every Redis key starts with this, so several stacks (or tests) can share one Redis."""

    # RabbitMQ / Dramatiq
    BROKER_URL: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    QUEUE_NAME: str = "subtone-jobs"
    JOB_TIME_LIMIT_SECONDS: int = 600
    CONSUMER_TIMEOUT_SECONDS: int = 3 * 3600
    """RabbitMQ's consumer_timeout for our queue; must exceed the job time limit."""
    BROKER_TIMEOUT_CHECK: BrokerTimeoutCheck = BrokerTimeoutCheck.WARN
    """What a worker does at start when RabbitMQ (older than 3.12, which ignores the queue's
    ``x-consumer-timeout``) would redeliver a job before JOB_TIME_LIMIT_SECONDS: ``warn`` (an
    ERROR line in its log), ``refuse`` (exit; supervisord retries it with back-off), ``off``."""
    JOB_MAX_RETRIES: int = 5
    RETRY_MIN_BACKOFF_SECONDS: float = 2.0
    RETRY_MAX_BACKOFF_SECONDS: float = 120.0
    WORKER_CONCURRENCY: int = 1
    JOB_LEASE_SECONDS: float = 30.0
    """A running job's lease in Redis, renewed while it runs: after its worker dies, another
    delivery of the job takes it over within this time."""
    JOB_MAX_LOST_RUNS: int = 3
    """A job whose runs end this many times without a word (its worker killed, out of memory)
    fails with ``worker_lost`` instead of taking workers down for ever."""
    JOB_STALE_SECONDS: int = 600
    """A running job with no heartbeat for this long and no lease is sent again by the
    workers' reaper (its message was lost with its worker)."""
    REAPER_INTERVAL_SECONDS: int = 60
    WORKER_HEARTBEAT_SECONDS: float = 15.0
    """A consuming worker beats in Redis at least every third of this; the API's ``/readyz``
    counts a worker whose last beat is older as gone."""

    # Triton
    TRITON_URL: str = "127.0.0.1:8601"
    """gRPC address of Triton."""
    TRITON_TIMEOUT_SECONDS: float = 60.0
    TRITON_ROBUST_TIMEOUT_SECONDS: float = 300.0
    """Deadline of one robust-mode call: a whole cover, about a second of CPU per minute of
    cover (docs/robust.md), with room for a busy server."""
    READYZ_CHECKS_TRITON: bool = True
    """Whether the API's ``/readyz`` asks Triton. Turn it off where Triton scales to zero
    with the queue (Kubernetes with KEDA) or where only the workers may reach it: the API
    never calls Triton itself, so it can serve while Triton sleeps."""
    READYZ_CHECKS_WORKERS: bool = True
    """Whether the API's ``/readyz`` needs a worker consuming the queue (a heartbeat in
    Redis). Turn it off where workers scale to zero with the queue (Kubernetes with KEDA):
    jobs then wait in the queue until one starts."""
    WINDOWS_IN_FLIGHT: int = 4

    # Worker metrics (Prometheus)
    WORKER_METRICS_HOST: str = "127.0.0.1"
    """``0.0.0.0`` in a container, so Prometheus can scrape it."""
    WORKER_METRICS_PORT: int = Field(default=8605, ge=0)
    """Port of the worker's ``/metrics``; 0 turns it off."""

    # Storage
    STORAGE_BACKEND: StorageBackend = StorageBackend.LOCAL
    S3_ENDPOINT: str = "127.0.0.1:9000"
    """Endpoint the API and the workers use (``minio:9000`` inside compose)."""
    S3_PUBLIC_ENDPOINT: str | None = None
    """Endpoint in the URLs handed to clients (``localhost:9000`` from the desktop)."""
    S3_SECURE: bool = False
    S3_PUBLIC_SECURE: bool | None = None
    S3_REGION: str = "us-east-1"
    S3_BUCKET: str = "subtone"
    S3_ACCESS_KEY: str = ""
    S3_SECRET_KEY: SecretStr = SecretStr("")
    """Both set: these keys. Both empty: the credentials of the role the process runs as (IRSA,
    EKS Pod Identity, an instance or task role: ``server.integrations.s3.RoleCredentials``)."""
    LOCALSTORE_HOST: str = "127.0.0.1"
    LOCALSTORE_PORT: int = 8602
    LOCALSTORE_PUBLIC_URL: str | None = None
    LOCALSTORE_ROOT: Path | None = None
    """Folder of the local store (default: DATA_DIR/objects)."""
    SIGNING_SECRET: SecretStr = SecretStr(DEV_SECRET)
    """HMAC key of the local store's signed URLs."""

    # Limits
    PART_SIZE_BYTES: int = 16 * MiB
    MAX_UPLOAD_BYTES: int = 8 * GiB
    PRESIGN_TTL_SECONDS: int = 900
    DOWNLOAD_TTL_SECONDS: int = 3600
    MAX_PARTS_PER_PRESIGN: int = 100
    UPLOAD_TTL_SECONDS: int = 7 * 24 * 3600
    """Unfinished uploads older than this are aborted; finished objects are kept as long."""
    JOB_TTL_SECONDS: int = 7 * 24 * 3600
    """How long a job's record is kept: at most ``UPLOAD_TTL_SECONDS``, so that no job points at
    a result object that storage has already expired (both go together by default)."""
    MAX_SECRET_BYTES: int = 256 * MiB
    MAX_ROBUST_SECONDS: float = Field(default=1800.0, gt=0)
    """Longest cover a robust-mode job takes: one cover is one Triton request, whose memory
    grows with the cover (about 1 GB for 30 minutes); robust mode carries about 100 bits per
    second, so a few minutes hold a short message."""

    @cached_property
    def localstore_root(self) -> Path:
        return self.LOCALSTORE_ROOT or self.DATA_DIR / "objects"

    @cached_property
    def metrics_dir(self) -> Path:
        return self.METRICS_DIR or self.DATA_DIR / "metrics"

    @cached_property
    def localstore_public_url(self) -> str:
        return self.LOCALSTORE_PUBLIC_URL or f"http://{self.LOCALSTORE_HOST}:{self.LOCALSTORE_PORT}"

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.JOB_TIME_LIMIT_SECONDS >= self.CONSUMER_TIMEOUT_SECONDS:
            raise ValueError("SUBTONE_JOB_TIME_LIMIT_SECONDS must be below the consumer timeout")
        if self.JOB_TTL_SECONDS > self.UPLOAD_TTL_SECONDS:
            raise ValueError(
                "SUBTONE_JOB_TTL_SECONDS must not exceed SUBTONE_UPLOAD_TTL_SECONDS: a job record "
                "would outlive its result object"
            )
        if self.JOB_STALE_SECONDS <= self.JOB_LEASE_SECONDS:
            raise ValueError("SUBTONE_JOB_STALE_SECONDS must exceed SUBTONE_JOB_LEASE_SECONDS")
        if self.STORAGE_BACKEND is StorageBackend.S3 and (
            bool(self.S3_ACCESS_KEY) != bool(self.S3_SECRET_KEY.get_secret_value())
        ):
            raise ValueError(
                "SUBTONE_S3_ACCESS_KEY and SUBTONE_S3_SECRET_KEY go together: set both, or "
                "neither to use the credentials of the role the server runs as (IRSA, EKS Pod "
                "Identity, an instance role)"
            )
        if self.ENV is Environment.DEVELOPMENT:
            return self
        if self.SIGNING_SECRET.get_secret_value() in ("", DEV_SECRET):
            raise ValueError("SUBTONE_SIGNING_SECRET must be set to a random value in production")
        return self
