"""The compiled bit copy the plane codec uses to cut a window's bits out of a packed payload.

Private: re-exported by :mod:`subtone.stego.kernel`. What the holder of the audio does (the
LSB plane, the keyed ±1) is numpy only, in :mod:`subtone.stego.pcm`.
"""

from __future__ import annotations

import numpy as np

from subtone.stego._kernel_core import jit
from subtone.stego.window import UInt8Array


@jit
def _copy_bits(dst: UInt8Array, dst_start: int, src: UInt8Array, src_start: int, n: int) -> None:
    i = 0
    # Bit by bit until the destination is byte-aligned, then a byte at a time.
    while i < n and (dst_start + i) & 7:
        s = src_start + i
        d = dst_start + i
        mask = np.uint8(0x80 >> (d & 7))
        if (src[s >> 3] >> (7 - (s & 7))) & 1:
            dst[d >> 3] |= mask
        else:
            dst[d >> 3] &= ~mask
        i += 1
    shift = (src_start + i) & 7
    while n - i >= 8:
        s = (src_start + i) >> 3
        byte = src[s]
        if shift:
            byte = ((byte << shift) | (src[s + 1] >> (8 - shift))) & 0xFF
        dst[(dst_start + i) >> 3] = byte
        i += 8
    while i < n:
        s = src_start + i
        d = dst_start + i
        mask = np.uint8(0x80 >> (d & 7))
        if (src[s >> 3] >> (7 - (s & 7))) & 1:
            dst[d >> 3] |= mask
        else:
            dst[d >> 3] &= ~mask
        i += 1


def copy_bits(dst: UInt8Array, dst_start: int, src: UInt8Array, src_start: int, n: int) -> None:
    """Copy ``n`` bits (packed most significant first) from ``src`` to ``dst``, in place."""
    if n < 0 or dst_start < 0 or src_start < 0:
        raise ValueError("negative bit count or offset")
    if dst_start + n > dst.size * 8 or src_start + n > src.size * 8:
        raise ValueError("bits run past the buffer")
    if n:
        _copy_bits(dst, dst_start, src, src_start, n)
