"""Builds the object store the settings name, for the API and the workers alike."""

from __future__ import annotations

from server.integrations.localstore import LocalStore
from server.integrations.s3 import S3Store
from server.integrations.s3_credentials import RoleCredentials
from server.integrations.storage import ObjectStore
from server.settings import Settings, StorageBackend

__all__ = ["build_store"]

_SCHEME_SEPARATOR = "://"


def build_store(settings: Settings) -> ObjectStore:
    """The store ``SUBTONE_STORAGE_BACKEND`` selects: a local folder or S3/MinIO."""
    if settings.STORAGE_BACKEND is StorageBackend.LOCAL:
        return LocalStore(
            settings.localstore_root,
            settings.SIGNING_SECRET.get_secret_value(),
            public_url=settings.localstore_public_url,
        )
    secret_key = settings.S3_SECRET_KEY.get_secret_value()
    role = None
    if not (settings.S3_ACCESS_KEY or secret_key):
        # A URL dies with the credentials that signed it: renew them while the longest-lived
        # URL the server hands out would still outlive them.
        role = RoleCredentials(max(settings.PRESIGN_TTL_SECONDS, settings.DOWNLOAD_TTL_SECONDS))
    return S3Store(
        settings.S3_ENDPOINT,
        settings.S3_ACCESS_KEY,
        secret_key,
        settings.S3_BUCKET,
        public_endpoint=_public_endpoint(settings),
        region=settings.S3_REGION,
        secure=settings.S3_SECURE,
        credentials=role,
    )


def _public_endpoint(settings: Settings) -> str | None:
    """The endpoint clients see, with its own scheme when ``S3_PUBLIC_SECURE`` says so."""
    endpoint = settings.S3_PUBLIC_ENDPOINT
    if endpoint is None or _SCHEME_SEPARATOR in endpoint or settings.S3_PUBLIC_SECURE is None:
        return endpoint
    scheme = "https" if settings.S3_PUBLIC_SECURE else "http"
    return f"{scheme}{_SCHEME_SEPARATOR}{endpoint}"
