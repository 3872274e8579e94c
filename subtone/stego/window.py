"""The window geometry of format v1, with no compiled code: what the client, the layout and
the kernel agree on (see :mod:`subtone.stego.kernel` for the format itself)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "DENSE_K",
    "KEY_BYTES",
    "MAX_K",
    "WINDOW_BITS",
    "WINDOW_BYTES",
    "WINDOW_SAMPLES",
    "FlipMap",
    "Flips",
    "Int32Array",
    "Int64Array",
    "UInt8Array",
    "UInt32Array",
    "UInt64Array",
    "block_size",
    "flip_count",
    "flip_indices",
    "key_array",
    "plane_bytes",
]

WINDOW_BITS: Final = 18
WINDOW_SAMPLES: Final = 1 << WINDOW_BITS
"""Samples in a full window (256 Ki samples: 512 KiB of 16-bit audio)."""
WINDOW_BYTES: Final = WINDOW_SAMPLES // 8
"""Bytes of a full window's packed LSB plane (32 KiB)."""

KEY_BYTES: Final = 32
MAX_K: Final = 16
"""Largest Hamming parameter: blocks of 65,535 samples carrying 16 bits."""

Int32Array = npt.NDArray[np.int32]
Int64Array = npt.NDArray[np.int64]
UInt8Array = npt.NDArray[np.uint8]
UInt32Array = npt.NDArray[np.uint32]
UInt64Array = npt.NDArray[np.uint64]


def block_size(k: int) -> int:
    """Samples per Hamming block for parameter ``k``."""
    return (1 << k) - 1


def key_array(key: bytes) -> UInt8Array:
    """A 32-byte window key as the uint8 array the kernel takes."""
    if len(key) != KEY_BYTES:
        raise ValueError(f"a window key has {KEY_BYTES} bytes, got {len(key)}")
    return np.frombuffer(bytes(key), dtype=np.uint8)


def plane_bytes(length: int) -> int:
    """Bytes of the packed LSB plane of ``length`` samples."""
    return (length + 7) // 8


DENSE_K = 2
"""Windows coded with ``k`` up to this flip a quarter of their samples or more: their flips
as a bitmap (a bit a sample) are smaller than as indices (32 bits each), and the bitmap is
what a patch keeps of them (:class:`subtone.stego.patch.PatchWriter`)."""


@dataclass(frozen=True, eq=False)
class FlipMap:
    """One window's flips as a bitmap: bit ``i`` (packed ``bitorder="little"``, as the LSB
    plane) is set where sample ``i`` flips. What an engine may answer for a dense window
    (:data:`DENSE_K`) instead of the indices: the kernel's own form, passed on as it is."""

    bits: UInt8Array
    """``plane_bytes(length)`` bytes; bits past the window's length are 0."""
    count: int
    """How many bits are set."""

    def indices(self) -> Int32Array:
        """The flipped samples' window-relative indices, ascending."""
        flags = np.unpackbits(np.asarray(self.bits, dtype=np.uint8), bitorder="little")
        return np.flatnonzero(flags).astype(np.int32)


Flips = Int32Array | FlipMap
"""A window's flips: indices (ascending), or a :class:`FlipMap`."""


def flip_indices(flips: Flips) -> Int32Array:
    """``flips`` as ascending window-relative indices."""
    return flips.indices() if isinstance(flips, FlipMap) else flips


def flip_count(flips: Flips) -> int:
    """How many samples ``flips`` flips."""
    return flips.count if isinstance(flips, FlipMap) else int(flips.size)
