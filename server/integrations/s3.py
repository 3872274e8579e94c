"""S3 and MinIO storage on the ``minio`` SDK (7.2).

minio-py keeps the multipart calls private (``_create_multipart_upload`` and friends); they are
used here, behind :class:`S3Store`, and nowhere else. Two clients: one on the internal endpoint
that does the work, one on the public endpoint that only signs URLs for clients (SigV4 signs the
host, so a URL signed for ``minio:9000`` is useless from the desktop). The signing client has its
region set, so it never calls the network, except to fetch a role's credentials: without keys,
both clients share one :class:`RoleCredentials`, and a pre-signed URL carries its session token.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import NoReturn
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.credentials.providers import Provider, StaticProvider
from minio.datatypes import Part
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from minio.helpers import DictType
from urllib3.exceptions import HTTPError as Urllib3Error

from server.integrations.s3_credentials import RoleCredentials
from server.integrations.storage import (
    DEFAULT_CONTENT_TYPE,
    READ_CHUNK_SIZE,
    ChunkIterator,
    InvalidPart,
    MultipartUpload,
    ObjectInfo,
    ObjectNotFound,
    ObjectReader,
    PartInfo,
    StorageError,
    StorageFull,
    StorageUnavailable,
    UploadNotFound,
    check_expires,
    content_disposition,
    normalize_etag,
    validate_key,
    validate_part_list,
    validate_part_number,
)

__all__ = ["DEFAULT_REGION", "S3Store", "parse_endpoint"]

DEFAULT_REGION = "us-east-1"
LIST_PAGE_SIZE = 1000
"""S3 returns at most 1,000 parts or uploads a page."""
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 60.0
RETRIES = 3
RETRY_BACKOFF_SECONDS = 0.2
_RETRY_STATUSES = (500, 502, 503, 504)

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchObject", "ResourceNotFound"})
_INVALID_PART_CODES = frozenset({"InvalidPart", "InvalidPartOrder", "EntityTooSmall"})
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "XMinioServerNotInitialized",
    }
)


_FULL_CODES = frozenset({"XMinioStorageFull", "InsufficientStorage", "QuotaExceeded"})
"""MinIO's and S3's "no room left" error codes."""


def parse_endpoint(endpoint: str, secure: bool) -> tuple[str, bool]:
    """``http://minio:9000`` → ``("minio:9000", False)``; a bare ``host:port`` keeps ``secure``."""
    if "://" not in endpoint:
        return endpoint, secure
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"storage endpoint must be http(s)://host[:port], not {endpoint!r}")
    if parts.path.strip("/") or parts.query:
        raise ValueError(f"storage endpoint cannot have a path: {endpoint!r}")
    return parts.netloc, parts.scheme == "https"


def default_http_client() -> urllib3.PoolManager:
    """Short connect timeout and few retries, so an outage is reported, not waited out."""
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS),
        maxsize=10,
        retries=urllib3.Retry(
            total=RETRIES, backoff_factor=RETRY_BACKOFF_SECONDS, status_forcelist=_RETRY_STATUSES
        ),
    )


