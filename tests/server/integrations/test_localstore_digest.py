"""The running SHA-256 of an in-place upload (``localstore_digest``): the store hashes its
data file onward as parts arrive, and completing takes that digest instead of reading the
bytes again, but only when it covers exactly the writes being completed."""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json

import httpx
import pytest

from server.integrations import localstore, localstore_digest, localstore_disk
from server.integrations.localstore import LocalStore
from server.integrations.localstore_digest import DIGEST_FILE
from server.integrations.storage import MIN_PART_SIZE, ChecksumMismatch

from .conftest import LocalStoreProcess

KEY = "t/acme/uploads/0003/cover.wav"
SIZE = MIN_PART_SIZE
FIRST, SECOND, TAIL = b"a" * SIZE, b"b" * SIZE, b"the tail"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _digest(store: LocalStore, upload_id: str) -> dict[str, object] | None:
    path = store.root / ".multipart" / upload_id / DIGEST_FILE
    return json.loads(path.read_text()) if path.exists() else None


def _reads_no_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Completing from here on fails if it reads an upload's bytes to hash them."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("completion read the bytes again")

    monkeypatch.setattr(localstore, "hash_stretch", refuse)


def test_the_digest_advances_over_the_parts_stored_from_the_start(local_store: LocalStore) -> None:
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)

    local_store.upload_part(KEY, upload_id, 3, TAIL)
    assert _digest(local_store, upload_id) is None  # part 1 is missing: nothing to hash yet

    local_store.upload_part(KEY, upload_id, 1, FIRST)
    first = _digest(local_store, upload_id)
    assert first is not None and (first["size"], first["sha256"]) == (SIZE, _sha(FIRST))

    local_store.upload_part(
        KEY, upload_id, 2, SECOND
    )  # joins 1 and 3: the frontier runs to the end
    whole = _digest(local_store, upload_id)
    assert whole is not None
    assert (whole["size"], whole["sha256"]) == (2 * SIZE + len(TAIL), _sha(FIRST + SECOND + TAIL))


def test_completion_takes_the_digest_and_reads_no_bytes(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    parts = [
        (n, local_store.upload_part(KEY, upload_id, n, d)) for n, d in ((2, SECOND), (1, FIRST))
    ]
    _reads_no_bytes(monkeypatch)

    info = local_store.complete_multipart(
        KEY, upload_id, sorted(parts), sha256=_sha(FIRST + SECOND)
    )

    assert info.sha256 == _sha(FIRST + SECOND) == local_store.head(KEY).sha256
    assert (local_store.root / KEY).read_bytes() == FIRST + SECOND


def test_a_declared_digest_that_differs_from_the_kept_one_is_refused(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    parts = [(n, local_store.upload_part(KEY, upload_id, n, d)) for n, d in ((1, FIRST), (2, TAIL))]
    _reads_no_bytes(monkeypatch)

    with pytest.raises(ChecksumMismatch):
        local_store.complete_multipart(KEY, upload_id, parts, sha256=_sha(FIRST + SECOND))

    assert not (local_store.root / KEY).exists()


def test_a_part_written_again_after_the_digest_passed_it_is_read_again(
    local_store: LocalStore,
) -> None:
    """A retried part is a new write (a new write id): the kept digest no longer covers what
    is stored, so completion hashes the bytes, and the object's SHA-256 is that of what it
    holds (had the stale digest been taken, the declared one would be refused)."""
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    local_store.upload_part(KEY, upload_id, 1, FIRST)
    tail = local_store.upload_part(KEY, upload_id, 2, TAIL)
    kept = _digest(local_store, upload_id)
    assert kept is not None and kept["sha256"] == _sha(FIRST + TAIL)
    other = b"c" * SIZE

    again = local_store.upload_part(KEY, upload_id, 1, other)
    info = local_store.complete_multipart(
        KEY, upload_id, [(1, again), (2, tail)], sha256=_sha(other + TAIL)
    )

    assert info.sha256 == _sha(other + TAIL)
    assert (local_store.root / KEY).read_bytes() == other + TAIL


def test_a_digest_for_another_data_file_is_not_taken(local_store: LocalStore) -> None:
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    parts = [(n, local_store.upload_part(KEY, upload_id, n, d)) for n, d in ((1, FIRST), (2, TAIL))]
    path = local_store.root / ".multipart" / upload_id / DIGEST_FILE
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "inode": record["inode"] + 1, "sha256": "0" * 64}))

    info = local_store.complete_multipart(KEY, upload_id, parts, sha256=_sha(FIRST + TAIL))

    assert info.sha256 == _sha(FIRST + TAIL)


def test_a_store_started_again_hashes_from_the_first_part(local_store: LocalStore) -> None:
    """The running hash lives in the process: a new one (a restart) starts from the first
    part stored, reading it from disk."""
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    local_store.upload_part(KEY, upload_id, 1, FIRST)
    restarted = LocalStore(local_store.root, "s" * 32)

    restarted.upload_part(KEY, upload_id, 2, TAIL)

    record = _digest(restarted, upload_id)
    assert record is not None and record["sha256"] == _sha(FIRST + TAIL)


