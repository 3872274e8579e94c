"""Encode and decode in one call, to a file the caller names: what the CLI runs.

The same tasks as the app's (:mod:`desktop.core.orchestration.runner`), over a throwaway task
store in a temporary folder: the run is not resumed as a task, but the upload of the cover is,
by the uploader's own session store, when the same command runs again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from filelock import FileLock, Timeout

from desktop.core.api import ApiClient
from desktop.core.envelope import POSITION_KDF, KdfParams
from desktop.core.orchestration.prepare import prepare_decode, prepare_encode
from desktop.core.orchestration.progress import Progress
from desktop.core.orchestration.runner import Runtime, run_task
from desktop.core.orchestration.steps import read_cover
from desktop.core.orchestration.store import Task, TaskMode, TaskStatus, TaskStore
from desktop.core.orchestration.transfer import (
    MIX_SUFFIX,
    PLANE_SUFFIX,
    InputSlot,
    read_ahead,
    start_stego,
)
from desktop.core.orchestration.workdir import folder
from desktop.core.stop import StopReason, StopToken
from desktop.core.uploader import UploadCancelled, Uploader, UploadResult
from subtone.errors import SubtoneError
from subtone.protocol import ObjectRef
from subtone.stego.layout import choose_k

__all__ = ["DecodeSummary", "EncodeSummary", "decode", "encode"]

MAX_UNIQUE_NAME_TRIES: Final = 1000
_STORE_NAME: Final = "tasks.sqlite3"


@dataclass(frozen=True)
class EncodeSummary:
    output: Path
    output_bytes: int
    cover: ObjectRef
    cover_reused: bool
    """The cover was already on the server: nothing was uploaded for it."""
    cover_resumed: bool
    """An interrupted upload of the cover was continued."""
    cover_parts_sent: int
    cover_parts_total: int
    secret_name: str
    """The name stored inside the sealed payload (local only, never sent)."""
    secret_media_type: str
    secret_bytes: int
    payload_bytes: int
    capacity_bytes: int
    k: int | None
    """Hamming parameter: ``k`` payload bits per ``2**k - 1`` cover samples (``None`` in
    robust mode)."""
    job_id: str
    mode: TaskMode = TaskMode.LSB


@dataclass(frozen=True)
class DecodeSummary:
    output: Path
    name: str
    media_type: str
    size: int
    job_id: str
    mode: TaskMode = TaskMode.LSB


def check_output(path: Path, overwrite: bool, *, sources: tuple[Path, ...] = ()) -> Path:
    """``path`` resolved, if a file may be written there; else why not, raised."""
    target = path.expanduser().resolve()
    if not target.parent.is_dir():
        raise SubtoneError(f"The folder {target.parent} does not exist.", code="no_such_folder")
    if target.is_dir():
        raise SubtoneError(f"{target} is a folder; give a file name.", code="output_is_folder")
    if any(target == s.resolve() for s in sources):
        raise SubtoneError("The output would overwrite an input file.", code="output_is_input")
    if target.exists() and not overwrite:
        raise SubtoneError(
            f"{target} already exists; choose another name or allow overwriting.",
            code="output_exists",
        )
    return target


def unique_in(folder: Path, name: str) -> Path:
    """``folder/name``, or ``folder/name (n)`` for the first ``n`` not taken."""
    candidate = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    for n in range(1, MAX_UNIQUE_NAME_TRIES):
        if not candidate.exists():
            return candidate
        candidate = folder / f"{stem} ({n}){suffix}"
    raise SubtoneError(f"Too many files named like {name} in {folder}.", code="output_exists")


PLANES_FOLDER: Final = "planes"
"""Beside the upload sessions: the LSB planes of runs that may be resumed."""
PLANE_MAX_AGE_SECONDS: Final = 7 * 24 * 3600
"""A plane left by a run this long ago is deleted (the server's uploads expire by then)."""


@dataclass(frozen=True)
class _CallerOutputs:
    """The outputs where the caller asked: a file, or (for a secret) a folder."""

    out: Path
    overwrite: bool
    source: Path

    def stego(self, task: Task) -> Path:
        return self.out

    def secret(self, task: Task, name: str) -> Path:
        if self.out.is_dir():
            return unique_in(self.out.resolve(), name)
        return check_output(self.out, self.overwrite, sources=(self.source,))


def _plane_key(source: Path) -> str:
    """Names the plane (or mix) of ``source`` as it is now (path, size, modification time)."""
    stat = source.stat()
    identity = f"{source.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def _forget_old_planes(planes: Path) -> None:
    """Planes of runs given up long ago (their uploads have expired on the server too)."""
    too_old = time.time() - PLANE_MAX_AGE_SECONDS
    for path in (*planes.glob(f"*{PLANE_SUFFIX}"), *planes.glob(f"*{MIX_SUFFIX}")):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < too_old:
                path.unlink()


@contextlib.contextmanager
def _plane_file(uploader: Uploader, source: Path, suffix: str) -> Iterator[Path | None]:
    """Where this run keeps ``source``'s LSB plane (``suffix`` ``.plane``) or working mix
    (``.mix``): beside the upload sessions, named after the file, so that a run killed
    mid-upload is resumed by the next run on the same file.
    Two runs on one file at once never share it: the first holds its lock, the others
    (``None``) keep a plane of their own and upload it separately."""
    sessions = uploader.sessions_path
    if sessions is None:
        yield None
        return
    planes = folder(sessions.parent / PLANES_FOLDER)
    _forget_old_planes(planes)
    key = _plane_key(source)
    lock = FileLock(planes / f"{key}{suffix}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield None
        return
    try:
        yield planes / f"{key}{suffix}"
    finally:
        lock.release()


@contextlib.contextmanager
def _runtime(
    client: ApiClient,
    uploader: Uploader | None,
    outputs: _CallerOutputs,
    mode: TaskMode = TaskMode.LSB,
) -> Iterator[Runtime]:
    """The run's runtime; ``mode`` says what may be derived from the input (the LSB plane,
    the robust working mix, or for ``AUTO`` either)."""
    with contextlib.ExitStack() as stack:
        up = uploader if uploader is not None else stack.enter_context(Uploader(client))
        work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="subtone-")))
        plane_file = mix_file = None
        if mode is not TaskMode.ROBUST:
            plane_file = stack.enter_context(_plane_file(up, outputs.source, PLANE_SUFFIX))
        if mode is not TaskMode.LSB:
            mix_file = stack.enter_context(_plane_file(up, outputs.source, MIX_SUFFIX))
        store = TaskStore(work_dir / _STORE_NAME)
        yield Runtime(client, up, store, work_dir, outputs, plane_file, mix_file)


