"""S3Store against a real moto S3 server process."""

from __future__ import annotations

import hashlib
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from server.integrations.s3 import S3Store
from server.integrations.storage import (
    MIN_PART_SIZE,
    InvalidKey,
    InvalidPart,
    ObjectNotFound,
    ObjectStore,
    StorageUnavailable,
    UploadNotFound,
)

KEY = "t/acme/uploads/0001/cover.wav"
PART = b"a" * MIN_PART_SIZE
TAIL = b"the last part may be small"


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _put(url: str, data: bytes) -> str:
    response = httpx.put(url, content=data)
    assert response.status_code == 200, response.text
    return response.headers["etag"]


def _upload_two_parts(store: S3Store, key: str = KEY) -> tuple[str, list[tuple[int, str]]]:
    upload_id = store.create_multipart(key, "audio/wav")
    first = _put(store.presign_upload_part(key, upload_id, 1, 60), PART)
    second = _put(store.presign_upload_part(key, upload_id, 2, 60), TAIL)
    return upload_id, [(1, first), (2, second)]


def test_is_an_object_store(s3_store: S3Store) -> None:
    assert isinstance(s3_store, ObjectStore)


def test_multipart_upload_by_presigned_urls(s3_store: S3Store) -> None:
    upload_id, parts = _upload_two_parts(s3_store)

    listed = s3_store.list_parts(KEY, upload_id)
    assert [(p.number, p.etag, p.size) for p in listed] == [
        (1, _md5(PART), len(PART)),
        (2, _md5(TAIL), len(TAIL)),
    ]
    info = s3_store.complete_multipart(KEY, upload_id, parts)

    assert info.size == len(PART) + len(TAIL)
    assert info.etag.endswith("-2")
    assert info.content_type == "audio/wav"
    assert s3_store.head(KEY) == info
    assert b"".join(s3_store.read(KEY)) == PART + TAIL


def test_part_urls_are_signed_for_the_public_host(s3_store: S3Store, moto_url: str) -> None:
    upload_id = s3_store.create_multipart(KEY, "audio/wav")
    url = urlsplit(s3_store.presign_upload_part(KEY, upload_id, 7, 60))
    query = parse_qs(url.query)
    assert url.netloc == urlsplit(moto_url).netloc.replace("127.0.0.1", "localhost")
    assert query["partNumber"] == ["7"] and query["uploadId"] == [upload_id]
    assert query["X-Amz-Expires"] == ["60"]
    assert query["X-Amz-SignedHeaders"] == ["host"]


def test_signing_needs_no_network(moto_url: str) -> None:
    store = S3Store(
        moto_url, "k", "s", "bucket", public_endpoint="https://storage.invalid:9443", region="eu-x"
    )
    url = urlsplit(store.presign_download("t/a/result.wav", 300, None))
    assert (url.scheme, url.netloc, url.path) == (
        "https",
        "storage.invalid:9443",
        "/bucket/t/a/result.wav",
    )
    assert "eu-x" in parse_qs(url.query)["X-Amz-Credential"][0]


def test_server_side_part_upload(s3_store: S3Store) -> None:
    upload_id = s3_store.create_multipart(KEY, "audio/wav")
    etag = s3_store.upload_part(KEY, upload_id, 1, TAIL)
    assert etag == _md5(TAIL)
    info = s3_store.complete_multipart(KEY, upload_id, [(1, etag)])
    assert info.size == len(TAIL)


def test_list_parts_reads_every_page(s3_store: S3Store) -> None:
    upload_id = s3_store.create_multipart(KEY, "audio/wav")
    numbers = range(1, 1002)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda n: s3_store.upload_part(KEY, upload_id, n, b"x"), numbers))
    parts = s3_store.list_parts(KEY, upload_id)
    assert [p.number for p in parts] == list(numbers)
    s3_store.abort_multipart(KEY, upload_id)


def test_wrong_etag_is_an_invalid_part(s3_store: S3Store) -> None:
    upload_id, parts = _upload_two_parts(s3_store)
    with pytest.raises(InvalidPart):
        s3_store.complete_multipart(KEY, upload_id, [parts[0], (2, '"' + "0" * 32 + '"')])
    with pytest.raises(ObjectNotFound):
        s3_store.head(KEY)


def test_small_part_before_the_last_is_an_invalid_part(s3_store: S3Store) -> None:
    upload_id = s3_store.create_multipart(KEY, "audio/wav")
    small = s3_store.upload_part(KEY, upload_id, 1, TAIL)
    last = s3_store.upload_part(KEY, upload_id, 2, TAIL)
    with pytest.raises(InvalidPart):
        s3_store.complete_multipart(KEY, upload_id, [(1, small), (2, last)])


def test_missing_part_is_an_invalid_part(s3_store: S3Store) -> None:
    upload_id, parts = _upload_two_parts(s3_store)
    with pytest.raises(InvalidPart):
        s3_store.complete_multipart(KEY, upload_id, [*parts, (3, parts[1][1])])


