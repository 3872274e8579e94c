"""The window geometry of format v1, with no compiled code: what the client, the layout and
the kernel agree on (see :mod:`subtone.stego.kernel` for the format itself)."""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "KEY_BYTES",
    "MAX_K",
    "WINDOW_BITS",
    "WINDOW_BYTES",
    "WINDOW_SAMPLES",
    "Int32Array",
    "Int64Array",
    "UInt8Array",
    "UInt32Array",
    "UInt64Array",
    "block_size",
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
