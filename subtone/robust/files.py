"""Robust mode on files: read any format soundfile reads, write the cover's own format."""

from __future__ import annotations

import os

import numpy as np
import soundfile as sf

from subtone.files import atomic_output
from subtone.robust.core import RobustError, embed, extract

__all__ = ["embed_file", "extract_file"]

_DTYPES = {"PCM_16": "int16", "PCM_32": "int32", "PCM_24": "int32", "PCM_U8": "int16"}


def embed_file(
    cover: str | os.PathLike[str],
    out: str | os.PathLike[str],
    k_pos: bytes,
    payload: bytes,
) -> None:
    """Mark ``cover`` into ``out`` (same container, subtype and rate), written atomically."""
    try:
        info = sf.info(str(cover))
    except (sf.LibsndfileError, RuntimeError) as e:
        raise RobustError(f"cannot read the cover: {e}", code="bad_cover") from e
    dtype = _DTYPES.get(info.subtype, "float64")
    data, rate = sf.read(str(cover), dtype=dtype, always_2d=False)
    marked = embed(data, rate, k_pos, payload)
    with atomic_output(out) as f:
        sf.write(f, np.asarray(marked), rate, subtype=info.subtype, format=info.format)


def extract_file(path: str | os.PathLike[str], k_pos: bytes) -> bytes:
    """The payload of a marked file (WAV, FLAC, OGG/Opus, MP3: whatever soundfile reads)."""
    try:
        data, rate = sf.read(str(path), dtype="float64", always_2d=False)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise RobustError(f"cannot read the file: {e}", code="bad_file") from e
    return extract(data, rate, k_pos)