def test_ranged_reads_and_reader(s3_store: S3Store) -> None:
    data = bytes(range(256)) * 16
    s3_store.put_bytes(KEY, data, "audio/wav")
    assert b"".join(s3_store.read(KEY, 100, 50)) == data[100:150]
    assert b"".join(s3_store.read(KEY, 4000)) == data[4000:]
    assert b"".join(s3_store.read(KEY, len(data))) == b""
    assert b"".join(s3_store.read(KEY, 10, 0)) == b""
    with s3_store.open_reader(KEY) as reader:
        assert reader.read(4) == data[:4]
        reader.seek(1000)
        assert reader.read(8) == data[1000:1008]


def test_presigned_download(s3_store: S3Store) -> None:
    s3_store.put_bytes(KEY, b"result bytes", "audio/wav")
    plain = httpx.get(s3_store.presign_download(KEY, 60, None))
    assert plain.content == b"result bytes"
    named = httpx.get(s3_store.presign_download(KEY, 60, "stego cover.wav"))
    assert named.status_code == 200
    assert named.headers["content-disposition"] == 'attachment; filename="stego cover.wav"'


def test_abort_is_idempotent(s3_store: S3Store) -> None:
    upload_id, _ = _upload_two_parts(s3_store)
    s3_store.abort_multipart(KEY, upload_id)
    s3_store.abort_multipart(KEY, upload_id)
    with pytest.raises(UploadNotFound):
        s3_store.list_parts(KEY, upload_id)


def test_list_multipart_uploads_by_prefix(moto_url: str) -> None:
    store = S3Store(moto_url, "k", "s", f"b-{uuid.uuid4().hex[:12]}", list_page_size=3)
    store.ensure_bucket()
    mine = {store.create_multipart(f"t/acme/uploads/{i}/cover.wav", "audio/wav") for i in range(7)}
    other = store.create_multipart("t/other/uploads/1/cover.wav", "audio/wav")

    listed = store.list_multipart_uploads("t/acme/")
    assert {upload.upload_id for upload in listed} == mine
    assert other in {upload.upload_id for upload in store.list_multipart_uploads("t/")}
    assert listed[0].key.startswith("t/acme/uploads/")


def test_put_head_delete(s3_store: S3Store) -> None:
    info = s3_store.put_bytes("t/acme/meta.json", b"{}", "application/json")
    assert info == s3_store.head("t/acme/meta.json")
    assert (info.size, info.etag, info.content_type) == (2, _md5(b"{}"), "application/json")
    s3_store.delete("t/acme/meta.json")
    s3_store.delete("t/acme/meta.json")
    with pytest.raises(ObjectNotFound):
        s3_store.head("t/acme/meta.json")
    with pytest.raises(ObjectNotFound):
        s3_store.read("t/acme/meta.json")


def test_unsafe_keys_are_refused(s3_store: S3Store) -> None:
    with pytest.raises(InvalidKey):
        s3_store.create_multipart("t/../x", "audio/wav")


def test_ping(s3_store: S3Store, moto_url: str) -> None:
    s3_store.ping()
    with pytest.raises(StorageUnavailable):
        S3Store(moto_url, "k", "s", "no-such-bucket").ping()


def test_unreachable_storage_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    store = S3Store(f"http://127.0.0.1:{closed_port}", "k", "s", "bucket")
    started = time.monotonic()
    with pytest.raises(StorageUnavailable):
        store.ping()
    with pytest.raises(StorageUnavailable):
        store.head(KEY)
    assert time.monotonic() - started < 10


class _XmlResponse:
    def __init__(self, xml: str) -> None:
        self.data = xml.encode()


def _uploads_page(keys: list[str], truncated: bool) -> object:
    from minio.datatypes import ListMultipartUploadsResult

    uploads = "".join(f"<Upload><Key>{k}</Key><UploadId>id-{k}</UploadId></Upload>" for k in keys)
    markers = (
        f"<NextKeyMarker>{keys[-1]}</NextKeyMarker><NextUploadIdMarker>id-{keys[-1]}"
        "</NextUploadIdMarker>"
    )
    xml = (
        "<ListMultipartUploadsResult><Bucket>b</Bucket>"
        f"<IsTruncated>{str(truncated).lower()}</IsTruncated>{markers}{uploads}"
        "</ListMultipartUploadsResult>"
    )
    return ListMultipartUploadsResult(_XmlResponse(xml))  # type: ignore[arg-type]


def test_list_multipart_uploads_follows_both_markers(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto ignores max-uploads, so paging is checked on minio's own result parser."""
    store = S3Store("127.0.0.1:1", "k", "s", "b")
    pages = [_uploads_page(["a/1", "a/2"], True), _uploads_page(["a/3"], False)]
    calls: list[tuple[str | None, str | None]] = []

    def fake(bucket: str, **kwargs: object) -> object:
        calls.append((kwargs["key_marker"], kwargs["upload_id_marker"]))  # type: ignore[arg-type]
        return pages[len(calls) - 1]

    monkeypatch.setattr(store._client, "_list_multipart_uploads", fake)
    keys = [upload.key for upload in store.list_multipart_uploads("a/")]
    assert keys == ["a/1", "a/2", "a/3"]
    assert calls == [(None, None), ("a/2", "id-a/2")]
