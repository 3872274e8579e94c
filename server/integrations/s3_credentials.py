"""S3 credentials without keys: those of the role the process runs as (IRSA, EKS Pod Identity,
an ECS task or EC2 instance role), for :class:`~server.integrations.s3.S3Store`.

They are temporary, and a pre-signed URL stops working when the credentials that signed it
expire, whatever its own lifetime. So :class:`RoleCredentials` fetches new ones while those in
hand still have ``min_lifetime_seconds`` to run (the longest lifetime of a URL the server hands
out), not only when they expire, as minio-py's providers do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import urllib3
from minio.credentials.credentials import Credentials
from minio.credentials.providers import ChainedProvider, EnvAWSProvider, IamAwsProvider, Provider
from urllib3.exceptions import HTTPError as Urllib3Error

from server.integrations.storage import StorageUnavailable

__all__ = ["RETRY_SECONDS", "RoleCredentials", "aws_chain"]

RETRY_SECONDS = 60.0
"""Least time between two look-ups while the credentials in hand are still valid: a source that
gives no longer-lived ones (IRSA's one-hour sessions against a one-hour download URL, the
instance metadata before it rotates) is asked once a minute, not on every request."""
EXPIRY_MARGIN_SECONDS = 10.0
"""Credentials this close to their expiry are not used (minio-py's own margin)."""
CONNECT_TIMEOUT_SECONDS = 2.0
READ_TIMEOUT_SECONDS = 10.0
RETRIES = 2


def _http_client() -> urllib3.PoolManager:
    """Short timeouts: the instance metadata address does not answer off EC2."""
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS),
        retries=urllib3.Retry(
            total=RETRIES, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)
        ),
    )


def aws_chain() -> Provider:
    """The AWS SDKs' order: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``
    (``AWS_SESSION_TOKEN``) in the environment; else IRSA's web identity token
    (``AWS_WEB_IDENTITY_TOKEN_FILE`` and ``AWS_ROLE_ARN``, exchanged at STS); else the container
    credentials endpoint (EKS Pod Identity's agent, ECS: ``AWS_CONTAINER_CREDENTIALS_FULL_URI``
    or ``_RELATIVE_URI``); else the EC2 instance metadata. Read from the environment when built."""
    return ChainedProvider([EnvAWSProvider(), IamAwsProvider(http_client=_http_client())])


def _utcnow() -> datetime:
    """Naive UTC, as minio-py keeps a credential's expiry."""
    return datetime.now(UTC).replace(tzinfo=None)


class RoleCredentials(Provider):
    """minio-py credentials from ``sources`` (a fresh :func:`aws_chain` for each look-up, so that
    no cache inside it hands back the same credentials), renewed while they still have
    ``min_lifetime_seconds`` to run. A failed look-up is :class:`StorageUnavailable`, unless the
    credentials in hand are still valid: they are used until then."""

    def __init__(
        self,
        min_lifetime_seconds: float = 0.0,
        *,
        sources: Callable[[], Provider] = aws_chain,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._min_lifetime = timedelta(seconds=min_lifetime_seconds)
        self._sources = sources
        self._now = now
        self._lock = threading.Lock()
        self._held: Credentials | None = None
        self._tried_at: datetime | None = None

    def retrieve(self) -> Credentials:
        with self._lock:
            now = self._now()
            held = self._held
            if held is not None and self._usable(held, now):
                return held
            try:
                fresh = self._sources().retrieve()
            except (ValueError, KeyError, OSError, Urllib3Error) as e:
                if held is not None and self._valid(held, now):
                    return held
                raise StorageUnavailable(
                    "no S3 credentials: SUBTONE_S3_ACCESS_KEY and SUBTONE_S3_SECRET_KEY are "
                    "unset, and neither AWS_ACCESS_KEY_ID, a web identity token (IRSA), a "
                    "container credentials endpoint (EKS Pod Identity, ECS) nor the instance "
                    f"metadata gave a role's: {e}"
                ) from e
            finally:
                self._tried_at = now
            self._held = fresh
            return fresh

    def _usable(self, held: Credentials, now: datetime) -> bool:
        """Valid, and long-lived enough or looked up again too recently."""
        if not self._valid(held, now):
            return False
        if held.expiration is None or held.expiration - now >= self._min_lifetime:
            return True
        retry = timedelta(seconds=RETRY_SECONDS)
        return self._tried_at is not None and now - self._tried_at < retry

    @staticmethod
    def _valid(held: Credentials, now: datetime) -> bool:
        return held.expiration is None or held.expiration - now > timedelta(
            seconds=EXPIRY_MARGIN_SECONDS
        )