class S3Store:
    """:class:`~server.integrations.storage.ObjectStore` on S3 or MinIO.

    ``access_key`` and ``secret_key`` both empty: the credentials of the role the process runs
    as (``credentials``, by default a :class:`~server.integrations.s3_credentials.RoleCredentials`).
    """

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        public_endpoint: str | None = None,
        region: str = DEFAULT_REGION,
        secure: bool = False,
        http_client: urllib3.PoolManager | None = None,
        list_page_size: int = LIST_PAGE_SIZE,
        credentials: Provider | None = None,
    ) -> None:
        if bool(access_key) != bool(secret_key):
            raise ValueError("an S3 access key and secret key go together: give both or neither")
        host, is_secure = parse_endpoint(endpoint, secure)
        self._bucket = bucket
        self._page_size = list_page_size
        if access_key:
            credentials = StaticProvider(access_key, secret_key)
        elif credentials is None:
            credentials = RoleCredentials()
        self._client = Minio(
            host,
            credentials=credentials,
            secure=is_secure,
            region=region,
            http_client=http_client or default_http_client(),
        )
        public_host, public_secure = parse_endpoint(public_endpoint or endpoint, secure)
        self._signer = Minio(
            public_host,
            credentials=credentials,
            secure=public_secure,
            region=region,
        )

    @property
    def bucket(self) -> str:
        return self._bucket

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists (safe when two processes race)."""
        try:
            if not self._client.bucket_exists(self._bucket):
                self._client.make_bucket(self._bucket)
        except S3Error as e:
            if e.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                _raise_storage_error(e, f"bucket {self._bucket}")
        except (MinioException, Urllib3Error) as e:
            _raise_storage_error(e, f"bucket {self._bucket}")

    # ---- multipart

    def create_multipart(self, key: str, content_type: str, *, part_size: int | None = None) -> str:
        validate_key(key)
        headers: DictType = {"Content-Type": content_type or DEFAULT_CONTENT_TYPE}
        try:
            return str(self._client._create_multipart_upload(self._bucket, key, headers))
        except (MinioException, Urllib3Error) as e:
            _raise_storage_error(e, key)

    def presign_upload_part(
        self,
        key: str,
        upload_id: str,
        part_number: int,
        expires_seconds: int,
        *,
        max_bytes: int | None = None,
    ) -> str:
        """``max_bytes`` is not enforced: a SigV4 presigned PUT does not bind the body's size
        (S3 still caps a part at 5 GiB, and completing checks the upload's total size)."""
        validate_key(key)
        validate_part_number(part_number)
        query: DictType = {"uploadId": upload_id, "partNumber": str(part_number)}
        return self._presign("PUT", key, expires_seconds, query)

    def upload_part(self, key: str, upload_id: str, part_number: int, data: bytes) -> str:
        validate_key(key)
        validate_part_number(part_number)
        try:
            etag = self._client._upload_part(self._bucket, key, data, None, upload_id, part_number)
        except (MinioException, Urllib3Error) as e:
            _raise_storage_error(e, key)
        return normalize_etag(str(etag))

    def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        validate_key(key)
        parts: list[PartInfo] = []
        marker: str | None = None
        while True:
            try:
                page = self._client._list_parts(
                    self._bucket, key, upload_id, max_parts=self._page_size,
                    part_number_marker=marker,
                )  # fmt: skip
            except (MinioException, Urllib3Error) as e:
                _raise_storage_error(e, key)
            parts.extend(
                PartInfo(p.part_number, normalize_etag(p.etag), p.size or 0) for p in page.parts
            )
            marker = page.next_part_number_marker
            if not page.is_truncated or not marker:
                return parts

    def complete_multipart(
        self,
        key: str,
        upload_id: str,
        parts: Sequence[tuple[int, str]],
        *,
        sha256: str | None = None,
    ) -> ObjectInfo:
        """Assemble in S3. ``sha256`` is not checked here: the server never reads an upload's
        bytes, S3's own multipart checksums are per part (no whole-object SHA-256), so the
        worker verifies the digest before use (see :class:`ObjectStore`)."""
        validate_key(key)
        checked = validate_part_list(parts)
        try:
            self._client._complete_multipart_upload(
                self._bucket, key, upload_id, [Part(n, etag) for n, etag in checked]
            )
        except (MinioException, Urllib3Error) as e:
            _raise_storage_error(e, key)
        return self.head(key)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        validate_key(key)
        try:
            self._client._abort_multipart_upload(self._bucket, key, upload_id)
        except S3Error as e:
            if e.code != "NoSuchUpload":
                _raise_storage_error(e, key)
        except (MinioException, Urllib3Error) as e:
            _raise_storage_error(e, key)

    def list_multipart_uploads(self, prefix: str) -> list[MultipartUpload]:
        uploads: list[MultipartUpload] = []
        key_marker: str | None = None
        upload_marker: str | None = None
        while True:
            try:
                page = self._client._list_multipart_uploads(
                    self._bucket, prefix=prefix, max_uploads=self._page_size,
                    key_marker=key_marker, upload_id_marker=upload_marker,
                )  # fmt: skip
            except (MinioException, Urllib3Error) as e:
                _raise_storage_error(e, prefix)
            uploads.extend(
                MultipartUpload(u.object_name, u.upload_id) for u in page.uploads if u.upload_id
            )
            key_marker = page.next_key_marker
            # minio 7.2 stores NextUploadIdMarker under a mangled attribute name.
            upload_marker = getattr(page, "self._next_upload_id_marker", None)
            if not page.is_truncated or not key_marker:
                return uploads

    # ---- objects

    def head(self, key: str) -> ObjectInfo:
        validate_key(key)
        try:
            stat = self._client.stat_object(self._bucket, key)
        except (MinioException, Urllib3Error) as e:
            _raise_storage_error(e, key)
        return ObjectInfo(
            key=key,
            size=stat.size or 0,
            etag=normalize_etag(stat.etag or ""),
            content_type=stat.content_type or DEFAULT_CONTENT_TYPE,
        )

    def read(self, key: str, start: int = 0, length: int | None = None) -> ChunkIterator:
        validate_key(key)
        if start < 0 or (length is not None and length < 0):
            raise ValueError("start and length must not be negative")
        if length == 0:
            return ChunkIterator(iter(()), lambda: None)
        try:
            response = self._client.get_object(self._bucket, key, offset=start, length=length or 0)
        except S3Error as e:
            if e.code == "InvalidRange":  # start at or past the end: nothing to read
                self.head(key)
                return ChunkIterator(iter(()), lambda: None)
            _raise_storage_error(e, key)
        except (MinioException, Urllib3Error) as e:
            _raise_storage_error(e, key)

        def release() -> None:
            response.close()
            response.release_conn()

        return ChunkIterator(_stream(response, key), release)

    def open_reader(self, key: str) -> ObjectReader:
        return ObjectReader(lambda position: self.read(key, position), self.head(key).size)

    def presign_download(self, key: str, expires_seconds: int, filename: str | None) -> str:
        validate_key(key)
        query: DictType = {}
        if filename is not None:
            query["response-content-disposition"] = content_disposition(filename)
        return self._presign("GET", key, expires_seconds, query)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> ObjectInfo:
        validate_key(key)
        content_type = content_type or DEFAULT_CONTENT_TYPE
        headers: DictType = {"Content-Type": content_type}
        try:
            result = self._client._put_object(self._bucket, key, data, headers)
        except (MinioException, Urllib3Error) as e:
            _raise_storage_error(e, key)
        etag = normalize_etag(result.etag or "")
        return ObjectInfo(key, len(data), etag, content_type)

    def delete(self, key: str) -> None:
        validate_key(key)
        try:
            self._client.remove_object(self._bucket, key)
        except (MinioException, Urllib3Error) as e:
            _raise_storage_error(e, key)

    def ping(self) -> None:
        try:
            exists = self._client.bucket_exists(self._bucket)
        except (MinioException, Urllib3Error) as e:
            raise StorageUnavailable(f"object storage does not answer: {e}") from e
        if not exists:
            raise StorageUnavailable(f"bucket {self._bucket!r} does not exist")

    # ---- helpers

    def _presign(self, method: str, key: str, expires_seconds: int, query: DictType) -> str:
        check_expires(expires_seconds)
        return str(
            self._signer.get_presigned_url(
                method,
                self._bucket,
                key,
                expires=timedelta(seconds=expires_seconds),
                extra_query_params=query,
            )
        )


def _stream(response: urllib3.BaseHTTPResponse, key: str) -> Iterator[bytes]:
    try:
        yield from response.stream(READ_CHUNK_SIZE)
    except Urllib3Error as e:
        raise StorageUnavailable(f"reading {key} from storage broke off: {e}") from e


def _raise_storage_error(error: Exception, what: str) -> NoReturn:
    """Turn a minio or urllib3 exception into the project's own."""
    if isinstance(error, S3Error):
        code = error.code or ""
        message = f"{what}: {code}: {error.message}"
        if code == "NoSuchUpload":
            raise UploadNotFound(f"no such multipart upload for {what}") from error
        if code in _NOT_FOUND_CODES:
            raise ObjectNotFound(f"no object {what}") from error
        if code in _INVALID_PART_CODES or code == "MalformedXML":
            raise InvalidPart(message) from error
        if code in _TRANSIENT_CODES:
            raise StorageUnavailable(message) from error
        if code in _FULL_CODES:
            raise StorageFull(f"Storage is full: could not {what} ({code}).") from error
        raise StorageError(message) from error
    if isinstance(error, ServerError):
        raise StorageUnavailable(f"{what}: {error}") from error
    if isinstance(error, InvalidResponseError):
        raise StorageError(f"{what}: {error}") from error
    if isinstance(error, Urllib3Error):
        raise StorageUnavailable(f"object storage does not answer ({what}): {error}") from error
    raise StorageError(f"{what}: {error}") from error
