"""The local store's own HTTP process, started as a real subprocess, used by signed URLs."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from server.integrations.storage import MIN_PART_SIZE
from server.localstore.app import WRITE_BATCH_BYTES, parse_range

from .conftest import LocalStoreProcess

PART = b"p" * MIN_PART_SIZE
TAIL = b"the last part"


def _key(name: str) -> str:
    return f"t/acme/uploads/{name}-{time.monotonic_ns()}/cover.wav"


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


def _error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def test_healthz(local_process: LocalStoreProcess) -> None:
    assert httpx.get(f"{local_process.url}/healthz").json() == {"status": "ok"}


def test_multipart_upload_and_download_by_signed_urls(local_process: LocalStoreProcess) -> None:
    store, key = local_process.store(), _key("flow")
    upload_id = store.create_multipart(key, "audio/wav")
    etags = []
    for number, data in ((1, PART), (2, TAIL)):
        url = store.presign_upload_part(key, upload_id, number, 60)
        assert url.startswith(f"{local_process.url}/o/{key}?")
        response = httpx.put(url, content=data)
        assert response.status_code == 200, response.text
        assert response.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
        etags.append((number, response.headers["etag"]))

    assert [p.size for p in store.list_parts(key, upload_id)] == [len(PART), len(TAIL)]
    info = store.complete_multipart(key, upload_id, etags)

    download = httpx.get(store.presign_download(key, 60, "hidden message.wav"))
    assert download.status_code == 200
    assert download.content == PART + TAIL
    assert download.headers["etag"] == f'"{info.etag}"'
    assert download.headers["content-type"] == "audio/wav"
    assert download.headers["accept-ranges"] == "bytes"
    assert download.headers["content-disposition"] == 'attachment; filename="hidden message.wav"'


def test_chunked_part_upload(local_process: LocalStoreProcess) -> None:
    store, key = local_process.store(), _key("chunked")
    upload_id = store.create_multipart(key, "audio/wav")

    def body() -> Iterator[bytes]:
        yield from (b"abc", b"def")

    url = store.presign_upload_part(key, upload_id, 1, 60)
    response = httpx.put(url, content=body())
    assert response.headers["etag"] == f'"{hashlib.md5(b"abcdef").hexdigest()}"'


def test_range_requests(local_process: LocalStoreProcess) -> None:
    store, key = local_process.store(), _key("range")
    data = bytes(range(256)) * 4
    store.put_bytes(key, data, "audio/wav")
    url = store.presign_download(key, 60, None)

    middle = httpx.get(url, headers={"Range": "bytes=10-19"})
    assert middle.status_code == 206
    assert middle.content == data[10:20]
    assert middle.headers["content-range"] == f"bytes 10-19/{len(data)}"
    assert middle.headers["content-length"] == "10"

    suffix = httpx.get(url, headers={"Range": "bytes=-6"})
    assert (suffix.status_code, suffix.content) == (206, data[-6:])
    open_ended = httpx.get(url, headers={"Range": "bytes=1000-"})
    assert open_ended.content == data[1000:]

    outside = httpx.get(url, headers={"Range": "bytes=5000-"})
    assert outside.status_code == 416
    assert outside.headers["content-range"] == f"bytes */{len(data)}"

    head = httpx.head(url, headers={"Range": "bytes=0-99"})
    assert (head.status_code, head.headers["content-length"], head.content) == (206, "100", b"")
    assert httpx.head(url).headers["content-length"] == str(len(data))


def test_expired_url_is_refused(local_process: LocalStoreProcess) -> None:
    key = _key("expired")
    local_process.store().put_bytes(key, b"x", "audio/wav")
    yesterday = local_process.store(clock=lambda: time.time() - 86_400)
    response = httpx.get(yesterday.presign_download(key, 60, None))
    assert response.status_code == 403
    assert _error_code(response) == "expired_url"


def test_tampered_signature_is_refused(local_process: LocalStoreProcess) -> None:
    store, key = local_process.store(), _key("tampered")
    store.put_bytes(key, b"x", "audio/wav")
    url = store.presign_download(key, 60, None)
    signature = parse_qs(urlsplit(url).query)["signature"][0]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    for bad in (_with_query(url, signature=flipped), url.split("?")[0]):
        response = httpx.get(bad)
        assert response.status_code == 403
        assert _error_code(response) == "invalid_signature"
    other = local_process.store().put_bytes(_key("other"), b"y", "audio/wav")
    response = httpx.get(url.replace(key, other.key))
    assert _error_code(response) == "invalid_signature"


def test_part_url_is_for_one_part_only(local_process: LocalStoreProcess) -> None:
    store, key = local_process.store(), _key("part3")
    upload_id = store.create_multipart(key, "audio/wav")
    url = store.presign_upload_part(key, upload_id, 3, 60)

    response = httpx.put(_with_query(url, partNumber="4"), content=b"x")
    assert (response.status_code, _error_code(response)) == (403, "invalid_signature")
    assert httpx.get(url).status_code == 403  # a PUT URL cannot read
    assert store.list_parts(key, upload_id) == []
    assert httpx.put(url, content=b"x").status_code == 200
    assert [p.number for p in store.list_parts(key, upload_id)] == [3]


def test_unknown_upload_and_object(local_process: LocalStoreProcess) -> None:
    store, key = local_process.store(), _key("unknown")
    upload_id = store.create_multipart(key, "audio/wav")
    url = store.presign_upload_part(key, upload_id, 1, 60)
    store.abort_multipart(key, upload_id)
    response = httpx.put(url, content=b"x")
    assert (response.status_code, _error_code(response)) == (404, "upload_not_found")

    missing = httpx.get(store.presign_download(_key("missing"), 60, None))
    assert (missing.status_code, _error_code(missing)) == (404, "not_found")


def test_part_size_limit(small_local_process: LocalStoreProcess) -> None:
    store, key = small_local_process.store(), _key("limit")
    upload_id = store.create_multipart(key, "audio/wav")
    url = store.presign_upload_part(key, upload_id, 1, 60)
    too_big = b"x" * (small_local_process.max_part_bytes + 1)

    declared = httpx.put(url, content=too_big)
    assert (declared.status_code, _error_code(declared)) == (413, "part_too_large")

    def chunked() -> Iterator[bytes]:
        for start in range(0, len(too_big), 8192):
            yield too_big[start : start + 8192]

    streamed = httpx.put(url, content=chunked())
    assert (streamed.status_code, _error_code(streamed)) == (413, "part_too_large")
    assert store.list_parts(key, upload_id) == []
    upload_dir = small_local_process.root / ".multipart" / upload_id
    assert [p.name for p in upload_dir.iterdir()] == ["upload.json"]

    exact = httpx.put(url, content=too_big[:-1])
    assert exact.status_code == 200


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-0", (0, 0)),
        ("bytes=5-", (5, 99)),
        ("bytes=90-200", (90, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-500", (0, 99)),
        ("bytes=1-2,5-6", None),
        ("items=1-2", None),
        ("bytes=9-3", None),
        ("bytes=x-3", None),
        ("bytes=-", None),
        ("bytes=²-3", None),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == expected


def _wait_for_bytes(path: Path, offset: int, expected: bytes) -> bool:
    """Whether ``expected`` lands at ``offset`` of ``path`` within 30 s (another process
    writes it)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), path.open("rb") as f:
            f.seek(offset)
            if f.read(len(expected)) == expected:
                return True
        time.sleep(0.01)
    return False