def _finished(task: Task) -> Task:
    if task.status is not TaskStatus.SUCCEEDED:
        raise UploadCancelled("Cancelled; the server job was cancelled too.")
    return task


def encode(
    client: ApiClient,
    cover_path: str | os.PathLike[str],
    secret_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    passphrase: str,
    *,
    uploader: Uploader | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    compress_audio: bool = True,
    overwrite: bool = False,
    position_kdf: KdfParams = POSITION_KDF,
    mode: TaskMode = TaskMode.LSB,
) -> EncodeSummary:
    """Hide the secret file in the cover WAV and write the result to ``out_path``.

    ``mode``: the LSB mode, or the robust mode (survives re-encoding; about 100 bits per
    second of cover). Audio secrets are compressed to Opus unless ``compress_audio`` is false.
    Refuses early, before any upload, when the sealed secret cannot fit in that mode
    (``capacity_exceeded``). ``uploader``
    should carry a :class:`~desktop.core.sessions.SessionStore` to resume across runs;
    without one, a private uploader without sessions is used.
    """
    cover, secret = Path(cover_path), Path(secret_path)
    target = check_output(Path(out_path), overwrite, sources=(cover, secret))
    uploads: dict[InputSlot, UploadResult] = {}
    with (
        _runtime(client, uploader, _CallerOutputs(target, overwrite, cover), mode) as rt,
        contextlib.ExitStack() as drafts,
    ):
        if mode is TaskMode.LSB:
            # The stego file's copy of the cover, under a temporary name, made while the
            # secret is sealed, the plane sent and the server computes; removed on failure.
            draft = drafts.enter_context(start_stego(cover, target, sync_later=True))
            rt = dataclasses.replace(rt, early_draft=draft)
        ahead = rt.mix_file if mode is TaskMode.ROBUST else rt.plane_file
        with read_ahead(cover, ahead, mode=mode, cover=True, progress=progress) as written:
            task = prepare_encode(
                rt.store,
                rt.work_dir,
                server=client.base_url,
                cover=cover,
                secret=secret,
                passphrase=passphrase,
                compress_audio=compress_audio,
                position_kdf=position_kdf,
                progress=progress,
                mode=mode,
            )
        rt = dataclasses.replace(rt, derived=written.derived)
        stop = StopToken(cancel, unset_reason=StopReason.CANCEL)
        done = _finished(
            run_task(rt, task.id, progress=progress, stop=stop, on_uploaded=uploads.__setitem__)
        )
    return _encode_summary(done, uploads[InputSlot.SOURCE], cover)


