"""What the holder of the audio does with a window's flips: ±1 with a keyed sign, on int32
samples or on PCM bytes, and the bit-packing helpers (the LSB plane of PCM bytes, bit copies).

Private: the public names are re-exported by :mod:`subtone.stego.kernel`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import numpy.typing as npt

from subtone.stego._kernel_core import (
    WINDOW_SAMPLES,
    Int32Array,
    UInt8Array,
    jit,
    key_array,
    mix,
)

_ONE = np.uint64(1)


def sample_range(bits_per_sample: int) -> tuple[int, int]:
    """The smallest and largest sample value of signed PCM with this many bits."""
    top = 1 << (bits_per_sample - 1)
    return -top, top - 1


@jit
def _signs(sign_key: np.uint64, where: Int32Array) -> Int32Array:
    out = np.empty(where.size, dtype=np.int32)
    for i in range(where.size):
        out[i] = np.int32(mix(np.uint64(where[i]) ^ sign_key) & _ONE) * 2 - 1
    return out


@jit
def _moved(v: np.int64, p: np.int64, sign_key: np.uint64, lo: int, hi: int) -> np.int64:
    """Sample value ``v`` at window index ``p`` after its flip: inwards at full scale, else by
    the keyed sign."""
    if v >= hi:
        return v - 1
    if v <= lo:
        return v + 1
    return v + np.int64(mix(np.uint64(p) ^ sign_key) & _ONE) * 2 - 1


@jit
def _apply_int32(
    samples: Int32Array, sign_key: np.uint64, where: Int32Array, lo: int, hi: int
) -> None:
    for i in range(where.size):
        p = where[i]
        samples[p] = _moved(np.int64(samples[p]), np.int64(p), sign_key, lo, hi)


@jit
def _apply_at(values: Int32Array, sign_key: np.uint64, where: Int32Array, lo: int, hi: int) -> None:
    for i in range(where.size):
        values[i] = _moved(np.int64(values[i]), np.int64(where[i]), sign_key, lo, hi)


@jit
def _apply_pcm(
    data: UInt8Array, width: int, sign_key: np.uint64, where: Int32Array, lo: int, hi: int
) -> None:
    for i in range(where.size):
        p = where[i]
        at = p * width
        u = np.int64(0)
        for b in range(width):
            u |= np.int64(data[at + b]) << (8 * b)
        top = 1 << (8 * width - 1)
        v = _moved(u - 2 * top if u >= top else u, np.int64(p), sign_key, lo, hi)
        for b in range(width):
            data[at + b] = np.uint8((v >> (8 * b)) & 0xFF)


@jit
def _pack_lsb(data: UInt8Array, width: int, count: int, out: UInt8Array) -> None:
    full = count >> 3
    for i in range(full):
        at = i * 8 * width
        byte = 0
        for b in range(8):
            byte |= (data[at + b * width] & 1) << b
        out[i] = byte
    if count & 7:
        at = full * 8 * width
        byte = 0
        for b in range(count & 7):
            byte |= (data[at + b * width] & 1) << b
        out[full] = byte


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


def sign_key(key: bytes) -> np.uint64:
    """The 64-bit key of a window's ±1 signs."""
    digest = hashlib.blake2b(key_array(key).tobytes(), digest_size=8, person=b"subtone-sign")
    return np.uint64(int.from_bytes(digest.digest(), "little"))


def _where(where: npt.NDArray[np.integer[Any]], limit: int) -> Int32Array:
    array = np.ascontiguousarray(np.asarray(where, dtype=np.int32).reshape(-1))
    if array.size and (int(array.min()) < 0 or int(array.max()) >= limit):
        raise ValueError(f"a flip position is outside the window's {limit} samples")
    return array


def signs(key: bytes, where: npt.NDArray[np.integer[Any]]) -> Int32Array:
    """The keyed ±1 each sample ``where`` moves by (unless it is at full scale)."""
    result: Int32Array = _signs(sign_key(key), _where(where, WINDOW_SAMPLES))
    return result


def apply_flips(
    samples: Int32Array, key: bytes, where: npt.NDArray[np.integer[Any]], bits_per_sample: int
) -> None:
    """Flip the LSB of ``samples[where]`` in place by ±1: the keyed sign, except that a
    sample at full scale moves inwards. ``samples`` is one window (int32, contiguous)."""
    if samples.dtype != np.int32 or samples.ndim != 1 or not samples.flags.c_contiguous:
        raise ValueError("samples must be a contiguous one-dimensional int32 array")
    lo, hi = sample_range(bits_per_sample)
    _apply_int32(samples, sign_key(key), _where(where, samples.size), lo, hi)


def apply_flips_at(
    values: Int32Array, key: bytes, where: npt.NDArray[np.integer[Any]], bits_per_sample: int
) -> None:
    """:func:`apply_flips` on gathered samples: ``values[i]`` is the window's sample at index
    ``where[i]`` (what a client reads when it changes a few samples of a large file)."""
    if values.dtype != np.int32 or values.shape != np.shape(where):
        raise ValueError("values must be int32, one for each index in where")
    lo, hi = sample_range(bits_per_sample)
    _apply_at(values, sign_key(key), _where(where, WINDOW_SAMPLES), lo, hi)


def apply_flips_pcm(
    data: UInt8Array | bytearray,
    key: bytes,
    where: npt.NDArray[np.integer[Any]],
    bits_per_sample: int,
) -> None:
    """:func:`apply_flips` on one window's little-endian PCM bytes, in place."""
    width = bits_per_sample // 8
    if bits_per_sample not in (16, 24, 32):
        raise ValueError(f"bits_per_sample must be 16, 24 or 32, got {bits_per_sample}")
    array = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytearray) else data
    if array.dtype != np.uint8 or array.ndim != 1 or not array.flags.writeable:
        raise ValueError("data must be a writable one-dimensional uint8 buffer")
    lo, hi = sample_range(bits_per_sample)
    _apply_pcm(array, width, sign_key(key), _where(where, array.size // width), lo, hi)


def pack_lsb(data: bytes | bytearray | UInt8Array, bits_per_sample: int) -> UInt8Array:
    """The packed LSB plane (``bitorder="little"``) of little-endian PCM bytes."""
    width = bits_per_sample // 8
    if bits_per_sample not in (16, 24, 32):
        raise ValueError(f"bits_per_sample must be 16, 24 or 32, got {bits_per_sample}")
    array = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    if array.size % width:
        raise ValueError(f"{array.size} bytes are not whole {bits_per_sample}-bit samples")
    count = array.size // width
    out = np.empty((count + 7) // 8, dtype=np.uint8)
    _pack_lsb(np.ascontiguousarray(array), width, count, out)
    return out


def copy_bits(dst: UInt8Array, dst_start: int, src: UInt8Array, src_start: int, n: int) -> None:
    """Copy ``n`` bits (packed most significant first) from ``src`` to ``dst``, in place."""
    if n < 0 or dst_start < 0 or src_start < 0:
        raise ValueError("negative bit count or offset")
    if dst_start + n > dst.size * 8 or src_start + n > src.size * 8:
        raise ValueError("bits run past the buffer")
    if n:
        _copy_bits(dst, dst_start, src, src_start, n)