def test_a_stalled_put_of_a_part_sent_again_does_not_hold_completion_up(
    local_process: LocalStoreProcess,
) -> None:
    """A client's PUT of part 2 stalls halfway (its network went quiet); it times out and
    sends the part again on a new connection, which is stored; completing the upload must
    then work, whatever the stalled request is still waiting for. The stalled request's
    late bytes are refused and change nothing of the published object. (The store writes a
    part a batch at a time: the stalled half holds more than one, so that it is writing.)"""
    tail = bytes(range(256)) * (3 * WRITE_BATCH_BYTES // 256)
    store, key = local_process.store(), _key("stalled")
    upload_id = store.create_multipart(key, "audio/wav", part_size=MIN_PART_SIZE)
    etags = [(1, httpx.put(store.presign_upload_part(key, upload_id, 1, 60), content=PART))]
    assert etags[0][1].status_code == 200

    url = urlsplit(store.presign_upload_part(key, upload_id, 2, 60))
    half = len(tail) // 2
    stalled = socket.create_connection((url.hostname, url.port))
    try:
        stalled.sendall(
            f"PUT {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Content-Length: {len(tail)}\r\n\r\n".encode()
            + tail[:half]
        )
        data_file = local_process.root / ".multipart" / upload_id / "data"
        written = tail[:WRITE_BATCH_BYTES]
        assert _wait_for_bytes(data_file, MIN_PART_SIZE, written)  # the server is writing

        again = httpx.put(store.presign_upload_part(key, upload_id, 2, 60), content=tail)
        assert again.status_code == 200, again.text
        parts = [(1, etags[0][1].headers["etag"]), (2, again.headers["etag"])]
        info = store.complete_multipart(key, upload_id, parts)
        assert info.size == len(PART) + len(tail)

        stalled.sendall(b"X" * (len(tail) - half))  # the rest comes, too late, and wrong
        status_line = stalled.makefile("rb").readline()
        assert status_line.split()[1] != b"200", status_line
    finally:
        stalled.close()
    download = httpx.get(store.presign_download(key, 60, "cover.wav"))
    assert download.content == PART + tail
