"""Signed URLs of the local object store: one method on one key (and one part), expiring.

Hand-written on purpose: the URLs carry fields no general signing library knows (the upload id,
the part number and the most bytes a part PUT may carry, all under one HMAC), and the whole
scheme is the few lines below over :mod:`hmac`; MinIO and S3 do the same with SigV4.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from server.integrations.storage import check_expires
from subtone.errors import SubtoneError

__all__ = [
    "OBJECT_URL_PREFIX",
    "Clock",
    "ExpiredUrl",
    "Grant",
    "InvalidSignature",
    "UrlSigner",
]

OBJECT_URL_PREFIX = "/o/"
"""Objects are served under ``<public_url>/o/<key>``, leaving other paths to the process."""
SIGNATURE_VERSION = "subtone-localstore-v2"
MIN_SECRET_BYTES = 16

Clock = Callable[[], float]


class ExpiredUrl(SubtoneError):
    code = "expired_url"
    status = 403


class InvalidSignature(SubtoneError):
    code = "invalid_signature"
    status = 403


@dataclass(frozen=True)
class Grant:
    """What one signed URL allows: one method on one key (and one part), until ``expires``.

    ``max_bytes`` (a part URL's) is the most bytes the PUT may carry: the size the API planned
    for that part; 0 leaves only the store's own part limit.
    """

    method: str
    key: str
    expires: int
    upload_id: str = ""
    part_number: int = 0
    filename: str = ""
    max_bytes: int = 0

    def message(self) -> bytes:
        fields = (
            SIGNATURE_VERSION,
            self.method,
            self.key,
            self.upload_id,
            str(self.part_number),
            str(self.expires),
            self.filename,
            str(self.max_bytes),
        )
        return "\n".join(fields).encode("utf-8")

    def query(self) -> dict[str, str]:
        params = {"expires": str(self.expires)}
        if self.upload_id:
            params["uploadId"] = self.upload_id
            params["partNumber"] = str(self.part_number)
        if self.filename:
            params["filename"] = self.filename
        if self.max_bytes:
            params["maxBytes"] = str(self.max_bytes)
        return params


class UrlSigner:
    """HMAC-SHA256 URL signatures: single-purpose and expiring.

    The signed message is ``subtone-localstore-v2\\nMETHOD\\nKEY\\nUPLOAD_ID\\nPART\\nEXPIRES\\n
    FILENAME\\nMAX_BYTES`` (keys and upload ids hold no newline), so a URL for part 3 cannot PUT
    part 4 or more bytes than planned, a PUT URL cannot GET, and no field can be edited without
    the secret.
    """

    def __init__(self, secret: bytes, clock: Clock = time.time) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the local store secret must be at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret
        self._clock = clock

    def grant(
        self,
        method: str,
        key: str,
        expires_seconds: int,
        *,
        upload_id: str = "",
        part_number: int = 0,
        filename: str = "",
        max_bytes: int = 0,
    ) -> Grant:
        """A grant for ``method`` on ``key`` that expires ``expires_seconds`` from now."""
        expires = int(self._clock()) + check_expires(expires_seconds)
        return Grant(method, key, expires, upload_id, part_number, filename, max_bytes)

    def sign(self, grant: Grant) -> str:
        return hmac.new(self._secret, grant.message(), hashlib.sha256).hexdigest()

    def url(self, base_url: str, grant: Grant) -> str:
        query = grant.query() | {"signature": self.sign(grant)}
        path = OBJECT_URL_PREFIX + quote(grant.key, safe="/")
        return f"{base_url.rstrip('/')}{path}?{urlencode(query)}"

    def verify(self, method: str, key: str, params: Mapping[str, str]) -> Grant:
        """The grant a request carries, or :class:`InvalidSignature` / :class:`ExpiredUrl`.

        ``HEAD`` is checked as ``GET``: both read, neither changes anything.
        """
        grant = _grant_from_params("GET" if method == "HEAD" else method, key, params)
        signature = params.get("signature", "")
        if not hmac.compare_digest(self.sign(grant).encode(), signature.encode()):
            raise InvalidSignature("the URL's signature does not match")
        if self._clock() > grant.expires:
            raise ExpiredUrl("the URL has expired; ask the API for a new one")
        return grant


def _grant_from_params(method: str, key: str, params: Mapping[str, str]) -> Grant:
    try:
        expires = int(params["expires"])
        part_number = int(params.get("partNumber", "0"))
        max_bytes = int(params.get("maxBytes", "0"))
    except (KeyError, ValueError) as e:
        raise InvalidSignature("the URL is not a signed local store URL") from e
    return Grant(
        method=method,
        key=key,
        expires=expires,
        upload_id=params.get("uploadId", ""),
        part_number=part_number,
        filename=params.get("filename", ""),
        max_bytes=max_bytes,
    )
