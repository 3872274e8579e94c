"""LSB planes for tests that need a long job: the server reads planes, so a job over a
large cover needs only the plane (random bits), not the audio."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from subtone.stego import codec, patch, plane
from subtone.stego.engine import InProcessEngine


def random_plane(path: Path, samples: int, *, seed: int = 0) -> Path:
    """The LSB plane of a 16-bit cover of ``samples`` samples (random bits)."""
    rng = np.random.default_rng(seed)
    with path.open("wb") as f:
        f.write(plane.PlaneHeader(samples=samples, bits_per_sample=16).pack())
        left = plane.plane_bytes(samples) - plane.HEADER.size
        while left:
            chunk = min(left, 8 << 20)
            f.write(rng.integers(0, 256, chunk, dtype="uint8").tobytes())
            left -= chunk
    return path


def expected_patch(lsb: Path, k_pos: bytes, payload: bytes) -> bytes:
    """The patch an embed job must return for this plane, computed here in-process."""
    with lsb.open("rb") as src:
        header = plane.read_plane_header(src, os.path.getsize(lsb))
        out = io.BytesIO()
        writer = patch.PatchWriter(out, header.samples)
        codec.embed_plane(
            src, samples=header.samples, k_pos=k_pos, payload=payload,
            engine=InProcessEngine(), on_window_flips=writer.window,
        )  # fmt: skip
        writer.close()
    return out.getvalue()
