"""LocalStore used directly on a folder, as the API and the worker use it."""

from __future__ import annotations

import hashlib
import io
import os
import wave
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from server.integrations.localstore import (
    ExpiredUrl,
    InvalidSignature,
    LocalStore,
    UrlSigner,
)
from server.integrations.storage import (
    MIN_PART_SIZE,
    ChecksumMismatch,
    InvalidKey,
    InvalidPart,
    ObjectNotFound,
    ObjectStore,
    PartTooLarge,
    StorageError,
    UploadNotFound,
)

KEY = "t/acme/uploads/0001/cover.wav"
PART = b"p" * MIN_PART_SIZE
TAIL = b"last part"
SECRET = b"k" * 32


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _two_parts(store: LocalStore) -> tuple[str, list[tuple[int, str]]]:
    upload_id = store.create_multipart(KEY, "audio/wav")
    first = store.upload_part(KEY, upload_id, 1, PART)
    second = store.upload_part(KEY, upload_id, 2, TAIL)
    return upload_id, [(1, first), (2, second)]


def _leftovers(store: LocalStore) -> list[Path]:
    return list((store.root / ".tmp").iterdir())


def test_is_an_object_store(local_store: LocalStore) -> None:
    assert isinstance(local_store, ObjectStore)


def test_multipart_complete_matches_s3(local_store: LocalStore) -> None:
    upload_id, parts = _two_parts(local_store)
    assert [(p.number, p.etag, p.size) for p in local_store.list_parts(KEY, upload_id)] == [
        (1, _md5(PART), len(PART)),
        (2, _md5(TAIL), len(TAIL)),
    ]
    info = local_store.complete_multipart(KEY, upload_id, [(n, f'"{e}"') for n, e in parts])

    s3_etag = hashlib.md5(bytes.fromhex(_md5(PART)) + bytes.fromhex(_md5(TAIL))).hexdigest()
    assert (info.size, info.etag, info.content_type) == (
        len(PART + TAIL),
        f"{s3_etag}-2",
        "audio/wav",
    )
    assert local_store.head(KEY) == info
    assert (local_store.root / KEY).read_bytes() == PART + TAIL
    assert local_store.list_multipart_uploads("") == []
    assert _leftovers(local_store) == []
    with pytest.raises(UploadNotFound):
        local_store.list_parts(KEY, upload_id)


def test_reuploading_a_part_replaces_it(local_store: LocalStore) -> None:
    upload_id = local_store.create_multipart(KEY, "audio/wav")
    local_store.upload_part(KEY, upload_id, 1, b"first try")
    etag = local_store.upload_part(KEY, upload_id, 1, b"second")
    assert local_store.list_parts(KEY, upload_id)[0].etag == etag == _md5(b"second")


def test_missing_part_leaves_no_object(local_store: LocalStore) -> None:
    upload_id, parts = _two_parts(local_store)
    with pytest.raises(InvalidPart):
        local_store.complete_multipart(KEY, upload_id, [*parts, (3, parts[1][1])])
    with pytest.raises(ObjectNotFound):
        local_store.head(KEY)
    assert len(local_store.list_parts(KEY, upload_id)) == 2  # the client can still finish


def test_wrong_etag_and_small_part_are_invalid(local_store: LocalStore) -> None:
    upload_id, parts = _two_parts(local_store)
    with pytest.raises(InvalidPart):
        local_store.complete_multipart(KEY, upload_id, [parts[0], (2, "0" * 32)])
    small = local_store.create_multipart(KEY, "audio/wav")
    tags = [(n, local_store.upload_part(KEY, small, n, TAIL)) for n in (1, 2)]
    with pytest.raises(InvalidPart):
        local_store.complete_multipart(KEY, small, tags)
    assert not (local_store.root / KEY).exists()


def test_complete_hashes_the_object_and_refuses_a_wrong_digest(local_store: LocalStore) -> None:
    upload_id, parts = _two_parts(local_store)

    with pytest.raises(ChecksumMismatch):
        local_store.complete_multipart(KEY, upload_id, parts, sha256="0" * 64)

    assert not (local_store.root / KEY).exists()
    assert len(local_store.list_parts(KEY, upload_id)) == 2  # the caller decides what to drop
    right = hashlib.sha256(PART + TAIL).hexdigest()
    info = local_store.complete_multipart(KEY, upload_id, parts, sha256=right)
    assert info.sha256 == right
    assert local_store.head(KEY).sha256 == right


