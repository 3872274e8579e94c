"""Parts written in place: an upload planned at a fixed part size keeps its parts in one data
file, each at its planned offset, and completing renames that file onto the key (no copy)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from pathlib import Path

import pytest

from server.integrations import localstore, localstore_disk
from server.integrations.localstore import LocalStore
from server.integrations.localstore_disk import PartSuperseded, locked_data_file
from server.integrations.storage import (
    MIN_PART_SIZE,
    ChecksumMismatch,
    InvalidPart,
    PartTooLarge,
    StorageError,
    UploadNotFound,
)

KEY = "t/acme/uploads/0002/cover.wav"
SIZE = MIN_PART_SIZE
FIRST, SECOND, TAIL = b"a" * SIZE, b"b" * SIZE, b"the tail"


def _s3_etag(*etags: str) -> str:
    digests = b"".join(bytes.fromhex(e) for e in etags)
    return f"{hashlib.md5(digests).hexdigest()}-{len(etags)}"


def _upload_dir(store: LocalStore, upload_id: str) -> Path:
    return store.root / ".multipart" / upload_id


def _put(store: LocalStore, upload_id: str, *numbered: tuple[int, bytes]) -> list[tuple[int, str]]:
    return [(n, store.upload_part(KEY, upload_id, n, data)) for n, data in numbered]


def test_parts_land_in_one_file_and_completing_renames_it(local_store: LocalStore) -> None:
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    parts = sorted(_put(local_store, upload_id, (3, TAIL), (1, FIRST), (2, SECOND)))
    folder = _upload_dir(local_store, upload_id)
    assert sorted(p.name for p in folder.iterdir()) == [
        "1.json", "1.owner", "2.json", "2.owner", "3.json", "3.owner",
        "data", "digest.json", "upload.json",
    ]  # fmt: skip
    listed = [(p.number, p.etag, p.size) for p in local_store.list_parts(KEY, upload_id)]
    etags = [etag for _, etag in parts]
    assert listed == [(1, etags[0], SIZE), (2, etags[1], SIZE), (3, etags[2], len(TAIL))]
    assert len(set(etags)) == 3 and all(len(e) == 32 for e in etags)  # each write's own id
    inode = (folder / "data").stat().st_ino

    declared = hashlib.sha256(FIRST + SECOND + TAIL).hexdigest()
    info = local_store.complete_multipart(KEY, upload_id, parts, sha256=declared)

    stored = local_store.root / KEY
    assert stored.read_bytes() == FIRST + SECOND + TAIL
    assert stored.stat().st_ino == inode  # renamed, not copied
    assert info.etag == _s3_etag(*etags) == local_store.head(KEY).etag
    assert info.sha256 == declared == local_store.head(KEY).sha256
    assert not folder.exists() and list((local_store.root / ".tmp").iterdir()) == []


def test_a_wrong_digest_publishes_nothing_and_keeps_the_upload(local_store: LocalStore) -> None:
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    parts = _put(local_store, upload_id, (1, FIRST), (2, TAIL))
    with pytest.raises(ChecksumMismatch):
        local_store.complete_multipart(KEY, upload_id, parts, sha256="0" * 64)
    assert not (local_store.root / KEY).exists()
    assert len(local_store.list_parts(KEY, upload_id)) == 2
    right = hashlib.sha256(FIRST + TAIL).hexdigest()
    assert local_store.complete_multipart(KEY, upload_id, parts, sha256=right).size == SIZE + 8


def test_the_newest_writer_of_a_part_owns_it(local_store: LocalStore) -> None:
    # A stalled PUT of part 2 (its client gave up on it) and the PUT sent again: once the
    # newer one has started, the older one never writes into the part again, even after the
    # newer one is stored, the running digest has read it, and the older one wakes up. The
    # bytes of a stored part are exactly its writer's, so the kept SHA-256 is true.
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    first = _put(local_store, upload_id, (1, FIRST))
    stalled = local_store.part_writer(KEY, upload_id, 2)
    stalled.write(b"XXXX")
    again = local_store.upload_part(KEY, upload_id, 2, TAIL)  # stored, digest advanced
    with pytest.raises(PartSuperseded):
        stalled.write(b"XXXX")
    with pytest.raises(StorageError):  # and it is closed: nothing more from it
        stalled.commit()
    parts = [*first, (2, again)]
    declared = hashlib.sha256(FIRST + TAIL).hexdigest()
    info = local_store.complete_multipart(KEY, upload_id, parts, sha256=declared)
    assert (local_store.root / KEY).read_bytes() == FIRST + TAIL
    assert info.sha256 == declared


def test_an_older_write_cannot_record_its_part_over_a_newer_one(local_store: LocalStore) -> None:
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    older = local_store.part_writer(KEY, upload_id, 1)
    older.write(TAIL)
    with local_store.part_writer(KEY, upload_id, 1) as newer:
        newer.write(b"the newer")
        etag = newer.commit().etag
    with pytest.raises(PartSuperseded):
        older.commit()
    assert [(p.number, p.etag) for p in local_store.list_parts(KEY, upload_id)] == [(1, etag)]
    local_store.complete_multipart(KEY, upload_id, [(1, etag)])
    assert (local_store.root / KEY).read_bytes() == b"the newer"


def test_a_part_past_the_list_is_cut_off(local_store: LocalStore) -> None:
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    parts = _put(local_store, upload_id, (1, FIRST), (2, SECOND), (3, TAIL))
    local_store.complete_multipart(KEY, upload_id, parts[:2])
    assert (local_store.root / KEY).read_bytes() == FIRST + SECOND


def test_parts_that_do_not_follow_each_other_are_copied_together(
    local_store: LocalStore,
) -> None:
    # Part 1 is short of the plan: part 2 still lies at the planned offset, with a gap
    # before it, so completing copies the two stretches (each checked to be the write
    # listed).
    short = b"s" * (SIZE - 5)
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    local_store.min_part_size = SIZE - 5
    parts = _put(local_store, upload_id, (1, short), (2, TAIL))
    info = local_store.complete_multipart(KEY, upload_id, parts)
    assert (local_store.root / KEY).read_bytes() == short + TAIL
    assert info.etag == _s3_etag(*(etag for _, etag in parts))


def test_a_part_may_not_outgrow_its_planned_place(local_store: LocalStore) -> None:
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    with pytest.raises(PartTooLarge):
        local_store.upload_part(KEY, upload_id, 1, FIRST + b"!")
    assert local_store.list_parts(KEY, upload_id) == []


def test_a_part_being_written_again_is_not_completed_and_no_part_starts_while_completing(
    local_store: LocalStore,
) -> None:
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    parts = _put(local_store, upload_id, (1, FIRST), (2, TAIL))

    # A part being written again: it is not listed until it is stored, and completing with
    # its old ETag now is refused rather than publishing bytes that are still moving.
    with local_store.part_writer(KEY, upload_id, 2) as writer:
        writer.write(b"the ")
        assert [p.number for p in local_store.list_parts(KEY, upload_id)] == [1]
        with pytest.raises(InvalidPart, match="being uploaded again"):
            local_store.complete_multipart(KEY, upload_id, parts)
        writer.write(b"tail")
        again = writer.commit().etag
    assert [p.number for p in local_store.list_parts(KEY, upload_id)] == [1, 2]
    with pytest.raises(InvalidPart, match="ETag does not match"):  # the list names the old write
        local_store.complete_multipart(KEY, upload_id, parts)
    parts[1] = (2, again)

    with locked_data_file(_upload_dir(local_store, upload_id)), pytest.raises(UploadNotFound):
        local_store.part_writer(KEY, upload_id, 2)
    local_store.complete_multipart(KEY, upload_id, parts)
    with pytest.raises(UploadNotFound):
        local_store.part_writer(KEY, upload_id, 2)
    assert (local_store.root / KEY).read_bytes() == FIRST + TAIL


def test_a_large_part_starts_its_writeback_as_it_comes(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[int, int]] = []
    real = localstore_disk.start_writeback

    def record(fd: int, offset: int, length: int) -> None:
        started.append((offset, length))
        real(fd, offset, length)

    monkeypatch.setattr(localstore_disk, "WRITEBACK_BYTES", 1 << 20)
    monkeypatch.setattr(localstore_disk, "start_writeback", record)
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    with local_store.part_writer(KEY, upload_id, 2) as writer:
        for _ in range(SIZE // (256 << 10)):
            writer.write(b"w" * (256 << 10))
        writer.commit()
    # Part 2 lies at SIZE: every stretch of it was handed to the kernel once, in order.
    assert started[0][0] == SIZE and all(length > 0 for _, length in started)
    assert [o for o, _ in started] == sorted(o for o, _ in started)
    assert sum(length for _, length in started) == SIZE and len(started) >= 5


def test_a_part_size_outside_the_limits_is_refused(local_store: LocalStore) -> None:
    with pytest.raises(ValueError, match="part_size"):
        local_store.create_multipart(KEY, "audio/wav", part_size=SIZE - 1)
    assert not any((local_store.root / ".multipart").iterdir())


def test_aborting_drops_the_data_file(local_store: LocalStore) -> None:
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    _put(local_store, upload_id, (1, FIRST))
    local_store.abort_multipart(KEY, upload_id)
    assert not _upload_dir(local_store, upload_id).exists()
    assert not os.listdir(local_store.root / ".multipart")


def test_a_part_stored_after_its_upload_ended_leaves_no_folder_behind(
    local_store: LocalStore,
) -> None:
    # A retried PUT still streaming when the upload completed: its sidecar must not bring
    # the upload's folder back, where nothing would ever clean it up. (Parts written in
    # place cannot get there: completing waits for no writer, see above.)
    upload_id = local_store.create_multipart(KEY, "audio/wav")
    parts = _put(local_store, upload_id, (1, TAIL))
    with local_store.part_writer(KEY, upload_id, 1) as late:
        late.write(TAIL)
        local_store.complete_multipart(KEY, upload_id, parts)
        with pytest.raises(UploadNotFound):
            late.commit()
    assert not _upload_dir(local_store, upload_id).exists()
    assert (local_store.root / KEY).read_bytes() == TAIL


def test_a_writer_that_locks_after_completion_renamed_the_file_writes_nothing(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A part writer opens the data file, then locks it; completion may rename the file onto
    # its key in between. Once locked, the writer must see that the file it holds is no
    # longer the upload's, not write into the published object.
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    parts = _put(local_store, upload_id, (1, TAIL))
    real_flock = localstore_disk.fcntl.flock

    def complete_first(fd: int, operation: int) -> None:
        monkeypatch.setattr(localstore_disk.fcntl, "flock", real_flock)
        local_store.complete_multipart(KEY, upload_id, parts)  # takes its own lock
        real_flock(fd, operation)

    monkeypatch.setattr(localstore_disk.fcntl, "flock", complete_first)
    with pytest.raises(UploadNotFound):
        local_store.part_writer(KEY, upload_id, 1)
    assert (local_store.root / KEY).read_bytes() == TAIL
    with pytest.raises(UploadNotFound):  # and completing again finds the upload gone
        local_store.complete_multipart(KEY, upload_id, parts)


def test_a_writer_that_fails_to_start_holds_no_lock(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    parts = _put(local_store, upload_id, (1, TAIL))
    real_unlink = Path.unlink

    def refuse(path: Path, missing_ok: bool = False) -> None:
        if path.name == "1.json":
            raise PermissionError(13, "read-only", str(path))
        real_unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.raises(StorageError):
        local_store.part_writer(KEY, upload_id, 1)
    monkeypatch.undo()
    local_store.complete_multipart(KEY, upload_id, parts)  # no lock was left behind
    assert (local_store.root / KEY).read_bytes() == TAIL


def test_a_short_write_goes_on_where_it_stopped(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_pwrite = os.pwrite

    def at_most_three(fd: int, data: bytes | memoryview, offset: int) -> int:
        return real_pwrite(fd, bytes(data)[:3], offset)

    monkeypatch.setattr(localstore_disk.os, "pwrite", at_most_three)
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    parts = _put(local_store, upload_id, (1, TAIL))
    monkeypatch.undo()
    declared = hashlib.sha256(TAIL).hexdigest()
    assert local_store.complete_multipart(KEY, upload_id, parts, sha256=declared).size == 8


def test_a_part_started_while_completion_checks_is_refused_not_published(
    local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Completion checks the parts, then locks the data file; a part written again in
    # between (other bytes, a broken client) must be seen under the lock and refused, not
    # hashed half written into a checksum mismatch (which would drop the whole upload).
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    parts = _put(local_store, upload_id, (1, FIRST), (2, TAIL))
    real_lock = localstore.locked_data_file
    writers = []

    def part_starts_first(upload_dir: Path):  # type: ignore[no-untyped-def]
        writer = local_store.part_writer(KEY, upload_id, 2)
        writer.write(b"other")
        writers.append(writer)
        return real_lock(upload_dir)

    monkeypatch.setattr(localstore, "locked_data_file", part_starts_first)
    digest = hashlib.sha256(FIRST + TAIL).hexdigest()
    with pytest.raises(InvalidPart, match="being uploaded again"):
        local_store.complete_multipart(KEY, upload_id, parts, sha256=digest)
    monkeypatch.undo()
    writers[0].write(b" tail")
    etag = writers[0].commit().etag
    # The upload is still open, and completes with the part as it now is.
    info = local_store.complete_multipart(KEY, upload_id, [parts[0], (2, etag)])
    assert (local_store.root / KEY).read_bytes() == FIRST + b"other tail"
    assert info.size == SIZE + len(b"other tail")


def test_completion_waits_for_a_write_in_progress(local_store: LocalStore) -> None:
    # A writer holds the data file's lock only while a write is under way; completion
    # waits for that write to end rather than refusing (or publishing under it).
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    parts = _put(local_store, upload_id, (1, TAIL))
    data = _upload_dir(local_store, upload_id) / localstore_disk.DATA_FILE
    fd = os.open(data, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # a write under way
        done: list[object] = []
        completing = threading.Thread(
            target=lambda: done.append(local_store.complete_multipart(KEY, upload_id, parts))
        )
        completing.start()
        completing.join(0.3)
        assert completing.is_alive() and not (local_store.root / KEY).exists()
        fcntl.flock(fd, fcntl.LOCK_UN)  # the write is done
        completing.join(30)
    finally:
        os.close(fd)
    assert not completing.is_alive() and done
    assert (local_store.root / KEY).read_bytes() == TAIL


def test_two_completions_at_once_publish_once_and_the_other_finds_it_done(
    local_store: LocalStore,
) -> None:
    # A client that retries its completion after a timeout may complete twice at once: the
    # second waits for the first and finds the upload completed (the service then answers
    # with the object), where it used to be refused with invalid_part.
    upload_id = local_store.create_multipart(KEY, "audio/wav", part_size=SIZE)
    parts = _put(local_store, upload_id, (1, FIRST), (2, TAIL))
    data = _upload_dir(local_store, upload_id) / localstore_disk.DATA_FILE
    fd = os.open(data, os.O_RDWR)
    outcomes: list[object] = []

    def complete() -> None:
        try:
            outcomes.append(local_store.complete_multipart(KEY, upload_id, parts))
        except Exception as e:
            outcomes.append(e)

    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # a write under way: both completions wait on it
        both = [threading.Thread(target=complete) for _ in range(2)]
        for thread in both:
            thread.start()
        both[0].join(0.3)
        fcntl.flock(fd, fcntl.LOCK_UN)
        for thread in both:
            thread.join(30)
    finally:
        os.close(fd)
    assert sorted(type(o).__name__ for o in outcomes) == ["ObjectInfo", "UploadNotFound"]
    assert (local_store.root / KEY).read_bytes() == FIRST + TAIL