def test_parts_put_at_once_to_the_process_complete_without_reading_again(
    local_process: LocalStoreProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the store's HTTP process, parts sent together and answered out of order: once
    every PUT is answered, the digest covers them all, so completion reads no bytes."""
    store, key = local_process.store(), "t/acme/uploads/digest/cover.wav"
    data = [bytes([n]) * SIZE for n in range(1, 5)] + [b"end"]
    upload_id = store.create_multipart(key, "audio/wav", part_size=SIZE)

    def put(number: int) -> tuple[int, str]:
        url = store.presign_upload_part(key, upload_id, number, 60)
        response = httpx.put(url, content=data[number - 1], timeout=60)
        assert response.status_code == 200, response.text
        return number, response.headers["etag"].strip('"')

    with cf.ThreadPoolExecutor(max_workers=len(data)) as pool:
        parts = sorted(pool.map(put, reversed(range(1, len(data) + 1))))
    _reads_no_bytes(monkeypatch)

    info = store.complete_multipart(key, upload_id, parts, sha256=_sha(b"".join(data)))

    assert info.sha256 == _sha(b"".join(data))
    assert httpx.get(store.presign_download(key, 60, "cover.wav")).content == b"".join(data)


def test_the_digest_file_is_only_in_in_place_uploads(local_store: LocalStore) -> None:
    upload_id = local_store.create_multipart(KEY, "audio/wav")  # no plan: parts are files

    local_store.upload_part(KEY, upload_id, 1, FIRST)

    assert _digest(local_store, upload_id) is None


# The part at the frontier, hashed as it is written ------------------------------------------

HALF = SIZE // 2


def _read_back(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """``(offset, size)`` of every stretch the running digest reads back from the data file
    from here on (a part hashed as it was written is not read back)."""
    reads: list[tuple[int, int]] = []
    real = localstore_digest.hash_stretch

    def record(fd: int, offset: int, size: int, whole: hashlib._Hash) -> None:
        reads.append((offset, size))
        real(fd, offset, size, whole)

    monkeypatch.setattr(localstore_digest, "hash_stretch", record)
    return reads


def _completes_from_the_digest(
    store: LocalStore,
    upload_id: str,
    parts: list[tuple[int, str]],
    data: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The kept digest is ``data``'s, and completing takes it (reads no bytes) and publishes
    ``data``."""
    digest = _digest(store, upload_id)
    assert digest is not None and digest["sha256"] == _sha(data)
    _reads_no_bytes(monkeypatch)
    info = store.complete_multipart(KEY, upload_id, parts, sha256=_sha(data))
    assert (store.root / KEY).read_bytes() == data and info.sha256 == _sha(data)


def _write(store: LocalStore, upload_id: str, number: int, *batches: bytes) -> str:
    with store.part_writer(KEY, upload_id, number) as writer:
        for batch in batches:
            writer.write(batch)
        etag = writer.commit().etag
    store.advance_digest(KEY, upload_id)
    return etag


def test_the_part_at_the_frontier_is_hashed_as_it_is_written(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = _read_back(monkeypatch)
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    parts = [
        (1, _write(local_store, upload_id, 1, FIRST[:HALF], FIRST[HALF:])),
        (2, _write(local_store, upload_id, 2, SECOND)),
        (3, _write(local_store, upload_id, 3, TAIL)),
    ]
    assert reads == []  # each part was at the frontier as it came: nothing read back
    _completes_from_the_digest(local_store, upload_id, parts, FIRST + SECOND + TAIL, monkeypatch)


def test_a_part_the_frontier_reaches_midway_catches_up_then_follows(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    second = local_store.part_writer(KEY, upload_id, 2)
    second.write(SECOND[:HALF])  # the frontier is at 0: not followed yet
    first = _write(local_store, upload_id, 1, FIRST)  # the frontier now stands at part 2
    reads = _read_back(monkeypatch)
    second.write(SECOND[HALF:])  # catches up on its first half, then follows
    parts = [(1, first), (2, second.commit().etag)]
    local_store.advance_digest(KEY, upload_id)
    assert reads == [(SIZE, HALF)]  # only what part 2 had written before the frontier came
    _completes_from_the_digest(local_store, upload_id, parts, FIRST + SECOND, monkeypatch)


def test_a_write_that_stops_short_takes_its_bytes_back_out(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    with local_store.part_writer(KEY, upload_id, 1) as gone:
        gone.write(b"x" * HALF)  # followed, then the client hangs up: never stored
    reads = _read_back(monkeypatch)
    parts = [(1, _write(local_store, upload_id, 1, FIRST))]
    parts.append((2, _write(local_store, upload_id, 2, TAIL)))
    assert reads == []  # the frontier was free again: part 1 sent again was followed
    _completes_from_the_digest(local_store, upload_id, parts, FIRST + TAIL, monkeypatch)


def test_a_followed_write_superseded_by_a_stored_one_is_hashed_again(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    stalled = local_store.part_writer(KEY, upload_id, 1)
    stalled.write(b"x" * HALF)  # followed: its bytes are pending in the running hash
    reads = _read_back(monkeypatch)
    parts = [(1, _write(local_store, upload_id, 1, FIRST))]  # sent again while it stalls
    # The newer write was not followed (the stalled one held the frontier): once stored, it
    # is read back, and the stalled write's bytes are out of the hash.
    assert reads == [(0, SIZE)]
    with pytest.raises(localstore_disk.PartSuperseded):
        stalled.write(b"x")
    parts.append((2, _write(local_store, upload_id, 2, TAIL)))
    _completes_from_the_digest(local_store, upload_id, parts, FIRST + TAIL, monkeypatch)
