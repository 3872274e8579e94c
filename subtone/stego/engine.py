"""Where windows are embedded and extracted: in this process, or on a Triton server.

The codec hands one window at a time to a :class:`WindowEngine` and may run several at once
from a thread pool, so every engine is thread-safe. :class:`InProcessEngine` calls the kernel
directly; :class:`server.integrations.triton.TritonEngine` sends the window to the
``stego_embed`` / ``stego_extract`` models, which run the same kernel and the same checks
(:func:`check_embed`, :func:`check_extract`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from subtone.stego.kernel import (
    KEY_BYTES,
    MAX_K,
    WINDOW_SAMPLES,
    block_size,
    embed_window,
    extract_window,
    sample_range,
)

__all__ = [
    "SUPPORTED_BITS_PER_SAMPLE",
    "EmbedWindow",
    "ExtractWindow",
    "InProcessEngine",
    "WindowEngine",
    "check_embed",
    "check_extract",
]

SUPPORTED_BITS_PER_SAMPLE = (16, 24, 32)
"""Sample widths the engines embed in (signed PCM, held in int32)."""

Int32Array = npt.NDArray[np.int32]
UInt8Array = npt.NDArray[np.uint8]


@dataclass(frozen=True, eq=False)
class EmbedWindow:
    """One window to embed in: its real samples (not padded) and the bits it must carry."""

    samples: Int32Array
    """Up to :data:`WINDOW_SAMPLES` samples, all channels interleaved."""
    key: bytes
    """The window key (:data:`KEY_BYTES` bytes)."""
    k: int
    """Hamming parameter: each block of ``2**k - 1`` samples carries ``k`` bits."""
    skip: int
    """Leading keyed positions left alone (the payload header's, in window 0)."""
    bits: UInt8Array
    """0/1 values, a whole number of ``k``-bit blocks."""
    bits_per_sample: int

    @property
    def nblocks(self) -> int:
        """Blocks the bits fill (0 when ``k`` is out of range: the check reports that)."""
        return self.bits.size // self.k if self.k > 0 else 0


@dataclass(frozen=True, eq=False)
class ExtractWindow:
    """One window to read ``nblocks`` blocks of ``k`` bits from."""

    samples: Int32Array
    key: bytes
    k: int
    skip: int
    nblocks: int


class WindowEngine(Protocol):
    """Embeds in and extracts from one window at a time; safe to call from several threads."""

    def embed(self, window: EmbedWindow) -> Int32Array:
        """The window's samples carrying its bits (same length as ``window.samples``)."""
        ...

    def extract(self, window: ExtractWindow) -> UInt8Array:
        """The ``nblocks * k`` bits (0/1 values) the window carries."""
        ...

    def close(self) -> None:
        """Release what the engine holds (connections); it is not used afterwards."""
        ...


def _check_common(length: int, key_bytes: int, k: int, skip: int, nblocks: int) -> None:
    if not 0 < length <= WINDOW_SAMPLES:
        raise ValueError(f"length must be in 1..{WINDOW_SAMPLES}, got {length}")
    if key_bytes != KEY_BYTES:
        raise ValueError(f"a window key has {KEY_BYTES} bytes, got {key_bytes}")
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be in 1..{MAX_K}, got {k}")
    n = block_size(k)
    if skip < 0 or nblocks < 0 or skip + nblocks * n > length:
        raise ValueError(
            f"{nblocks} blocks of {n} samples after {skip} do not fit a window of {length}"
        )


def check_embed(
    samples: Int32Array,
    key_bytes: int,
    *,
    k: int,
    skip: int,
    nblocks: int,
    bits: int,
    bits_per_sample: int,
) -> None:
    """Raise :class:`ValueError` (a message for the caller) if the window cannot be embedded.

    ``samples`` are the window's real samples, ``bits`` how many message bits it carries.
    """
    if samples.ndim != 1:
        raise ValueError(f"a window's samples are one-dimensional, got shape {samples.shape}")
    _check_common(samples.size, key_bytes, k, skip, nblocks)
    if bits != nblocks * k:
        raise ValueError(f"{bits} bits is not {nblocks} blocks of {k} bits")
    if bits_per_sample not in SUPPORTED_BITS_PER_SAMPLE:
        raise ValueError(
            f"bits_per_sample must be one of {SUPPORTED_BITS_PER_SAMPLE}, got {bits_per_sample}"
        )
    lo, hi = sample_range(bits_per_sample)
    if int(samples.min()) < lo or int(samples.max()) > hi:
        raise ValueError(f"samples outside the {bits_per_sample}-bit range {lo}..{hi}")


def check_extract(samples: Int32Array, key_bytes: int, *, k: int, skip: int, nblocks: int) -> None:
    """Raise :class:`ValueError` (a message for the caller) if the window cannot be read."""
    if samples.ndim != 1:
        raise ValueError(f"a window's samples are one-dimensional, got shape {samples.shape}")
    _check_common(samples.size, key_bytes, k, skip, nblocks)


class InProcessEngine:
    """Runs the kernel in the calling thread (numpy releases the GIL in most of it)."""

    def embed(self, window: EmbedWindow) -> Int32Array:
        samples = np.asarray(window.samples, dtype=np.int32)
        bits = np.asarray(window.bits, dtype=np.uint8).reshape(-1)
        if window.k > 0 and bits.size % window.k:
            raise ValueError(f"{bits.size} bits is not a whole number of {window.k}-bit blocks")
        check_embed(
            samples,
            len(window.key),
            k=window.k,
            skip=window.skip,
            nblocks=window.nblocks,
            bits=bits.size,
            bits_per_sample=window.bits_per_sample,
        )
        return embed_window(
            samples,
            window.key,
            k=window.k,
            skip=window.skip,
            bits=bits,
            bits_per_sample=window.bits_per_sample,
        )

    def extract(self, window: ExtractWindow) -> UInt8Array:
        samples = np.asarray(window.samples, dtype=np.int32)
        check_extract(
            samples, len(window.key), k=window.k, skip=window.skip, nblocks=window.nblocks
        )
        return extract_window(
            samples, window.key, k=window.k, skip=window.skip, nblocks=window.nblocks
        )

    def close(self) -> None:
        """Nothing to release."""