def _encode_summary(done: Task, cover_up: UploadResult, cover: Path) -> EncodeSummary:
    assert done.output is not None and done.output_bytes is not None
    assert done.payload_bytes is not None and done.capacity_bytes is not None
    assert done.job_id is not None
    return EncodeSummary(
        output=done.output,
        output_bytes=done.output_bytes,
        cover=cover_up.object,
        cover_reused=cover_up.reused,
        cover_resumed=cover_up.resumed,
        cover_parts_sent=cover_up.parts_sent,
        cover_parts_total=cover_up.parts_total,
        secret_name=done.secret_name or "",
        secret_media_type=done.secret_media_type or "",
        secret_bytes=done.secret_bytes or 0,
        payload_bytes=done.payload_bytes,
        capacity_bytes=done.capacity_bytes,
        k=None if done.mode is TaskMode.ROBUST else _lsb_k(cover, done.payload_bytes),
        job_id=done.job_id,
        mode=done.mode,
    )


def _lsb_k(cover: Path, payload_bytes: int) -> int:
    info, _ = read_cover(cover)
    return choose_k(info.samples, payload_bytes)


def decode(
    client: ApiClient,
    stego_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    passphrase: str,
    *,
    uploader: Uploader | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    overwrite: bool = False,
    position_kdf: KdfParams = POSITION_KDF,
    mode: TaskMode = TaskMode.AUTO,
) -> DecodeSummary:
    """Recover the secret hidden in ``stego_path``.

    ``out`` is a folder (the secret is written there under its own safe name, made unique)
    or a file path. ``mode``: ``AUTO`` finds whether an LSB or a robust message is there
    (a robust one also in a re-encoded copy: OGG/Opus, MP3, FLAC...). Fails with the
    server's code (``no_payload``, ``channel_damaged``...) or ``wrong_passphrase``.
    """
    stego, out = Path(stego_path), Path(out).expanduser()
    if not out.is_dir():
        check_output(out, overwrite, sources=(stego,))
    with _runtime(client, uploader, _CallerOutputs(out, overwrite, stego), mode) as rt:
        # The plane is read while the key is derived; a robust file (found by the probe, or
        # asked for) has no use for it. A file that is no WAV leaves nothing to read ahead.
        ahead = None if mode is TaskMode.ROBUST else rt.plane_file
        with read_ahead(stego, ahead, mode=TaskMode.LSB, cover=False, progress=progress) as written:
            task = prepare_decode(
                rt.store,
                server=client.base_url,
                stego=stego,
                passphrase=passphrase,
                position_kdf=position_kdf,
                progress=progress,
                mode=mode,
            )
        if task.mode is TaskMode.ROBUST and ahead is not None:
            ahead.unlink(missing_ok=True)
        rt = dataclasses.replace(rt, derived=written.derived)
        stop = StopToken(cancel, unset_reason=StopReason.CANCEL)
        done = _finished(run_task(rt, task.id, passphrase=passphrase, progress=progress, stop=stop))
    assert done.output is not None and done.job_id is not None
    return DecodeSummary(
        output=done.output,
        name=done.secret_name or "",
        media_type=done.secret_media_type or "",
        size=done.secret_bytes or 0,
        job_id=done.job_id,
        mode=done.mode,
    )
