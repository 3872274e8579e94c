"""The running SHA-256 of an in-place upload's data file, kept as its parts arrive.

Completing an upload checks the bytes against the SHA-256 the client declared. Reading them
again for that costs as much as receiving them did (100 MB: ~50 ms at 2 GB/s), after the last
part, while the client waits. So the local store *process*, each time a part is stored, hashes
the data file onward from where it stopped, over the parts now stored one after the other
from the start (the *frontier*), and writes what it has to ``digest.json`` in the upload's
folder: the SHA-256 so far, how many bytes it covers, the data file's inode, and a digest of
the parts it read (each part's number and *write id*, a random id every part write records in
its sidecar). Parts arrive a few at a time and out of order; the frontier advances whenever
the part it waits for arrives, in a thread of that process, so the hashing runs beside the
transfers instead of after them.

**The part at the frontier is hashed as it is written** (:class:`PartFollower`): each batch a
writer stores is fed to the running hash when the frontier stands exactly where the batch
begins; a writer the frontier reaches in the middle of its part catches up on what it has
written so far, read back, and goes on with its batches. So when the last part lands its bytes
are already hashed (else they were hashed after it landed, before its PUT was answered: for a
single 100 MB part, 70 ms). Bytes fed this way are only *pending*: the frontier passes the
part (and ``digest.json`` records it) once its sidecar shows it stored by that very write; a
writer that stops short (client gone, superseded, too large) takes its bytes back out (the
hash as it was before the part is kept), and a part the sidecar shows stored by another write
is hashed again from the data file.

Completing (:meth:`LocalStore.complete_multipart`, in the API process) holds the data file
exclusively and takes the SHA-256 from ``digest.json`` only if it covers exactly the parts
being completed, each the very write that is stored now (same write ids) in this very data
file; else it reads the bytes as before. A part written again after the frontier passed it
(a retry), a process restarted in the middle (its running hash is gone: it starts again from
the first part), a digest file from another run: each makes the digest not match, never
wrong. The hashing holds a shared lock on the data file, as part writers do, so a completion
waits for a frontier being advanced and then finds its result; a part's PUT is answered once
the frontier has passed over it, so the last part's answer comes with the whole digest.

Private to :mod:`server.integrations.localstore`.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from server.integrations.localstore_disk import (
    DATA_FILE,
    hash_stretch,
    read_json,
    shared_lock,
    write_json_atomic,
)
from server.integrations.storage import StorageError, UploadNotFound

__all__ = [
    "DIGEST_FILE",
    "MAX_RUNNING",
    "PartFollower",
    "PrefixDigests",
    "StretchPart",
    "known_sha256",
]

DIGEST_FILE = "digest.json"
MAX_RUNNING = 256
"""Uploads whose running hash a process keeps (the least recently advanced is dropped: its
completion then reads the bytes)."""


class StretchPart(NamedTuple):
    """A part written in place: where it lies in the data file and which write put it there."""

    number: int
    offset: int
    size: int
    write: str | None
    """The random id of the write that stored it (None: a sidecar from before write ids)."""


def parts_digest(parts: Sequence[tuple[int, str | None]]) -> str:
    """A digest of ``(part number, write id)`` pairs, in order (a constant-size record of
    exactly which writes the running hash read)."""
    digest = hashlib.sha256()
    for number, write in parts:
        digest.update(f"{number}:{write}\n".encode())
    return digest.hexdigest()


class _Pending(NamedTuple):
    """A part being hashed as it is written: the running hash's bytes past ``offset`` are its
    writer's, not yet known to be stored."""

    number: int
    offset: int
    write: str
    before: hashlib._Hash
    """The running hash as it was at ``offset`` (taken back to if the write stops short)."""


class _Running:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset(None)

    def reset(self, inode: int | None) -> None:
        self.inode = inode
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.parts: list[tuple[int, str | None]] = []
        self.pending: _Pending | None = None

    def of_file(self, inode: int) -> None:
        """Start again if the data file is another (a running hash is for one file only)."""
        if self.inode != inode:
            self.reset(inode)

    def take_back(self) -> None:
        """Drop the pending part's bytes: the frontier stands at its start again."""
        assert self.pending is not None
        self.sha256, self.size = self.pending.before, self.pending.offset
        self.pending = None


