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

The URL signing lives in :mod:`server.integrations.localstore_signing` and the files on disk
(sidecars, parts being written, temp files) in :mod:`server.integrations.localstore_disk`;
this module is the store itself and re-exports their public names.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import IO

from server.integrations.localstore_disk import (
    PartWriter,
    Sidecar,
    TempFile,
    chunks,
    copy_hashing,
    copy_with_md5,
    file_md5,
    os_errors,
    read_json,
    read_sidecar,
    write_json_atomic,
)
from server.integrations.localstore_signing import (
    OBJECT_URL_PREFIX,
    Clock,
    ExpiredUrl,
    Grant,
    InvalidSignature,
    UrlSigner,
)
from server.integrations.storage import (
    DEFAULT_CONTENT_TYPE,
    MAX_OBJECT_SIZE,
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    ChecksumMismatch,
    ChunkIterator,
    InvalidPart,
    MultipartUpload,
    ObjectInfo,
    ObjectNotFound,
    ObjectReader,
    PartInfo,
    StorageError,
    StorageUnavailable,
    UploadNotFound,
    storage_os_error,
    validate_key,
    validate_part_list,
    validate_part_number,
)

__all__ = [
    "OBJECT_URL_PREFIX",
    "ExpiredUrl",
    "Grant",
    "InvalidSignature",
    "LocalStore",
    "PartWriter",
    "UrlSigner",
]

_META_DIR = ".meta"
_MULTIPART_DIR = ".multipart"
_TMP_DIR = ".tmp"
_MANIFEST = "upload.json"
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_PART_FILE = re.compile(r"[0-9]{1,5}")


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
            write_json_atomic(upload_dir / _MANIFEST, manifest)
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
            manifest = read_json(upload_dir / _MANIFEST)
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
        sidecar = read_sidecar(self._meta_path(key), stat)
        if sidecar is None:
            return ObjectInfo(key, stat.st_size, file_md5(path))
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
        return ChunkIterator(chunks(file, length), file.close)

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
        with os_errors(f"store {PurePosixPath(key).name}"), self._temp_file() as tmp:
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
        manifest = read_json(upload_dir / _MANIFEST)
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
        sidecar = read_sidecar(upload_dir / f"{number}.json", stat)
        etag = sidecar.etag if sidecar else file_md5(path)
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
        """Stream the parts into a temp file, checking the whole object's SHA-256 on the way
        (else, with none declared, each part's MD5 again); only an object that passes is
        renamed onto the key.

        With a SHA-256 declared, a part's MD5 is not computed a second time (it was when the
        part came, and its ETag was checked): a part replaced since would fail the SHA-256."""
        target = self._object_path(key)
        digests: list[bytes] = []
        whole = hashlib.sha256()
        size = 0
        with os_errors(f"assemble {PurePosixPath(key).name}"), self._temp_file() as tmp:
            for number, expected in parts:
                source = upload_dir / str(number)
                digest, part_size = self._copy_part(source, tmp.file, whole, md5=sha256 is None)
                if digest is not None and digest.hex() != expected:
                    raise InvalidPart(f"part {number} changed while the upload completed")
                digests.append(bytes.fromhex(expected))
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
        self, source: Path, target: IO[bytes], whole: hashlib._Hash, *, md5: bool = True
    ) -> tuple[bytes | None, int]:
        """Append a part, feeding ``whole``; its MD5 too when ``md5``."""
        try:
            if md5:
                return copy_with_md5(source, target, whole)
            return None, copy_hashing(source, target, whole)
        except FileNotFoundError as e:
            raise InvalidPart(f"part {source.name} disappeared while the upload completed") from e

    def _temp_file(self) -> TempFile:
        return TempFile(self._root / _TMP_DIR)

    def _publish(
        self,
        key: str,
        tmp: TempFile,
        target: Path,
        etag: str,
        content_type: str,
        sha256: str,
    ) -> None:
        """Make the temp file durable, write its sidecar, then rename it onto the key."""
        stat = tmp.sync()
        sidecar = Sidecar(etag, stat.st_size, stat.st_ino, content_type, sha256)
        write_json_atomic(self._meta_path(key), sidecar._asdict())
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(target)

    def _base_url(self) -> str:
        if not self._public_url:
            raise StorageError("the local store has no public URL to sign for")
        return self._public_url
