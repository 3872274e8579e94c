"""The standalone object store: a folder on disk, and signed URLs for its small HTTP process.

The API and the worker use :class:`LocalStore` on the folder directly; clients reach the same
folder through ``python -m server.localstore`` with URLs signed here (HMAC-SHA256 over method,
key, upload id, part number, filename and expiry — see :class:`UrlSigner`).

Layout under ``root``::

    <key>                              finished objects (keys never have dot segments)
    .meta/<key>.json                   their sidecar: etag, size, inode, content type, sha256
    .multipart/<upload_id>/upload.json the upload's key and content type
    .multipart/<upload_id>/<n>         part n, written to a temp name then ``os.replace``d
    .multipart/<upload_id>/<n>.json    its sidecar: etag, size, inode
    .tmp/                              objects being assembled

A sidecar records the inode of the file it describes; a sidecar that does not match (a crash
between the two renames) is ignored and the ETag recomputed, so a listed ETag is never wrong.
Completing streams the parts into ``.tmp``, checking each part's MD5 on the way, and renames the
result onto the key: a failed or interrupted complete never leaves a partial object under a key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, NamedTuple, Self
from urllib.parse import quote, urlencode

from server.integrations.storage import (
    DEFAULT_CONTENT_TYPE,
    MAX_OBJECT_SIZE,
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    READ_CHUNK_SIZE,
    ChecksumMismatch,
    ChunkIterator,
    InvalidPart,
    MultipartUpload,
    ObjectInfo,
    ObjectNotFound,
    ObjectReader,
    PartInfo,
    PartTooLarge,
    StorageError,
    StorageUnavailable,
    UploadNotFound,
    check_expires,
    storage_os_error,
    validate_key,
    validate_part_list,
    validate_part_number,
)
from subtone.errors import SubtoneError

__all__ = [
    "OBJECT_URL_PREFIX",
    "ExpiredUrl",
    "Grant",
    "InvalidSignature",
    "LocalStore",
    "PartWriter",
    "UrlSigner",
]

OBJECT_URL_PREFIX = "/o/"
"""Objects are served under ``<public_url>/o/<key>``, leaving other paths to the process."""
SIGNATURE_VERSION = "subtone-localstore-v2"
MIN_SECRET_BYTES = 16
COPY_BUFFER_SIZE = 1024 * 1024

_META_DIR = ".meta"
_MULTIPART_DIR = ".multipart"
_TMP_DIR = ".tmp"
_MANIFEST = "upload.json"
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_PART_FILE = re.compile(r"[0-9]{1,5}")

Clock = Callable[[], float]


class ExpiredUrl(SubtoneError):
    code = "expired_url"
    status = 403


class InvalidSignature(SubtoneError):
    code = "invalid_signature"
    status = 403


# ------------------------------------------------------------------------------------- signing


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


# ------------------------------------------------------------------------------------- sidecars


class _Sidecar(NamedTuple):
    etag: str
    size: int
    inode: int
    content_type: str = DEFAULT_CONTENT_TYPE
    sha256: str | None = None


def _write_json_atomic(path: Path, data: Mapping[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _read_sidecar(path: Path, stat: os.stat_result) -> _Sidecar | None:
    """The sidecar if it describes exactly this file (same inode and size), else None."""
    data = _read_json(path)
    if data is None:
        return None
    try:
        sidecar = _Sidecar(
            str(data["etag"]),
            int(data["size"]),
            int(data["inode"]),
            str(data.get("content_type", DEFAULT_CONTENT_TYPE)),
            str(data["sha256"]) if data.get("sha256") else None,
        )
    except (KeyError, TypeError, ValueError):
        return None
    if (sidecar.inode, sidecar.size) != (stat.st_ino, stat.st_size):
        return None
    return sidecar


def _file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(COPY_BUFFER_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_with_md5(
    source: Path, target: IO[bytes], whole: hashlib._Hash | None = None
) -> tuple[bytes, int]:
    """Append ``source`` to ``target``; returns the part's binary MD5 and size.

    ``whole`` (the object's running SHA-256) is fed the same bytes."""
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    with source.open("rb") as f:
        while chunk := f.read(COPY_BUFFER_SIZE):
            digest.update(chunk)
            if whole is not None:
                whole.update(chunk)
            target.write(chunk)
            size += len(chunk)
    return digest.digest(), size


# ---------------------------------------------------------------------------------------- parts


class PartWriter:
    """Streams one part to a temp file, hashing it; ``commit`` renames it into place.

    More than ``max_bytes`` raises :class:`PartTooLarge`. Leaving the ``with`` block without
    ``commit`` (a client that hung up) deletes the temp file.
    """

    def __init__(self, upload_dir: Path, part_number: int, max_bytes: int) -> None:
        self._final = upload_dir / str(part_number)
        self._number = part_number
        self._max_bytes = max_bytes
        fd, tmp = tempfile.mkstemp(dir=upload_dir, prefix=f".{part_number}-", suffix=".tmp")
        self._tmp = Path(tmp)
        self._file: IO[bytes] | None = os.fdopen(fd, "wb")
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._size = 0

    def write(self, chunk: bytes) -> None:
        if self._file is None:
            raise StorageError("part writer already closed")
        self._size += len(chunk)
        if self._size > self._max_bytes:
            self.discard()
            raise PartTooLarge(f"a part can hold at most {self._max_bytes} bytes")
        self._md5.update(chunk)
        try:
            self._file.write(chunk)
        except OSError as e:
            self.discard()
            raise storage_os_error(e, f"store part {self._number}") from e

    def commit(self) -> PartInfo:
        if self._file is None:
            raise StorageError("part writer already closed")
        file, self._file = self._file, None
        try:
            with file:
                file.flush()
                inode = os.fstat(file.fileno()).st_ino
            etag = self._md5.hexdigest()
            sidecar = _Sidecar(etag, self._size, inode)._asdict()
            _write_json_atomic(self._final.with_name(f"{self._number}.json"), sidecar)
            self._tmp.replace(self._final)
        except FileNotFoundError as e:  # the upload was aborted or completed meanwhile
            self._tmp.unlink(missing_ok=True)
            raise UploadNotFound("the multipart upload is gone") from e
        except OSError as e:
            self._tmp.unlink(missing_ok=True)
            raise storage_os_error(e, f"store part {self._number}") from e
        return PartInfo(self._number, etag, self._size)

    def discard(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.discard()


# ---------------------------------------------------------------------------------------- store


class LocalStore:
    """:class:`~server.integrations.storage.ObjectStore` on a local folder.

    ``public_url`` is where clients reach the local store process (``http://127.0.0.1:9100``);
    without it the store works but cannot hand out URLs (the process itself needs none).
    """

    def __init__(
        self,
        root: Path | str,
        secret: bytes | str,
        *,
        public_url: str | None = None,
        min_part_size: int = MIN_PART_SIZE,
        max_part_size: int = MAX_PART_SIZE,
        clock: Clock = time.time,
    ) -> None:
        self._root = Path(root).resolve()
        key = secret.encode("utf-8") if isinstance(secret, str) else secret
        self._signer = UrlSigner(key, clock)
        self._public_url = public_url
        self.min_part_size = min_part_size
        self.max_part_size = max_part_size
        for name in (_META_DIR, _MULTIPART_DIR, _TMP_DIR):
            (self._root / name).mkdir(parents=True, exist_ok=True)

    @property
    def root(self) -> Path:
        return self._root

    @property
    def signer(self) -> UrlSigner:
        return self._signer

    # ---- multipart

    def create_multipart(self, key: str, content_type: str) -> str:
        validate_key(key)
        upload_id = uuid.uuid4().hex
        upload_dir = self._upload_dir(upload_id)
        manifest = {"key": key, "content_type": content_type or DEFAULT_CONTENT_TYPE}
        try:
            upload_dir.mkdir()
            _write_json_atomic(upload_dir / _MANIFEST, manifest)
        except OSError as e:
            shutil.rmtree(upload_dir, ignore_errors=True)
            raise storage_os_error(e, "start an upload") from e
        return upload_id

    def presign_upload_part(
        self,
        key: str,
        upload_id: str,
        part_number: int,
        expires_seconds: int,
        *,
        max_bytes: int | None = None,
    ) -> str:
        validate_key(key)
        validate_part_number(part_number)
        grant = self._signer.grant(
            "PUT",
            key,
            expires_seconds,
            upload_id=upload_id,
            part_number=part_number,
            max_bytes=self.part_limit(max_bytes),
        )
        return self._signer.url(self._base_url(), grant)

    def part_limit(self, max_bytes: int | None) -> int:
        """The most bytes a part may hold: ``max_bytes`` (when given) within the store's limit."""
        if max_bytes is None or max_bytes <= 0:
            return self.max_part_size
        return min(max_bytes, self.max_part_size)

    def part_writer(
        self, key: str, upload_id: str, part_number: int, *, max_bytes: int | None = None
    ) -> PartWriter:
        """A writer for one part (what the HTTP process streams a PUT into), refusing more
        than :meth:`part_limit` bytes."""
        validate_part_number(part_number)
        upload_dir, _ = self._load_upload(key, upload_id)
        try:
            return PartWriter(upload_dir, part_number, self.part_limit(max_bytes))
        except FileNotFoundError as e:
            raise UploadNotFound(f"no such multipart upload for {key}") from e

    def upload_part(self, key: str, upload_id: str, part_number: int, data: bytes) -> str:
        with self.part_writer(key, upload_id, part_number) as writer:
            writer.write(data)
            return writer.commit().etag

    def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        upload_dir, _ = self._load_upload(key, upload_id)
        numbers = sorted(
            int(p.name) for p in self._scan(upload_dir) if _PART_FILE.fullmatch(p.name)
        )
        parts = (self._part_info(upload_dir, n) for n in numbers)
        return [p for p in parts if p is not None]

    def complete_multipart(
        self,
        key: str,
        upload_id: str,
        parts: Sequence[tuple[int, str]],
        *,
        sha256: str | None = None,
    ) -> ObjectInfo:
        checked = validate_part_list(parts)
        upload_dir, content_type = self._load_upload(key, upload_id)
        self._check_parts(upload_dir, checked)
        info = self._assemble(key, upload_dir, checked, content_type, sha256)
        shutil.rmtree(upload_dir, ignore_errors=True)
        return info

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            upload_dir, _ = self._load_upload(key, upload_id)
        except UploadNotFound:
            return
        shutil.rmtree(upload_dir, ignore_errors=True)

    def list_multipart_uploads(self, prefix: str) -> list[MultipartUpload]:
        uploads = []
        for upload_dir in self._scan(self._root / _MULTIPART_DIR):
            manifest = _read_json(upload_dir / _MANIFEST)
            key = manifest.get("key") if manifest else None
            if isinstance(key, str) and key.startswith(prefix):
                uploads.append(MultipartUpload(key, upload_dir.name))
        return sorted(uploads)

    # ---- objects

    def head(self, key: str) -> ObjectInfo:
        path = self._object_path(key)
        try:
            stat = path.stat()
        except (FileNotFoundError, NotADirectoryError) as e:
            raise ObjectNotFound(f"no object {key}") from e
        if not path.is_file():
            raise ObjectNotFound(f"no object {key}")
        sidecar = _read_sidecar(self._meta_path(key), stat)
        if sidecar is None:
            return ObjectInfo(key, stat.st_size, _file_md5(path))
        return ObjectInfo(key, stat.st_size, sidecar.etag, sidecar.content_type, sidecar.sha256)

    def read(self, key: str, start: int = 0, length: int | None = None) -> ChunkIterator:
        if start < 0 or (length is not None and length < 0):
            raise ValueError("start and length must not be negative")
        path = self._object_path(key)
        try:
            file = path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as e:
            raise ObjectNotFound(f"no object {key}") from e
        file.seek(start)
        return ChunkIterator(_chunks(file, length), file.close)

    def open_reader(self, key: str) -> ObjectReader:
        return ObjectReader(lambda position: self.read(key, position), self.head(key).size)

    def presign_download(self, key: str, expires_seconds: int, filename: str | None) -> str:
        validate_key(key)
        grant = self._signer.grant("GET", key, expires_seconds, filename=filename or "")
        return self._signer.url(self._base_url(), grant)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> ObjectInfo:
        target = self._object_path(key)
        content_type = content_type or DEFAULT_CONTENT_TYPE
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        sha256 = hashlib.sha256(data).hexdigest()
        with _os_errors(f"store {PurePosixPath(key).name}"), self._temp_file() as tmp:
            tmp.file.write(data)
            self._publish(key, tmp, target, etag, content_type, sha256)
        return ObjectInfo(key, len(data), etag, content_type, sha256)

    def delete(self, key: str) -> None:
        path = self._object_path(key)
        try:
            path.unlink(missing_ok=True)
        except (IsADirectoryError, NotADirectoryError):
            return
        except OSError as e:
            raise storage_os_error(e, f"delete {PurePosixPath(key).name}") from e
        self._meta_path(key).unlink(missing_ok=True)

    def ping(self) -> None:
        for name in (_META_DIR, _MULTIPART_DIR, _TMP_DIR):
            folder = self._root / name
            if not folder.is_dir() or not os.access(folder, os.W_OK):
                raise StorageUnavailable(f"the local store folder {folder} is not writable")

    # ---- signed requests (the HTTP process)

    def verify(self, method: str, key: str, params: Mapping[str, str]) -> Grant:
        """Check a signed request for ``key``; see :meth:`UrlSigner.verify`."""
        validate_key(key)
        return self._signer.verify(method, key, params)

    # ---- paths

    def _object_path(self, key: str) -> Path:
        path = self._root.joinpath(*validate_key(key).split("/"))
        if not path.resolve().is_relative_to(self._root):
            raise StorageError(f"object key {key!r} leads outside the store")
        return path

    def _meta_path(self, key: str) -> Path:
        return self._root / _META_DIR / f"{validate_key(key)}.json"

    def _upload_dir(self, upload_id: str) -> Path:
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise UploadNotFound("no such multipart upload")
        return self._root / _MULTIPART_DIR / upload_id

    def _load_upload(self, key: str, upload_id: str) -> tuple[Path, str]:
        """The upload's folder and content type; :class:`UploadNotFound` unless it is ``key``'s."""
        validate_key(key)
        upload_dir = self._upload_dir(upload_id)
        manifest = _read_json(upload_dir / _MANIFEST)
        if manifest is None or manifest.get("key") != key:
            raise UploadNotFound(f"no such multipart upload for {key}")
        return upload_dir, str(manifest.get("content_type") or DEFAULT_CONTENT_TYPE)

    @staticmethod
    def _scan(folder: Path) -> list[Path]:
        try:
            return list(folder.iterdir())
        except FileNotFoundError:
            return []

    # ---- completing

    def _part_info(self, upload_dir: Path, number: int) -> PartInfo | None:
        path = upload_dir / str(number)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        sidecar = _read_sidecar(upload_dir / f"{number}.json", stat)
        etag = sidecar.etag if sidecar else _file_md5(path)
        return PartInfo(number, etag, stat.st_size)

    def _check_parts(self, upload_dir: Path, parts: list[tuple[int, str]]) -> None:
        """The fast checks before any byte moves: present, same ETag, big enough."""
        total = 0
        for index, (number, etag) in enumerate(parts):
            info = self._part_info(upload_dir, number)
            if info is None:
                raise InvalidPart(f"part {number} was never uploaded")
            if info.etag != etag:
                raise InvalidPart(f"part {number}'s ETag does not match the stored part")
            if index < len(parts) - 1 and info.size < self.min_part_size:
                raise InvalidPart(
                    f"part {number} is {info.size} bytes; every part but the last must hold "
                    f"at least {self.min_part_size}"
                )
            total += info.size
        if total > MAX_OBJECT_SIZE:
            raise InvalidPart(f"an object holds at most {MAX_OBJECT_SIZE} bytes")

    def _assemble(
        self,
        key: str,
        upload_dir: Path,
        parts: list[tuple[int, str]],
        content_type: str,
        sha256: str | None,
    ) -> ObjectInfo:
        """Stream the parts into a temp file, checking each part's MD5 and the whole object's
        SHA-256 on the way; only an object that passes both is renamed onto the key."""
        target = self._object_path(key)
        digests: list[bytes] = []
        whole = hashlib.sha256()
        size = 0
        with _os_errors(f"assemble {PurePosixPath(key).name}"), self._temp_file() as tmp:
            for number, expected in parts:
                digest, part_size = self._copy_part(upload_dir / str(number), tmp.file, whole)
                if digest.hex() != expected:
                    raise InvalidPart(f"part {number} changed while the upload completed")
                digests.append(digest)
                size += part_size
            if sha256 is not None and whole.hexdigest() != sha256.lower():
                raise ChecksumMismatch(
                    f"the assembled bytes have SHA-256 {whole.hexdigest()}, "
                    f"not the declared {sha256.lower()}"
                )
            multipart_etag = hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest()
            etag = f"{multipart_etag}-{len(digests)}"
            self._publish(key, tmp, target, etag, content_type, whole.hexdigest())
        return ObjectInfo(key, size, etag, content_type, whole.hexdigest())

    def _copy_part(
        self, source: Path, target: IO[bytes], whole: hashlib._Hash
    ) -> tuple[bytes, int]:
        try:
            return _copy_with_md5(source, target, whole)
        except FileNotFoundError as e:
            raise InvalidPart(f"part {source.name} disappeared while the upload completed") from e

    def _temp_file(self) -> _TempFile:
        return _TempFile(self._root / _TMP_DIR)

    def _publish(
        self,
        key: str,
        tmp: _TempFile,
        target: Path,
        etag: str,
        content_type: str,
        sha256: str,
    ) -> None:
        """Make the temp file durable, write its sidecar, then rename it onto the key."""
        stat = tmp.sync()
        sidecar = _Sidecar(etag, stat.st_size, stat.st_ino, content_type, sha256)
        _write_json_atomic(self._meta_path(key), sidecar._asdict())
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(target)

    def _base_url(self) -> str:
        if not self._public_url:
            raise StorageError("the local store has no public URL to sign for")
        return self._public_url


class _TempFile:
    """A temp file in ``.tmp`` that is removed on leaving the block unless it was renamed."""

    def __init__(self, folder: Path) -> None:
        fd, name = tempfile.mkstemp(dir=folder, suffix=".tmp")
        self.file: IO[bytes] = os.fdopen(fd, "wb")
        self._path: Path | None = Path(name)

    def sync(self) -> os.stat_result:
        """Flush to disk; returns the file's stat (its inode survives the rename)."""
        self.file.flush()
        os.fsync(self.file.fileno())
        return os.fstat(self.file.fileno())

    def rename(self, target: Path) -> None:
        if self._path is None:
            raise StorageError("temp file already renamed")
        self._path.replace(target)
        self._path = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.file.close()
        if self._path is not None:
            self._path.unlink(missing_ok=True)


@contextmanager
def _os_errors(what: str) -> Iterator[None]:
    """Disk errors (full, read-only, permissions) become :class:`StorageError`."""
    try:
        yield
    except OSError as e:
        raise storage_os_error(e, what) from e


def _chunks(file: IO[bytes], length: int | None) -> Iterator[bytes]:
    remaining = length
    while remaining is None or remaining > 0:
        size = READ_CHUNK_SIZE if remaining is None else min(READ_CHUNK_SIZE, remaining)
        chunk = file.read(size)
        if not chunk:
            return
        if remaining is not None:
            remaining -= len(chunk)
        yield chunk
