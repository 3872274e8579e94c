"""The standalone object store: a folder on disk, and signed URLs for its small HTTP process.

The API and the worker use :class:`LocalStore` on the folder directly; clients reach the same
folder through ``python -m server.localstore`` with URLs signed here (HMAC-SHA256 over method,
key, upload id, part number, filename and expiry — see :class:`UrlSigner`).

Layout under ``root``::

    <key>                              finished objects (keys never have dot segments)
    .meta/<key>.json                   their sidecar: etag, size, inode, content type, sha256
    .multipart/<upload_id>/upload.json the upload's key, content type and planned part size
    .multipart/<upload_id>/data        the parts of an upload with a planned part size, each
                                       written in place at ``(n - 1) * part_size``
    .multipart/<upload_id>/<n>         else part n, written to a temp name then ``os.replace``d
    .multipart/<upload_id>/<n>.json    its sidecar: etag, size, inode (in place: offset, write id)
    .multipart/<upload_id>/<n>.owner   in place: the write id of the part's newest writer
    .multipart/<upload_id>/digest.json in place: the SHA-256 of the parts stored one after the
                                       other from the start, kept as they come (see
                                       :mod:`server.integrations.localstore_digest`)
    .tmp/                              objects being assembled

A sidecar records the inode of the file it describes; a sidecar that does not match (a crash
between the two renames) is ignored and the ETag recomputed, so a listed ETag is never wrong.

Completing an upload whose parts were written in place, each where the plan put it, checks the
declared SHA-256 (the one the store process kept as the parts came, when it covers exactly the
parts stored; else it reads the data file once), makes it durable (the parts asked the kernel
to start writing as they came, so this waits for the last few MB) and renames it onto the
key: the bytes are never copied. Otherwise completing streams the parts into ``.tmp``,
checking them on the way, and renames the result onto the key. Either way a failed or
interrupted complete never leaves a partial object under a key.

The URL signing lives in :mod:`server.integrations.localstore_signing` and the files on disk
(sidecars, parts being written, temp files) in :mod:`server.integrations.localstore_disk`;
this module is the store itself and re-exports their public names.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import IO, NamedTuple

from server.integrations.localstore_digest import (
    PartFollower,
    PrefixDigests,
    StretchPart,
    known_sha256,
)
from server.integrations.localstore_disk import (
    DATA_FILE,
    InPlacePartWriter,
    PartWriter,
    Sidecar,
    TempFile,
    chunks,
    copy_hashing,
    copy_with_md5,
    file_md5,
    hash_stretch,
    locked_data_file,
    make_data_file,
    os_errors,
    read_in_place_sidecar,
    read_json,
    read_sidecar,
    stretch_chunks,
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
    "InPlacePartWriter",
    "InvalidSignature",
    "LocalStore",
    "PartWriter",
    "UrlSigner",
]

log = logging.getLogger(__name__)

_META_DIR = ".meta"
_MULTIPART_DIR = ".multipart"
_TMP_DIR = ".tmp"
_MANIFEST = "upload.json"
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_PART_FILE = re.compile(r"[0-9]{1,5}")
_PART_SIDECAR = re.compile(r"([0-9]{1,5})\.json")


class _Upload(NamedTuple):
    dir: Path
    content_type: str
    part_size: int | None
    """Set: parts are written in place, part n at ``(n - 1) * part_size``."""


class _StoredPart(NamedTuple):
    info: PartInfo
    offset: int | None
    """Where it lies in the upload's data file; None: a file of its own."""
    write: str | None = None
    """In place: the id of the write that stored it (see :mod:`.localstore_digest`)."""

    def stretch(self) -> StretchPart:
        assert self.offset is not None
        return StretchPart(self.info.number, self.offset, self.info.size, self.write)


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
        self._digests = PrefixDigests()
        for name in (_META_DIR, _MULTIPART_DIR, _TMP_DIR):
            (self._root / name).mkdir(parents=True, exist_ok=True)

    @property
    def root(self) -> Path:
        return self._root

    @property
    def signer(self) -> UrlSigner:
        return self._signer

    # ---- multipart

    def create_multipart(self, key: str, content_type: str, *, part_size: int | None = None) -> str:
        """``part_size`` (every part but the last holds exactly that) lets the parts be written
        in place, so that completing copies nothing."""
        validate_key(key)
        if part_size is not None and not self.min_part_size <= part_size <= self.max_part_size:
            raise ValueError(f"part_size must be {self.min_part_size}..{self.max_part_size} bytes")
        upload_id = uuid.uuid4().hex
        upload_dir = self._upload_dir(upload_id)
        manifest: dict[str, object] = {
            "key": key,
            "content_type": content_type or DEFAULT_CONTENT_TYPE,
        }
        if part_size is not None:
            manifest["part_size"] = part_size
        try:
            upload_dir.mkdir()
            if part_size is not None:
                make_data_file(upload_dir)
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
    ) -> PartWriter | InPlacePartWriter:
        """A writer for one part (what the HTTP process streams a PUT into), refusing more
        than :meth:`part_limit` bytes (and, in place, more than the planned part size)."""
        validate_part_number(part_number)
        upload = self._load_upload(key, upload_id)
        limit = self.part_limit(max_bytes)
        try:
            if upload.part_size is None:
                return PartWriter(upload.dir, part_number, limit)
            offset = (part_number - 1) * upload.part_size

            def follower(inode: int, write: str) -> PartFollower:
                return self._digests.follower(upload.dir, inode, part_number, offset, write)

            return InPlacePartWriter(
                upload.dir, part_number, min(limit, upload.part_size), offset, follower
            )
        except FileNotFoundError as e:
            raise UploadNotFound(f"no such multipart upload for {key}") from e
        except OSError as e:
            raise storage_os_error(e, f"store part {part_number}") from e

    def upload_part(self, key: str, upload_id: str, part_number: int, data: bytes) -> str:
        with self.part_writer(key, upload_id, part_number) as writer:
            writer.write(data)
            etag = writer.commit().etag
        self.advance_digest(key, upload_id)
        return etag

    def advance_digest(self, key: str, upload_id: str) -> None:
        """After a part is stored: hash the upload's data file onward as far as its parts
        now lie one after the other from the start (see :mod:`.localstore_digest`), so that
        completing need not read them again. Does nothing for an upload whose parts are
        files of their own; an upload gone or being completed just stops it. What the
        process that stores the parts calls (an optimisation: a failure is logged)."""
        try:
            upload = self._load_upload(key, upload_id)
            if upload.part_size is None:
                return

            def find_part(number: int, data: os.stat_result) -> StretchPart | None:
                part = self._part_info(upload.dir, number, data)
                return part.stretch() if part is not None and part.offset is not None else None

            self._digests.advance(upload.dir, upload.part_size, find_part)
        except (UploadNotFound, FileNotFoundError) as e:  # aborted or completed meanwhile
            log.debug("upload %s is gone; its running digest stops: %s", upload_id, e)
        except (StorageError, OSError) as e:
            log.warning("upload %s: its running digest stopped: %s", upload_id, e)

    def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        upload = self._load_upload(key, upload_id)
        return [p.info for p in self._stored_parts(upload.dir)]

    def complete_multipart(
        self,
        key: str,
        upload_id: str,
        parts: Sequence[tuple[int, str]],
        *,
        sha256: str | None = None,
    ) -> ObjectInfo:
        checked = validate_part_list(parts)
        upload = self._load_upload(key, upload_id)
        if upload.part_size is not None and not (upload.dir / DATA_FILE).exists():
            raise UploadNotFound(f"the upload of {key} was completed or aborted meanwhile")
        stored = self._check_parts(upload.dir, checked)
        if _contiguous(stored):
            info = self._publish_in_place(key, upload, checked, stored, sha256)
        else:
            info = self._assemble(key, upload.dir, checked, stored, upload.content_type, sha256)
        shutil.rmtree(upload.dir, ignore_errors=True)
        return info

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            upload = self._load_upload(key, upload_id)
        except UploadNotFound:
            return
        shutil.rmtree(upload.dir, ignore_errors=True)

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

    def _load_upload(self, key: str, upload_id: str) -> _Upload:
        """The upload's folder, content type and part size; :class:`UploadNotFound` unless
        it is ``key``'s."""
        validate_key(key)
        upload_dir = self._upload_dir(upload_id)
        manifest = read_json(upload_dir / _MANIFEST)
        if manifest is None or manifest.get("key") != key:
            raise UploadNotFound(f"no such multipart upload for {key}")
        part_size = manifest.get("part_size")
        return _Upload(
            upload_dir,
            str(manifest.get("content_type") or DEFAULT_CONTENT_TYPE),
            part_size if isinstance(part_size, int) and part_size > 0 else None,
        )

    @staticmethod
    def _scan(folder: Path) -> list[Path]:
        try:
            return list(folder.iterdir())
        except FileNotFoundError:
            return []

    # ---- completing

    def _stored_parts(self, upload_dir: Path) -> list[_StoredPart]:
        """Every part the upload holds, by number: a file of its own (listed even when its
        sidecar is stale, with the ETag recomputed), or a stretch of the data file its
        sidecar describes."""
        names = [p.name for p in self._scan(upload_dir)]
        own = {int(n) for n in names if _PART_FILE.fullmatch(n)}
        sidecars = {int(m.group(1)) for n in names if (m := _PART_SIDECAR.fullmatch(n))}
        try:
            data: os.stat_result | None = (upload_dir / DATA_FILE).stat()
        except FileNotFoundError:
            data = None
        parts = []
        for number in sorted(own | sidecars):
            part = self._part_info(upload_dir, number, data)
            if part is not None:
                parts.append(part)
        return parts

    def _part_info(
        self, upload_dir: Path, number: int, data: os.stat_result | None
    ) -> _StoredPart | None:
        path = upload_dir / str(number)
        try:
            stat = path.stat()
        except FileNotFoundError:
            found = read_in_place_sidecar(upload_dir / f"{number}.json", data)
            if found is None:
                return None
            in_place, offset, write = found
            return _StoredPart(PartInfo(number, in_place.etag, in_place.size), offset, write)
        sidecar = read_sidecar(upload_dir / f"{number}.json", stat)
        etag = sidecar.etag if sidecar else file_md5(path)
        return _StoredPart(PartInfo(number, etag, stat.st_size), None)

    def _check_parts(self, upload_dir: Path, parts: list[tuple[int, str]]) -> list[_StoredPart]:
        """The fast checks before any byte moves: present, same ETag, big enough."""
        total = 0
        stored = {p.info.number: p for p in self._stored_parts(upload_dir)}
        found = []
        for index, (number, etag) in enumerate(parts):
            part = stored.get(number)
            if part is None:  # a writer clears its part's sidecar as it starts
                raise InvalidPart(
                    f"part {number} is not stored (never uploaded, or being uploaded again)"
                )
            info = part.info
            if info.etag != etag:
                raise InvalidPart(f"part {number}'s ETag does not match the stored part")
            if index < len(parts) - 1 and info.size < self.min_part_size:
                raise InvalidPart(
                    f"part {number} is {info.size} bytes; every part but the last must hold "
                    f"at least {self.min_part_size}"
                )
            total += info.size
            found.append(part)
        if total > MAX_OBJECT_SIZE:
            raise InvalidPart(f"an object holds at most {MAX_OBJECT_SIZE} bytes")
        return found

    def _publish_in_place(
        self,
        key: str,
        upload: _Upload,
        parts: list[tuple[int, str]],
        stored: list[_StoredPart],
        sha256: str | None,
    ) -> ObjectInfo:
        """The parts already lie one after the other in the data file: take its SHA-256 (the
        running one, or read once) and check it against the declared one, make the file
        durable and rename it onto the key. An in-place part's ETag names its write, not an
        MD5: the parts, checked again under the lock, are the very writes listed."""
        target = self._object_path(key)
        size = sum(p.info.size for p in stored)
        name = PurePosixPath(key).name
        with os_errors(f"assemble {name}"), locked_data_file(upload.dir) as fd:
            # Again, now that no part can be written: one started since the first check has
            # no sidecar (its writer cleared it), and is refused, not published half written.
            stored = self._check_parts(upload.dir, parts)
            computed = self._object_sha256(upload.dir, fd, stored)
            if sha256 is not None and computed != sha256.lower():
                raise ChecksumMismatch(
                    f"the assembled bytes have SHA-256 {computed}, "
                    f"not the declared {sha256.lower()}"
                )
            os.ftruncate(fd, size)  # bytes past the last part (a part beyond the list)
            os.fdatasync(fd)
            etag = _multipart_etag([bytes.fromhex(e) for _, e in parts])
            inode = os.fstat(fd).st_ino
            sidecar = Sidecar(etag, size, inode, upload.content_type, computed)
            write_json_atomic(self._meta_path(key), sidecar._asdict())
            target.parent.mkdir(parents=True, exist_ok=True)
            (upload.dir / DATA_FILE).replace(target)
        return ObjectInfo(key, size, etag, upload.content_type, computed)

    @staticmethod
    def _object_sha256(upload_dir: Path, fd: int, stored: list[_StoredPart]) -> str:
        """The SHA-256 of the parts in the locked data file ``fd``: the one the local store
        process recorded as they came, if it covers exactly these writes, else read now."""
        known = known_sha256(upload_dir, os.fstat(fd), [p.stretch() for p in stored])
        if known is not None:
            return known
        whole = hashlib.sha256()
        for part in stored:
            assert part.offset is not None
            hash_stretch(fd, part.offset, part.info.size, whole)
        return whole.hexdigest()

    def _assemble(
        self,
        key: str,
        upload_dir: Path,
        parts: list[tuple[int, str]],
        stored: list[_StoredPart],
        content_type: str,
        sha256: str | None,
    ) -> ObjectInfo:
        """Stream the parts into a temp file, checking the whole object's SHA-256 on the way
        (else, with none declared, each part file's MD5 again; an in-place part is checked
        to be the very write listed); only an object that passes is renamed onto the key.

        With a SHA-256 declared, a part's MD5 is not computed a second time (it was when the
        part came, and its ETag was checked): a part replaced since would fail the SHA-256."""
        target = self._object_path(key)
        digests: list[bytes] = []
        whole = hashlib.sha256()
        size = 0
        with os_errors(f"assemble {PurePosixPath(key).name}"), self._temp_file() as tmp:
            for (number, expected), part in zip(parts, stored, strict=True):
                if part.offset is None:
                    source = upload_dir / str(number)
                    digest, part_size = self._copy_part(source, tmp.file, whole, md5=sha256 is None)
                else:
                    digest, part_size = None, self._copy_stretch(upload_dir, part, tmp.file, whole)
                if digest is not None and digest.hex() != expected:
                    raise InvalidPart(f"part {number} changed while the upload completed")
                digests.append(bytes.fromhex(expected))
                size += part_size
            if sha256 is not None and whole.hexdigest() != sha256.lower():
                raise ChecksumMismatch(
                    f"the assembled bytes have SHA-256 {whole.hexdigest()}, "
                    f"not the declared {sha256.lower()}"
                )
            etag = _multipart_etag(digests)
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

    def _copy_stretch(
        self, upload_dir: Path, part: _StoredPart, target: IO[bytes], whole: hashlib._Hash
    ) -> int:
        """Append an in-place part that is not where completion can leave it (the parts are
        not one after the other), once its sidecar shows, under the lock, the very write
        that was listed (a part being sent again has had its sidecar cleared)."""
        assert part.offset is not None
        with locked_data_file(upload_dir) as fd:
            if self._part_info(upload_dir, part.info.number, os.fstat(fd)) != part:
                raise InvalidPart(f"part {part.info.number} changed while the upload completed")
            for chunk in stretch_chunks(fd, part.offset, part.info.size):
                whole.update(chunk)
                target.write(chunk)
        return part.info.size

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


def _contiguous(parts: list[_StoredPart]) -> bool:
    """The parts lie in the data file one after the other from its start."""
    at = 0
    for part in parts:
        if part.offset != at:
            return False
        at += part.info.size
    return True


def _multipart_etag(digests: list[bytes]) -> str:
    """S3's ETag of a multipart object: the MD5 of the parts' binary MD5s, and their count."""
    return f"{hashlib.md5(b''.join(digests), usedforsecurity=False).hexdigest()}-{len(digests)}"
