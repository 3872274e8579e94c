"""The robust-mode jobs' work: read the working mix, check it, ask the engine (Triton).

Robust marking reads the cover's *audio*: the client sends its working mix (16 kHz mono,
:mod:`subtone.robust.wire`), the worker reads it whole (one cover is one Triton request; at
most ``MAX_ROBUST_SECONDS`` of cover, so memory stays bounded), checks its size, its format and
the capacity before the engine sees it, and hands the engine's answer back to the runner, which
stores it (:mod:`server.jobs.runner`). A robust embed's result is the residual the client adds
to its own cover; an extract's is the sealed payload, or ``no_payload`` / ``channel_damaged``.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Final

from server.integrations.storage import ObjectStore
from server.jobs.inputs import InputError, InputStream, check_secret_size, load_input, read_small
from server.jobs.progress import JobProgress
from server.jobs.repository import JobRecord
from server.settings import Settings
from server.uploads.repository import ObjectRecord, UploadRepository
from subtone.errors import SubtoneError
from subtone.robust import wire
from subtone.robust.core import RATE, CapacityExceeded, Mix, mix_capacity
from subtone.robust.engine import RobustEngine

__all__ = ["MIX", "PAYLOAD", "RobustOutput", "robust_embed", "robust_extract"]

log = logging.getLogger(__name__)

MIX: Final = "mix"
PAYLOAD: Final = "payload"
COVER_TOO_LONG: Final = "cover_too_long"
READ_FRACTION: Final = 0.05
"""The job's progress once its input is read (the rest is the engine's one call)."""
DONE_FRACTION: Final = 0.95


@dataclass(frozen=True, eq=False)
class RobustOutput:
    """What a robust job made, for the runner to store."""

    data: bytes
    media_type: str
    source: ObjectRecord
    """The input the result is named after (the mix)."""
    read: int
    """Bytes of input read."""


def _read_mix(
    record: JobRecord, uploads: UploadRepository, store: ObjectStore, settings: Settings
) -> tuple[ObjectRecord, Mix]:
    """The job's mix object (checked: its header, its size, its length, its checksum) and
    its samples, read straight into their array (one copy of the mix in this process)."""
    mix = load_input(record, MIX, uploads, store)
    with InputStream(store, mix, MIX) as source:
        samples = wire.read_mix_header(source.stream, mix.size)
        seconds = samples / RATE
        if seconds > settings.MAX_ROBUST_SECONDS:
            raise InputError(
                f"The cover lasts {seconds / 60:.0f} min; robust mode takes covers of at most "
                f"{settings.MAX_ROBUST_SECONDS / 60:.0f} min on this server. Use a shorter cover "
                "(robust mode carries about 100 bits per second: a few minutes hold a short "
                "message).",
                code=COVER_TOO_LONG,
            )
        values = wire.read_mix_samples(source.stream, samples)
        source.verify()
    return mix, values


def robust_embed(
    record: JobRecord,
    k_pos: bytes,
    *,
    engine: RobustEngine,
    uploads: UploadRepository,
    store: ObjectStore,
    settings: Settings,
    progress: JobProgress,
) -> RobustOutput:
    """Mark the job's sealed payload into its mix; the result is the residual."""
    secret = load_input(record, PAYLOAD, uploads, store)
    check_secret_size(secret, PAYLOAD, settings.MAX_SECRET_BYTES)
    mix, values = _read_mix(record, uploads, store, settings)
    room = mix_capacity(len(values))
    if secret.size > room:  # before the engine is asked
        raise CapacityExceeded(
            f"The sealed secret has {secret.size:,} bytes; in robust mode this cover holds "
            f"{room:,}."
        )
    payload = read_small(store, secret, PAYLOAD, settings.MAX_SECRET_BYTES)
    progress(READ_FRACTION)
    residual = engine.robust_embed(values, k_pos, payload)
    progress(DONE_FRACTION)
    out = io.BytesIO()
    wire.write_residual(out, residual)
    return RobustOutput(out.getvalue(), wire.RESIDUAL_MEDIA_TYPE, mix, mix.size + secret.size)


def robust_extract(
    record: JobRecord,
    k_pos: bytes,
    *,
    engine: RobustEngine,
    uploads: UploadRepository,
    store: ObjectStore,
    settings: Settings,
    progress: JobProgress,
) -> RobustOutput:
    """Read the payload marked in the job's mix (``no_payload``, ``channel_damaged``)."""
    mix, values = _read_mix(record, uploads, store, settings)
    progress(READ_FRACTION)
    payload = engine.robust_extract(values, k_pos)
    if len(payload) > settings.MAX_SECRET_BYTES:  # never: the header caps it
        raise SubtoneError("The payload found is larger than this server allows.")
    progress(DONE_FRACTION)
    return RobustOutput(payload, "application/octet-stream", mix, mix.size)
