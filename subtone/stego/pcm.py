"""What the holder of the audio does, in numpy alone (no numba, no compiled code): the LSB plane
of PCM bytes, the keyed ±1 that moves a sample the kernel names, and the first keyed positions
of a window (enough to read the payload header of window 0).

The client needs nothing else of the codec, so it never loads numba and LLVM (about 100 MB of
memory and most of a second at start-up). The in-process engine and the Triton models use
these same functions for the same steps; the compiled kernel (:mod:`subtone.stego.kernel`)
keeps the loops that walk whole windows (positions, syndromes).

The rules are format v1 (see :mod:`subtone.stego.kernel`): positions are a 4-round Feistel
permutation on 18-bit indices with round tables built by SplitMix64's finaliser; a moved sample
goes by the sign ``mix(index ^ sign_key) & 1`` (1: up, 0: down), except that a sample at full
scale moves inwards.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import numpy.typing as npt

from subtone.stego.window import (
    WINDOW_BITS,
    WINDOW_SAMPLES,
    Int32Array,
    Int64Array,
    UInt8Array,
    UInt32Array,
    UInt64Array,
    key_array,
)

__all__ = [
    "apply_flips",
    "apply_flips_across",
    "apply_flips_at",
    "apply_flips_pcm",
    "apply_flips_pcm_across",
    "first_positions",
    "mix",
    "pack_lsb",
    "round_tables",
    "sample_range",
    "sign_key",
    "signs",
]

_HALF_BITS = WINDOW_BITS // 2
_HALF = 1 << _HALF_BITS
_HALF_MASK = _HALF - 1
ROUNDS = 4
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_WIDTHS = {16: 2, 24: 3, 32: 4}


def mix(x: UInt64Array) -> UInt64Array:
    """SplitMix64's finaliser, element-wise (wrapping uint64 arithmetic)."""
    x = np.asarray(x, dtype=np.uint64).reshape(-1)
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    result: UInt64Array = x ^ (x >> np.uint64(31))
    return result


def round_tables(key: bytes) -> UInt32Array:
    """The Feistel round functions of a window key as lookup tables over a half-index:
    :data:`ROUNDS` tables of 512 entries, one after the other."""
    raw = key_array(key)
    halves = np.arange(_HALF, dtype=np.uint64) + _GOLDEN
    tables = np.empty(ROUNDS * _HALF, dtype=np.uint32)
    for r in range(ROUNDS):
        sub = np.uint64(int.from_bytes(raw[r * 8 : r * 8 + 8].tobytes(), "little"))
        tables[r * _HALF : (r + 1) * _HALF] = mix(halves ^ sub) & np.uint64(_HALF_MASK)
    return tables


def _permute(t: UInt32Array, idx: UInt32Array) -> UInt32Array:
    left = idx >> np.uint32(_HALF_BITS)
    right = idx & np.uint32(_HALF_MASK)
    left = left ^ t[right]
    right = right ^ t[_HALF + left]
    left = left ^ t[2 * _HALF + right]
    right = right ^ t[3 * _HALF + left]
    result: UInt32Array = (left << np.uint32(_HALF_BITS)) | right
    return result


def first_positions(key: bytes, length: int, count: int) -> Int32Array:
    """The first ``count`` keyed positions of a window of ``length`` samples."""
    if not 0 < length <= WINDOW_SAMPLES:
        raise ValueError(f"window length must be in 1..{WINDOW_SAMPLES}, got {length}")
    if not 0 <= count <= length:
        raise ValueError(f"cannot take {count} positions of a window of {length}")
    t = round_tables(key)
    found: list[npt.NDArray[np.uint32]] = [np.zeros(0, dtype=np.uint32)]
    got = start = 0
    chunk = max(1024, 2 * count)
    while got < count:
        stop = min(start + chunk, WINDOW_SAMPLES)
        images = _permute(t, np.arange(start, stop, dtype=np.uint32))
        kept = images[images < length]
        found.append(kept)
        got += kept.size
        start = stop
    return np.concatenate(found)[:count].astype(np.int32)


def sample_range(bits_per_sample: int) -> tuple[int, int]:
    """The smallest and largest sample value of signed PCM with this many bits."""
    top = 1 << (bits_per_sample - 1)
    return -top, top - 1


def sign_key(key: bytes) -> np.uint64:
    """The 64-bit key of a window's ±1 signs."""
    digest = hashlib.blake2b(key_array(key).tobytes(), digest_size=8, person=b"subtone-sign")
    return np.uint64(int.from_bytes(digest.digest(), "little"))


def _where(where: npt.NDArray[np.integer[Any]], limit: int) -> Int64Array:
    array = np.asarray(where, dtype=np.int64).reshape(-1)
    if array.size and (int(array.min()) < 0 or int(array.max()) >= limit):
        raise ValueError(f"a flip position is outside the window's {limit} samples")
    return array


def _steps(key: bytes, where: Int64Array) -> Int64Array:
    return _keyed_steps(sign_key(key), where)


def _keyed_steps(keys: np.uint64 | UInt64Array, where: Int64Array) -> Int64Array:
    """The ±1 of each sample ``where`` under its window's sign key (one, or one per sample)."""
    up = mix(where.astype(np.uint64) ^ keys) & np.uint64(1)
    result: Int64Array = up.astype(np.int64) * 2 - 1
    return result


def signs(key: bytes, where: npt.NDArray[np.integer[Any]]) -> Int32Array:
    """The keyed ±1 each sample ``where`` moves by (unless it is at full scale)."""
    return _steps(key, _where(where, WINDOW_SAMPLES)).astype(np.int32)


def _moved(values: Int64Array, where: Int64Array, key: bytes, bits_per_sample: int) -> Int64Array:
    """The samples ``values`` (at window indices ``where``) after their flips."""
    return _moved_keyed(values, _steps(key, where), bits_per_sample)