def test_complete_failing_midway_leaves_no_object(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload_id, parts = _two_parts(local_store)
    real_copy = local_store._copy_part
    copied: list[str] = []

    def copy_then_fail(
        source: Path, target: io.BufferedWriter, whole: hashlib._Hash, *, md5: bool = True
    ) -> tuple[bytes | None, int]:
        if copied:
            raise OSError("disk full")
        copied.append(source.name)
        return real_copy(source, target, whole, md5=md5)

    monkeypatch.setattr(local_store, "_copy_part", copy_then_fail)
    with pytest.raises(StorageError, match="disk full"):
        local_store.complete_multipart(KEY, upload_id, parts)

    assert copied == ["1"]
    assert not (local_store.root / KEY).exists()
    assert _leftovers(local_store) == []
    monkeypatch.undo()
    assert local_store.complete_multipart(KEY, upload_id, parts).size == len(PART + TAIL)


def test_part_changed_during_complete_is_caught(local_store: LocalStore) -> None:
    upload_id, parts = _two_parts(local_store)
    part = local_store.root / ".multipart" / upload_id / "2"
    sidecar = part.with_name("2.json").read_text()
    part.write_bytes(b"tampered!")  # same size, same inode: the sidecar still matches
    assert part.with_name("2.json").read_text() == sidecar
    with pytest.raises(InvalidPart):
        local_store.complete_multipart(KEY, upload_id, parts)
    assert not (local_store.root / KEY).exists()


def test_part_changed_during_complete_fails_the_declared_sha256(local_store: LocalStore) -> None:
    """With a SHA-256 declared the parts' MD5s are not computed again: the whole's catches it."""
    upload_id, parts = _two_parts(local_store)
    declared = hashlib.sha256(PART + TAIL).hexdigest()
    part = local_store.root / ".multipart" / upload_id / "2"
    part.write_bytes(b"X" * len(TAIL))  # same size, same inode: the sidecar still matches
    with pytest.raises(ChecksumMismatch):
        local_store.complete_multipart(KEY, upload_id, parts, sha256=declared)
    assert not (local_store.root / KEY).exists()


def test_stale_sidecar_is_not_trusted(local_store: LocalStore) -> None:
    """A crash between the part's two renames: the listed ETag is still the data's."""
    upload_id, _ = _two_parts(local_store)
    part = local_store.root / ".multipart" / upload_id / "2"
    replacement = part.with_name("replacement")
    replacement.write_bytes(b"new data")
    os.replace(replacement, part)
    assert local_store.list_parts(KEY, upload_id)[1].etag == _md5(b"new data")


def test_part_size_limit(tmp_path: Path) -> None:
    store = LocalStore(tmp_path, SECRET, max_part_size=10)
    upload_id = store.create_multipart(KEY, "audio/wav")
    with pytest.raises(PartTooLarge):
        store.upload_part(KEY, upload_id, 1, b"x" * 11)
    assert store.list_parts(KEY, upload_id) == []
    assert list((store.root / ".multipart" / upload_id).iterdir()) == [
        store.root / ".multipart" / upload_id / "upload.json"
    ]


def test_uploads_belong_to_their_key(local_store: LocalStore) -> None:
    upload_id = local_store.create_multipart(KEY, "audio/wav")
    with pytest.raises(UploadNotFound):
        local_store.upload_part("t/other/uploads/1/cover.wav", upload_id, 1, b"x")
    with pytest.raises(UploadNotFound):
        local_store.list_parts(KEY, "../../etc")


def test_abort_and_list_uploads(local_store: LocalStore) -> None:
    mine = local_store.create_multipart(KEY, "audio/wav")
    other = local_store.create_multipart("t/other/uploads/2/cover.wav", "audio/wav")
    assert [u.upload_id for u in local_store.list_multipart_uploads("t/acme/")] == [mine]
    assert {u.upload_id for u in local_store.list_multipart_uploads("t/")} == {mine, other}
    local_store.abort_multipart(KEY, mine)
    local_store.abort_multipart(KEY, mine)
    local_store.abort_multipart(KEY, "not-an-id")
    assert [u.upload_id for u in local_store.list_multipart_uploads("t/")] == [other]
    with pytest.raises(UploadNotFound):
        local_store.upload_part(KEY, mine, 1, b"late part")


@pytest.mark.parametrize(
    "key", ["../outside", "t/../../outside", "/etc/passwd", "t\\..\\x", "t/a\x00b", ".meta/x"]
)
def test_traversal_keys_are_refused(local_store: LocalStore, key: str) -> None:
    with pytest.raises(InvalidKey):
        local_store.put_bytes(key, b"x", "text/plain")
    with pytest.raises(InvalidKey):
        local_store.create_multipart(key, "text/plain")
    with pytest.raises(InvalidKey):
        local_store.head(key)
    assert not (local_store.root.parent / "outside").exists()


def test_symlink_out_of_the_store_is_refused(local_store: LocalStore, tmp_path: Path) -> None:
    (local_store.root / "t").symlink_to(tmp_path)
    with pytest.raises(StorageError):
        local_store.put_bytes("t/escape", b"x", "text/plain")
    assert not (tmp_path / "escape").exists()


def test_put_read_head_delete(local_store: LocalStore) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB: more than one read chunk
    info = local_store.put_bytes(KEY, data, "audio/wav")
    assert info == local_store.head(KEY)
    assert info.etag == _md5(data)
    chunks = list(local_store.read(KEY))
    assert len(chunks) == 2 and b"".join(chunks) == data
    assert b"".join(local_store.read(KEY, 1000, 24)) == data[1000:1024]
    assert b"".join(local_store.read(KEY, len(data) + 5)) == b""
    local_store.delete(KEY)
    local_store.delete(KEY)
    with pytest.raises(ObjectNotFound):
        local_store.head(KEY)
    with pytest.raises(ObjectNotFound):
        local_store.read(KEY)
    with pytest.raises(ObjectNotFound):
        local_store.head("t/acme")  # a folder is not an object


def test_open_reader_streams_a_wav(local_store: LocalStore) -> None:
    frames = bytes(range(256)) * 400
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(44_100)
        out.writeframes(frames)
    local_store.put_bytes(KEY, buffer.getvalue(), "audio/wav")

    with (
        io.BufferedReader(local_store.open_reader(KEY)) as reader,
        wave.open(reader, "rb") as parsed,
    ):
        assert (parsed.getnchannels(), parsed.getsampwidth()) == (2, 2)
        assert parsed.readframes(parsed.getnframes()) == frames


def test_ping(local_store: LocalStore) -> None:
    local_store.ping()


def test_signatures_are_single_purpose() -> None:
    signer = UrlSigner(SECRET)
    grant = signer.grant("PUT", KEY, 60, upload_id="a" * 32, part_number=3)
    url = urlsplit(signer.url("http://127.0.0.1:9100", grant))
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert url.path == "/o/" + KEY
    assert signer.verify("PUT", KEY, params) == grant
    for method, key, changes in [
        ("PUT", KEY, {"partNumber": "4"}),
        ("PUT", KEY, {"uploadId": "b" * 32}),
        ("PUT", KEY, {"expires": str(grant.expires + 3600)}),
        ("PUT", "t/acme/uploads/0001/other.wav", {}),
        ("GET", KEY, {}),
        ("PUT", KEY, {"signature": "0" * 64}),
        ("PUT", KEY, {"expires": "soon"}),
    ]:
        with pytest.raises(InvalidSignature):
            signer.verify(method, key, params | changes)


def test_expired_signature() -> None:
    past = UrlSigner(SECRET, clock=lambda: 1_000.0)
    grant = past.grant("GET", KEY, 60)
    params = grant.query() | {"signature": past.sign(grant)}
    with pytest.raises(ExpiredUrl):
        UrlSigner(SECRET).verify("GET", KEY, params)
    assert UrlSigner(SECRET, clock=lambda: 1_060.0).verify("HEAD", KEY, params) == grant


def test_short_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="secret"):
        LocalStore(tmp_path, "short")


def test_no_public_url_no_presigning(tmp_path: Path) -> None:
    store = LocalStore(tmp_path, SECRET)
    with pytest.raises(StorageError):
        store.presign_download(KEY, 60, None)
