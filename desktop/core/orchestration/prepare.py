"""The local half of a task: check, seal and queue it; nothing is sent yet (Qt-free).

:func:`prepare_encode` / :func:`prepare_decode` need the passphrase: they check the cover's
capacity, seal the secret into a file (encode) or derive ``k_pos`` (decode), and add a
``queued`` task that :func:`~desktop.core.orchestration.runner.run_task` carries on. The
passphrase is never written down.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from desktop.core.envelope import (
    POSITION_KDF,
    KdfParams,
    PreparedSecret,
    derive_position_key,
)
from desktop.core.orchestration.progress import Progress, Stage, notify
from desktop.core.orchestration.steps import SealedSecret, decode_mode, seal_secret
from desktop.core.orchestration.store import (
    Task,
    TaskKind,
    TaskMode,
    TaskStatus,
    TaskStore,
    new_task_id,
)
from desktop.core.orchestration.workdir import PRIVATE_FILE_MODE, SEALED_FOLDER, folder
from subtone.errors import SubtoneError
from subtone.files import atomic_output

__all__ = ["prepare_decode", "prepare_encode"]


def _input_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as e:
        raise SubtoneError(f"Cannot read {path.name}: {e.strerror}.", code="unreadable_file") from e


def prepare_encode(
    store: TaskStore,
    work_dir: Path,
    *,
    server: str,
    cover: Path,
    secret: Path,
    passphrase: str,
    task_id: str | None = None,
    prepared: PreparedSecret | None = None,
    compress_audio: bool = True,
    secret_is_recording: bool = False,
    position_kdf: KdfParams = POSITION_KDF,
    progress: Progress | None = None,
    mode: TaskMode = TaskMode.LSB,
) -> Task:
    """Check, compress and seal the secret here; queue the encode. Nothing is sent yet.

    ``mode`` is how the secret is hidden: in the LSB (large, exact) or robust (survives
    re-encoding, about 100 bits per second of cover) mode. Refuses a secret that cannot fit
    in that mode (``capacity_exceeded``) before anything else happens.
    ``prepared`` is the secret as :func:`~desktop.core.envelope.prepare_audio_secret` gave it
    (the Encode screen measures it that way), so it is not compressed twice.
    """
    if mode is TaskMode.AUTO:
        raise ValueError("an encode is in the LSB or the robust mode")
    report = notify(progress, Stage.PREPARE)
    report(0, 1)
    task_id = task_id or new_task_id()
    s = seal_secret(
        cover,
        secret,
        passphrase,
        prepared=prepared,
        compress_audio=compress_audio,
        position_kdf=position_kdf,
        mode=mode,
    )
    sealed_path = folder(work_dir / SEALED_FOLDER) / f"{task_id}.sealed"
    with atomic_output(sealed_path, mode=PRIVATE_FILE_MODE) as f:
        f.write(s.sealed.payload)
    task = store.add(
        _encode_task(
            task_id,
            server=server,
            cover=cover,
            secret=secret,
            sealed=s,
            sealed_path=sealed_path,
            secret_is_recording=secret_is_recording,
            mode=mode,
        )
    )
    report(1, 1)
    return task


def _encode_task(
    task_id: str,
    *,
    server: str,
    cover: Path,
    secret: Path,
    sealed: SealedSecret,
    sealed_path: Path,
    secret_is_recording: bool,
    mode: TaskMode,
) -> Task:
    """The queued encode's row: what :func:`prepare_encode` checked and sealed."""
    return Task(
        id=task_id,
        kind=TaskKind.ENCODE,
        status=TaskStatus.QUEUED,
        server=server,
        input_path=str(cover.resolve()),
        input_bytes=_input_size(cover),
        k_pos=sealed.sealed.k_pos.hex(),
        job_nonce=uuid.uuid4().hex,
        secret_path=str(secret.resolve()),
        secret_name=sealed.secret.name,
        secret_media_type=sealed.secret.media_type,
        secret_bytes=len(sealed.secret.data),
        secret_is_recording=secret_is_recording,
        sealed_path=str(sealed_path),
        payload_bytes=len(sealed.sealed.payload),
        capacity_bytes=sealed.capacity_bytes,
        mode=mode,
    )


def prepare_decode(
    store: TaskStore,
    *,
    server: str,
    stego: Path,
    passphrase: str,
    task_id: str | None = None,
    position_kdf: KdfParams = POSITION_KDF,
    progress: Progress | None = None,
    mode: TaskMode = TaskMode.AUTO,
) -> Task:
    """Derive ``k_pos`` and queue the extraction. A file that cannot be read, a wrong
    passphrase or a file with nothing hidden is refused here, before anything is sent.

    ``mode``: ``AUTO`` finds whether the file holds an LSB or a robust message under the
    passphrase (:func:`~desktop.core.orchestration.steps.decode_mode`); ``LSB`` or
    ``ROBUST`` looks for that one only."""
    report = notify(progress, Stage.PREPARE)
    report(0, 1)
    k_pos = derive_position_key(passphrase, position_kdf=position_kdf)
    found, capacity_bytes = decode_mode(stego, k_pos, mode)
    task = store.add(
        Task(
            id=task_id or new_task_id(),
            kind=TaskKind.DECODE,
            status=TaskStatus.QUEUED,
            server=server,
            input_path=str(stego.resolve()),
            input_bytes=_input_size(stego),
            k_pos=k_pos.hex(),
            job_nonce=uuid.uuid4().hex,
            capacity_bytes=capacity_bytes,
            mode=found,
        )
    )
    report(1, 1)
    return task
