"""Object keys, pre-signed URLs and the local store process under attack.

* A client never chooses or traverses a key: whatever ``UploadCreate.name`` holds, the key is
  ``t/<tenant>/uploads/<upload id>/<safe tail>`` and the object lands there, inside the store.
* The local store process refuses traversal in its URL paths, even under a valid signature.
* A part URL PUTs that one part of that one upload, at most its planned size; a GET URL reads
  that one object; an expired URL is refused; signatures are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from server.integrations.localstore import LocalStore, UrlSigner
from server.uploads.service import MAX_KEY_NAME_CHARS
from tests.server.api.conftest import (
    PART_SIZE,
    Api,
    StoreProcess,
    auth,
    complete,
    error_code,
    put_parts,
    start_upload,
    upload,
)

HOSTILE_NAMES = [
    "../../x",
    "../../../../../../etc/passwd",
    "/etc/passwd",
    "/",
    ".",
    "..",
    ".hidden",
    ".multipart",
    "a/../../b",
    "..\\..\\windows\\system32",
    "C:\\Windows\\win.ini",
    "a\x00b",
    "\x00",
    "nul\x00/../../x",
    "%2e%2e%2f%2e%2e%2fx",
    "line\r\nbreak: injected",
    "tab\tand\x7fdel",
    "x" * 255,
    "é" * 200,
    "\u202ecod.exe",
    "CON",
    "   ",
    "-",
    "a/b/c/d.wav",
    "\U0001f600.wav",
]
SAFE_TAIL = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_KEY_NAME_CHARS - 1}}}")
DATA = b"cover bytes for a hostile name"


def _inside(root: Path, path: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=lambda n: repr(n)[:24])
def test_a_client_name_never_chooses_or_traverses_the_key(
    api: Api, store_process: StoreProcess, name: str
) -> None:
    tenant = api.tokens.authenticate(api.alice).id
    before = {p for p in store_process.root.parent.rglob("*")}
    ref = upload(api, api.alice, DATA, name)
    record = api.uploads.get_object(tenant, ref.id)
    head, upload_id, tail = record.key.rsplit("/", 2)
    assert head == f"t/{tenant}/uploads"
    assert upload_id.startswith("up_")
    assert SAFE_TAIL.fullmatch(tail), tail
    stored = store_process.root.joinpath(*record.key.split("/"))
    assert stored.read_bytes() == DATA
    created = {p for p in store_process.root.parent.rglob("*")} - before
    assert all(_inside(store_process.root, p) for p in created)
    assert ref.name == name  # the name is only a label, echoed back


def test_a_name_over_255_characters_is_refused(api: Api) -> None:
    body = {"name": "x" * 256, "size": 1, "sha256": "0" * 64}
    r = api.client.post("/v1/uploads", json=body, headers=auth(api.alice))
    assert r.status_code == 422 and error_code(r) == "invalid_request"


def test_an_unpaired_surrogate_in_a_name_is_refused_plainly(api: Api) -> None:
    body = '{"name": "a\\ud800b", "size": 1, "sha256": "' + "0" * 64 + '"}'
    r = api.client.post(
        "/v1/uploads",
        content=body,
        headers=auth(api.alice) | {"Content-Type": "application/json"},
    )
    assert r.status_code in (400, 422), r.text
    assert error_code(r) in ("malformed_json", "invalid_request")


# --- the local store process's URL paths ---------------------------------------------------


def _raw(url: str, method: str, path_and_query: str, body: bytes | None = None):
    """Send exactly this path (no client-side normalisation of dot segments or escapes)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.putrequest(method, path_and_query, skip_accept_encoding=True)
        conn.putheader("Content-Length", str(len(body or b"")))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        conn.close()


TRAVERSALS = [
    "../../../../etc/passwd",
    "t/../../../../etc/passwd",
    "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "..%2f..%2f..%2fetc%2fpasswd",
    "/etc/passwd",
    "//etc/passwd",
    "t/x/%00/y",
    "t/x%00.wav",
    ".meta/t/x.json",
    ".multipart/0123456789abcdef0123456789abcdef/1",
    ".tmp/x",
    "t/./x",
    "t\\..\\..\\x",
]