def _moved_keyed(values: Int64Array, steps: Int64Array, bits_per_sample: int) -> Int64Array:
    lo, hi = sample_range(bits_per_sample)
    keyed = values + steps
    result: Int64Array = np.where(
        values >= hi, values - 1, np.where(values <= lo, values + 1, keyed)
    )
    return result


def apply_flips(
    samples: Int32Array, key: bytes, where: npt.NDArray[np.integer[Any]], bits_per_sample: int
) -> None:
    """Flip the LSB of ``samples[where]`` in place by ±1: the keyed sign, except that a
    sample at full scale moves inwards. ``samples`` is one window (int32); ``where`` holds
    distinct indices (the kernel never names a sample twice)."""
    if samples.dtype != np.int32 or samples.ndim != 1:
        raise ValueError("samples must be a one-dimensional int32 array")
    at = _where(where, samples.size)
    samples[at] = _moved(samples[at].astype(np.int64), at, key, bits_per_sample)


def apply_flips_at(
    values: Int32Array, key: bytes, where: npt.NDArray[np.integer[Any]], bits_per_sample: int
) -> None:
    """:func:`apply_flips` on gathered samples: ``values[i]`` is the window's sample at index
    ``where[i]`` (what a client reads when it changes a few samples of a large file)."""
    if values.dtype != np.int32 or values.shape != np.shape(where):
        raise ValueError("values must be int32, one for each index in where")
    at = _where(where, WINDOW_SAMPLES)
    values[...] = _moved(values.astype(np.int64).reshape(-1), at, key, bits_per_sample).reshape(
        values.shape
    )


def apply_flips_across(
    values: Int32Array,
    sign_keys: UInt64Array,
    where: npt.NDArray[np.integer[Any]],
    bits_per_sample: int,
) -> None:
    """:func:`apply_flips_at` for flips of many windows at once: ``values[i]`` is the sample
    at index ``where[i]`` of a window whose sign key (:func:`sign_key`) is ``sign_keys[i]``."""
    if values.dtype != np.int32 or not values.shape == np.shape(where) == np.shape(sign_keys):
        raise ValueError("values must be int32, one for each index in where and each key")
    at = _where(where, WINDOW_SAMPLES)
    steps = _keyed_steps(np.asarray(sign_keys, dtype=np.uint64).reshape(-1), at)
    values[...] = _moved_keyed(values.astype(np.int64).reshape(-1), steps, bits_per_sample)


def _width(bits_per_sample: int) -> int:
    width = _WIDTHS.get(bits_per_sample)
    if width is None:
        raise ValueError(f"bits_per_sample must be 16, 24 or 32, got {bits_per_sample}")
    return width


def apply_flips_pcm(
    data: UInt8Array | bytearray,
    key: bytes,
    where: npt.NDArray[np.integer[Any]],
    bits_per_sample: int,
) -> None:
    """:func:`apply_flips` on one window's little-endian PCM bytes, in place."""
    at = np.asarray(where, dtype=np.int64).reshape(-1)
    apply_flips_pcm_across(data, sign_key(key), at, at, bits_per_sample)


def apply_flips_pcm_across(
    data: UInt8Array | bytearray,
    sign_keys: np.uint64 | UInt64Array,
    where: npt.NDArray[np.integer[Any]],
    at: npt.NDArray[np.integer[Any]],
    bits_per_sample: int,
) -> None:
    """:func:`apply_flips_pcm` on the bytes of several windows at once: flip ``i`` moves
    sample ``at[i]`` of ``data``, which is index ``where[i]`` of a window whose sign key
    (:func:`sign_key`) is ``sign_keys[i]`` (or ``sign_keys`` for all)."""
    width = _width(bits_per_sample)
    array = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytearray) else data
    if array.dtype != np.uint8 or array.ndim != 1 or not array.flags.writeable:
        raise ValueError("data must be a writable one-dimensional uint8 buffer")
    cells_at = _where(at, array.size // width)
    steps = _keyed_steps(sign_keys, _where(where, WINDOW_SAMPLES))
    if steps.size != cells_at.size:
        raise ValueError("where and at must name the same number of flips")
    if width != 3 and array.flags.c_contiguous and array.size % width == 0:
        # 16- and 32-bit samples are whole little-endian integers: move them as such (several
        # times faster than assembling each from its bytes, as 24-bit samples must be).
        samples = array.view(f"<i{width}")
        moved = _moved_keyed(samples[cells_at].astype(np.int64), steps, bits_per_sample)
        samples[cells_at] = moved.astype(samples.dtype)
        return
    cells = cells_at[:, None] * width + np.arange(width)
    unsigned = (array[cells].astype(np.int64) << (8 * np.arange(width))).sum(axis=1)
    top = 1 << (8 * width - 1)
    values = np.where(unsigned >= top, unsigned - 2 * top, unsigned)
    moved = _moved_keyed(values, steps, bits_per_sample)
    array[cells] = (moved[:, None] >> (8 * np.arange(width))) & 0xFF


def pack_lsb(data: bytes | bytearray | UInt8Array, bits_per_sample: int) -> UInt8Array:
    """The packed LSB plane (``bitorder="little"``) of little-endian PCM bytes."""
    width = _width(bits_per_sample)
    array = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    if array.size % width:
        raise ValueError(f"{array.size} bytes are not whole {bits_per_sample}-bit samples")
    if width == 3:
        low = array[::3] & 1
    else:  # one wide load per sample is several times faster than a strided byte view
        low = (np.ascontiguousarray(array).view(f"<u{width}") & 1).astype(np.bool_)
    return np.packbits(low, bitorder="little")