class PartFollower:
    """Feeds the running hash the batches of one in-place part write while the frontier
    stands where they begin (see the module's doc). Called by the part writer with the data
    file locked; never raises for the digest's sake (it is an optimisation)."""

    def __init__(self, running: _Running, number: int, offset: int, write: str) -> None:
        self._running = running
        self._number = number
        self._offset = offset
        self._write = write

    def wrote(self, fd: int, before: int, batch: bytes | bytearray) -> None:
        """``batch`` was written at ``offset + before`` (``before``: this write's bytes so
        far, all its own, in order)."""
        running = self._running
        with running.lock:
            if running.inode != os.fstat(fd).st_ino:
                return
            start = self._offset + before
            pending = running.pending
            if pending is None and running.size == self._offset:
                running.pending = _Pending(
                    self._number, self._offset, self._write, running.sha256.copy()
                )
                if before:  # the frontier reached this part in the middle: catch up
                    try:
                        hash_stretch(fd, self._offset, before, running.sha256)
                    except (StorageError, OSError):
                        running.take_back()
                        return
                    running.size += before
            elif pending is None or pending.write != self._write or running.size != start:
                return
            running.sha256.update(batch)
            running.size += len(batch)

    def stopped(self) -> None:
        """The write ended without being stored: its bytes come back out of the hash."""
        running = self._running
        with running.lock:
            if running.pending is not None and running.pending.write == self._write:
                running.take_back()


class PrefixDigests:
    """The running hashes of the uploads this process is storing parts for."""

    def __init__(self, max_running: int = MAX_RUNNING) -> None:
        self._running: OrderedDict[str, _Running] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_running

    def follower(
        self, upload_dir: Path, inode: int, number: int, offset: int, write: str
    ) -> PartFollower:
        """What a part writer feeds as it writes (its data file has inode ``inode``)."""
        running = self._get(upload_dir.name)
        with running.lock:
            running.of_file(inode)
        return PartFollower(running, number, offset, write)

    def advance(
        self,
        upload_dir: Path,
        part_size: int,
        find_part: Callable[[int, os.stat_result], StretchPart | None],
    ) -> None:
        """Hash the data file onward over the parts now stored one after the other from the
        frontier, and record the result in ``digest.json``. ``find_part(number, data_stat)``:
        the stored part of that number, if its sidecar describes this data file. Never
        raises for a state of the upload (gone, being completed): it simply stops."""
        running = self._get(upload_dir.name)
        with running.lock:
            try:
                fd = os.open(upload_dir / DATA_FILE, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:  # completed or aborted
                self._drop(upload_dir.name)
                return
            try:
                with shared_lock(fd, upload_dir / DATA_FILE):
                    self._advance_locked(running, upload_dir, fd, part_size, find_part)
            except UploadNotFound:  # being completed (it reads the bytes itself), or done
                return
            finally:
                os.close(fd)

    def _advance_locked(
        self,
        running: _Running,
        upload_dir: Path,
        fd: int,
        part_size: int,
        find_part: Callable[[int, os.stat_result], StretchPart | None],
    ) -> None:
        data = os.fstat(fd)
        running.of_file(data.st_ino)
        moved = False
        pending = running.pending
        if pending is not None:
            part = find_part(pending.number, data)
            if part is None:  # still being written (or stopped without its writer knowing)
                return
            if part.write == pending.write and running.size == part.offset + part.size:
                running.parts.append((part.number, part.write))
                moved = True
                running.pending = None
            else:  # stored by another write: hashed again below
                running.take_back()
        while running.size % part_size == 0:  # a short part is the last
            number = running.size // part_size + 1
            part = find_part(number, data)
            if part is None or part.offset != running.size or part.size == 0:
                break
            hash_stretch(fd, part.offset, part.size, running.sha256)
            running.size += part.size
            running.parts.append((number, part.write))
            moved = True
        if moved:
            write_json_atomic(
                upload_dir / DIGEST_FILE,
                {
                    "sha256": running.sha256.hexdigest(),
                    "size": running.size,
                    "inode": data.st_ino,
                    "parts": parts_digest(running.parts),
                },
                make_parent=False,
            )

    def _get(self, upload_id: str) -> _Running:
        with self._lock:
            running = self._running.get(upload_id)
            if running is None:
                running = self._running[upload_id] = _Running()
                while len(self._running) > self._max:
                    self._running.popitem(last=False)
            self._running.move_to_end(upload_id)
            return running

    def _drop(self, upload_id: str) -> None:
        with self._lock:
            self._running.pop(upload_id, None)


def known_sha256(
    upload_dir: Path, data: os.stat_result, parts: Sequence[StretchPart]
) -> str | None:
    """The SHA-256 of ``parts`` (the whole object, in order) as the local store process
    recorded it, if its record covers exactly these writes in this data file; else None."""
    record = read_json(upload_dir / DIGEST_FILE)
    if record is None or any(p.write is None for p in parts):
        return None
    writes = parts_digest([(p.number, p.write) for p in parts])
    covered = (data.st_ino, sum(p.size for p in parts), writes)
    if (record.get("inode"), record.get("size"), record.get("parts")) != covered:
        return None
    sha256 = record.get("sha256")
    return sha256 if isinstance(sha256, str) and len(sha256) == 64 else None