@pytest.mark.parametrize("raw_key", TRAVERSALS)
@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT"])
def test_the_local_store_refuses_traversal_even_when_signed(
    store_process: StoreProcess, raw_key: str, method: str
) -> None:
    """Signed with the store's own secret (which no client has): still refused."""
    signer = UrlSigner(store_process.secret.encode())
    key = unquote(raw_key)  # what the process sees once it decodes the path
    grant = signer.grant(method if method != "HEAD" else "GET", key, 60, upload_id="0" * 32,
                         part_number=1 if method == "PUT" else 0)  # fmt: skip
    query = urlencode(grant.query() | {"signature": signer.sign(grant)})
    status, content_type, body = _raw(
        store_process.url, method, f"/o/{raw_key}?{query}", b"owned" if method == "PUT" else None
    )
    assert status == 400, (status, body)
    if method != "HEAD":
        assert content_type == "application/json"
        assert json.loads(body)["error"]["code"] == "invalid_key"
    assert not (store_process.root.parent / "etc").exists()


# --- what one signed URL allows ------------------------------------------------------------


def _edit(url: str, path: str | None = None, **query: str | None) -> str:
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    for name, value in query.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    return urlunsplit(parts._replace(path=path or parts.path, query=urlencode(params)))


def _part_urls(api: Api, token: str, upload_id: str, numbers: list[int]) -> dict[int, str]:
    r = api.client.post(
        f"/v1/uploads/{upload_id}/parts", json={"part_numbers": numbers}, headers=auth(token)
    )
    assert r.status_code == 200, r.text
    return {p["part_number"]: p["url"] for p in r.json()["parts"]}


def _stored_parts(api: Api, token: str, upload_id: str) -> list[int]:
    r = api.client.get(f"/v1/uploads/{upload_id}", headers=auth(token))
    return [p["part_number"] for p in r.json()["parts"]]


