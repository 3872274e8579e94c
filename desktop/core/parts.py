"""Part PUTs to storage: the pre-signed URLs they go to, the transport the uploader sends
each part through with its HTTP implementation (tests use a fake), and the errors an upload
can end with."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Protocol

import httpx

from desktop.core.api import ApiClient
from desktop.core.api_errors import ApiError
from desktop.core.tls import tls_context
from subtone.errors import SubtoneError
from subtone.protocol import PresignedPart

__all__ = [
    "PART_TIMEOUT_SECONDS",
    "PRESIGN_BATCH_SIZE",
    "URL_EXPIRY_MARGIN",
    "HttpPartTransport",
    "PartBody",
    "PartRejected",
    "PartTransport",
    "PartUrlExpired",
    "UploadCancelled",
    "UrlBook",
]

PART_TIMEOUT_SECONDS: Final = 120.0
SEND_SLICE_BYTES: Final = 256 * 1024
"""A part's body is read and handed to the HTTP client in pieces of this size."""
PRESIGN_BATCH_SIZE: Final = 100
"""URLs asked for at once (the API's limit per call)."""
URL_EXPIRY_MARGIN: Final = timedelta(seconds=30)
"""A URL this close to its expiry is replaced before use."""
_RETRYABLE_PART_STATUSES: Final = frozenset({408, 429})


class PartRejected(SubtoneError):
    """Storage refused a part, or the PUT did not get through."""

    code = "part_rejected"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = True,
        code: str | None = None,
    ) -> None:
        super().__init__(message, status=status or 502, code=code)
        self.http_status = status
        self.retryable = retryable


class PartUrlExpired(PartRejected):
    """The part's pre-signed URL is no longer valid (403): ask for a fresh one."""

    code = "url_expired"

    def __init__(self, message: str = "The part's upload link has expired.") -> None:
        super().__init__(message, status=403, retryable=True)


class UploadCancelled(SubtoneError):
    """The cancel token was set; the upload can be resumed later."""

    code = "cancelled"
    status = 499


@dataclass(frozen=True)
class PartBody:
    """A part's bytes as they are sent: its size, and its pieces (``SEND_SLICE_BYTES`` each),
    read afresh each time it is iterated (a retried PUT reads them again). A part is never
    held whole in memory: sending starts with the first piece read, and a parallel upload
    holds a few pieces, not a few parts. The pieces also spare httpcore's sending loop, which
    slices off what each ``send`` took and re-copies the rest of the body it was handed."""

    size: int
    pieces: Callable[[], Iterator[bytes]]

    def __iter__(self) -> Iterator[bytes]:
        return self.pieces()

    @classmethod
    def of(cls, data: bytes) -> PartBody:
        """The body of bytes held in memory."""
        return cls(len(data), lambda: _slices(data))


def _slices(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), SEND_SLICE_BYTES):
        yield data[start : start + SEND_SLICE_BYTES]


class PartTransport(Protocol):
    """PUTs one part's bytes to a pre-signed URL and returns the ``ETag`` storage gave it.

    Raises :class:`PartUrlExpired` on 403 and :class:`PartRejected` on any other failure
    (``retryable`` tells a passing fault from a refusal).
    """

    def put(self, url: str, body: PartBody) -> str: ...


class HttpPartTransport:
    """:class:`PartTransport` over httpx; no API token is ever sent to storage."""

    def __init__(
        self,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = PART_TIMEOUT_SECONDS,
    ) -> None:
        self._http = httpx.Client(transport=transport, verify=tls_context(), timeout=timeout)

    def put(self, url: str, body: PartBody) -> str:
        """The body goes out framed by ``Content-Length``, never chunked: S3 refuses a chunked
        pre-signed PUT, and the local store checks the declared length first."""
        try:
            response = self._http.put(
                url, content=iter(body), headers={"Content-Length": str(body.size)}
            )
        except httpx.TransportError as e:
            raise PartRejected(f"The part did not reach storage: {e}.", retryable=True) from e
        status = response.status_code
        if status == httpx.codes.FORBIDDEN:
            raise PartUrlExpired()
        if not response.is_success:
            error = ApiError.from_response(response)
            if status == httpx.codes.INSUFFICIENT_STORAGE:  # full: retrying will not help
                raise PartRejected(error.message, status=status, retryable=False, code=error.code)
            retryable = status >= 500 or status in _RETRYABLE_PART_STATUSES
            raise PartRejected(
                f"Storage refused a part: {error.message}", status=status, retryable=retryable
            )
        etag: str | None = response.headers.get("etag")
        if not etag:
            raise PartRejected("Storage accepted a part but gave no ETag.", retryable=False)
        return etag

    def close(self) -> None:
        self._http.close()


class UrlBook:
    """Pre-signed URLs, fetched in batches just ahead of use and renewed before they expire."""

    def __init__(
        self,
        client: ApiClient,
        upload_id: str,
        order: Sequence[int],
        clock: Callable[[], datetime],
    ) -> None:
        self._client = client
        self._upload_id = upload_id
        self._order = list(order)
        self._index = {n: i for i, n in enumerate(self._order)}
        self._clock = clock
        self._urls: dict[int, PresignedPart] = {}
        self._sent: set[int] = set()
        self._lock = threading.Lock()

    def _fresh(self, part_number: int) -> bool:
        part = self._urls.get(part_number)
        return part is not None and part.expires_at - URL_EXPIRY_MARGIN > self._clock()

    def url(self, part_number: int) -> str:
        with self._lock:
            if not self._fresh(part_number):
                start = self._index.get(part_number, len(self._order))
                batch = [part_number]
                for n in self._order[start + 1 :]:
                    if len(batch) >= PRESIGN_BATCH_SIZE:
                        break
                    if n not in self._sent and not self._fresh(n):
                        batch.append(n)
                for part in self._client.presign_parts(self._upload_id, batch).parts:
                    self._urls[part.part_number] = part
            found = self._urls.get(part_number)
        if found is None:
            raise ApiError(
                f"The server gave no upload link for part {part_number}.",
                code="bad_response",
                status=200,
            )
        return found.url

    def forget(self, part_number: int) -> None:
        """Drop a URL storage refused, so the next use asks for a fresh one."""
        with self._lock:
            self._urls.pop(part_number, None)

    def sent(self, part_number: int) -> None:
        """The part is stored: its URL is no longer needed, nor worth renewing."""
        with self._lock:
            self._sent.add(part_number)
            self._urls.pop(part_number, None)