TWO_PARTS = bytes(range(256)) * (PART_SIZE // 256) + b"tail of the second part"


@pytest.fixture
def two_uploads(api: Api) -> tuple[str, str]:
    first = str(start_upload(api, api.alice, TWO_PARTS)["upload_id"])
    second = str(start_upload(api, api.bob, TWO_PARTS)["upload_id"])
    return first, second


def test_a_part_url_puts_only_its_own_part_of_its_own_upload(
    api: Api, store_process: StoreProcess, two_uploads: tuple[str, str]
) -> None:
    first, second = two_uploads
    url = _part_urls(api, api.alice, first, [1])[1]
    other = _part_urls(api, api.bob, second, [1])[1]
    other_upload_id = dict(parse_qsl(urlsplit(other).query))["uploadId"]
    chunk = TWO_PARTS[:PART_SIZE]
    attempts = {
        "another part": _edit(url, partNumber="2"),
        "another upload": _edit(url, uploadId=other_upload_id),
        "another key": _edit(url, path=urlsplit(other).path),
        "a later expiry": _edit(url, expires=str(int(time.time()) + 10**6)),
        "no size limit": _edit(url, maxBytes=None),
        "a bigger size limit": _edit(url, maxBytes=str(10 * PART_SIZE)),
        "no signature": _edit(url, signature=None),
        "a forged signature": _edit(url, signature="0" * 64),
        "a short signature": _edit(url, signature="00"),
        "a non-ASCII signature": _edit(url, signature="é" * 64),
    }
    for what, edited in attempts.items():
        r = httpx.put(edited, content=chunk, timeout=30)
        assert r.status_code == 403, (what, r.status_code, r.text)
        assert error_code(r) == "invalid_signature", what
    assert httpx.get(url, timeout=30).status_code == 403  # a PUT URL does not read
    assert _stored_parts(api, api.alice, first) == []
    assert _stored_parts(api, api.bob, second) == []
    assert httpx.put(url, content=chunk, timeout=30).status_code == 200
    assert _stored_parts(api, api.alice, first) == [1]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_part_bigger_than_planned_is_refused_and_not_kept(
    api: Api, store_process: StoreProcess, two_uploads: tuple[str, str], chunked: bool
) -> None:
    first, _ = two_uploads
    urls = _part_urls(api, api.alice, first, [1, 2])
    last_size = len(TWO_PARTS) - PART_SIZE
    for number, too_big in ((1, PART_SIZE + 1), (2, last_size + 1)):
        body = b"\x01" * too_big

        def pieces(data: bytes = body) -> Iterator[bytes]:
            yield from (data[i : i + 65536] for i in range(0, len(data), 65536))

        r = httpx.put(urls[number], content=pieces() if chunked else body, timeout=30)
        assert r.status_code == 413, r.text
        assert error_code(r) == "part_too_large"
    assert _stored_parts(api, api.alice, first) == []
    leftovers = [p for p in (store_process.root / ".multipart").rglob("*") if p.suffix == ".tmp"]
    assert leftovers == []
    etags = put_parts(api, api.alice, first, TWO_PARTS, [1, 2])  # the planned sizes still go
    assert complete(api, api.alice, first, etags).status_code == 200


def test_a_download_url_reads_only_its_own_object(api: Api, store_process: StoreProcess) -> None:
    mine = upload(api, api.alice, b"alice's object", "a.wav")
    theirs = upload(api, api.bob, b"bob's object", "b.wav")
    store = store_process.store()
    tenant_a = api.tokens.authenticate(api.alice).id
    tenant_b = api.tokens.authenticate(api.bob).id
    key_a = api.uploads.get_object(tenant_a, mine.id).key
    key_b = api.uploads.get_object(tenant_b, theirs.id).key
    url = store.presign_download(key_a, 60, "a.wav")
    assert httpx.get(url, timeout=30).content == b"alice's object"
    other_path = urlsplit(store.presign_download(key_b, 60, None)).path
    for what, edited in {
        "another key": _edit(url, path=other_path),
        "another file name": _edit(url, filename="evil.exe"),
        "a later expiry": _edit(url, expires=str(int(time.time()) + 10**6)),
        "a part grant": _edit(url, uploadId="0" * 32, partNumber="1"),
    }.items():
        r = httpx.get(edited, timeout=30)
        assert r.status_code == 403, (what, r.text)
    assert httpx.put(url, content=b"overwrite", timeout=30).status_code == 403
    assert httpx.get(url, timeout=30).content == b"alice's object"


def test_an_expired_url_is_refused(api: Api, store_process: StoreProcess) -> None:
    ref = upload(api, api.alice, b"old object", "old.wav")
    key = api.uploads.get_object(api.tokens.authenticate(api.alice).id, ref.id).key
    upload_id = str(start_upload(api, api.alice, b"new")["upload_id"])
    record = api.uploads.get_upload(api.tokens.authenticate(api.alice).id, upload_id)
    past = LocalStore(
        store_process.root, store_process.secret, public_url=store_process.url,
        clock=lambda: time.time() - 3600,
    )  # fmt: skip
    get = httpx.get(past.presign_download(key, 60, None), timeout=30)
    put = httpx.put(
        past.presign_upload_part(record.key, record.storage_upload_id, 1, 60), content=b"new"
    )
    for r in (get, put):
        assert r.status_code == 403 and error_code(r) == "expired_url"
    assert _stored_parts(api, api.alice, upload_id) == []


def test_signatures_are_compared_in_constant_time(
    store_process: StoreProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def spy(a, b):  # type: ignore[no-untyped-def]
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    store = store_process.store()
    key = "t/x/uploads/up_x/file"
    url = store.presign_download(key, 60, None)
    params = dict(parse_qsl(urlsplit(url).query))
    grant = store.verify("GET", key, params)
    assert grant.key == key and calls
    params["signature"] = hashlib.sha256(b"forged").hexdigest()
    with pytest.raises(Exception, match="signature"):
        store.verify("GET", key, params)
    assert len(calls) == 2
