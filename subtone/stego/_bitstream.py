"""A payload's bits read and written in order, a window's worth at a time, never held whole.

Windows carry consecutive runs of the payload's bits (``layout.Plan.bit_ranges``), in window
order, and the codec sees windows in that order. So an embed needs only the next window's
bits (:class:`BitReader`, over the secret's stream) and an extract hands each window's bits
on as they come (:class:`BitWriter`, into the result's stream): a worker's memory stays the
same for a 10 KB and a 100 MB secret. Numpy only (whole-byte shifts): the worker does not
load the compiled kernel for this.

Private to :mod:`subtone.stego._codec_plane`. Bits are packed most significant first
(``np.packbits``), as everywhere in the codec.
"""

from __future__ import annotations

from typing import BinaryIO, Final

import numpy as np

from subtone.stego.layout import StegoError
from subtone.stego.window import UInt8Array, plane_bytes

__all__ = ["BitReader", "BitWriter"]

_EMPTY: Final = np.zeros(0, dtype=np.uint8)


def _shifted_left(data: UInt8Array, shift: int, nbytes: int) -> UInt8Array:
    """Bytes ``[0, nbytes)`` of ``data`` moved ``shift`` (0..7) bits towards the front;
    ``data`` has ``nbytes + 1`` bytes when ``shift`` is not 0."""
    if not shift:
        return data[:nbytes].copy()
    wide = data[: nbytes + 1].astype(np.uint16)
    return (((wide[:-1] << shift) | (wide[1:] >> (8 - shift))) & 0xFF).astype(np.uint8)


def _masked(packed: UInt8Array, n: int) -> UInt8Array:
    """``packed`` with the bits past the first ``n`` cleared (in place)."""
    if n & 7:
        packed[n >> 3] &= (0xFF << (8 - (n & 7))) & 0xFF
    return packed


class BitReader:
    """The bits of ``size`` bytes read from ``stream``, in order, then zeros (the last
    Hamming block's padding). Reads exactly ``size`` bytes from ``stream``."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self._stream = stream
        self._left = size
        self._head = _EMPTY
        """Unconsumed bytes, from the one that holds the next bit."""
        self._offset = 0
        """Bits of ``_head[0]`` already consumed (0..7)."""

    def take(self, n: int) -> UInt8Array:
        """The next ``n`` bits, from bit 0 of a new array of ``plane_bytes(n)`` bytes."""
        nbytes = plane_bytes(n)
        self._fill(nbytes + 1)
        out = _masked(_shifted_left(self._head, self._offset, nbytes), n)
        consumed = self._offset + n
        self._head = self._head[consumed >> 3 :]
        self._offset = consumed & 7
        return out

    def _fill(self, nbytes: int) -> None:
        """Make ``_head`` at least ``nbytes`` long: from the stream, then zeros."""
        short = nbytes - self._head.size
        if short <= 0:
            return
        parts = [self._head]
        want = min(short, self._left)
        while want:
            chunk = self._stream.read(want)
            if not chunk:
                raise StegoError(f"The secret ends {self._left:,} bytes early.", code="truncated")
            parts.append(np.frombuffer(chunk, dtype=np.uint8))
            want -= len(chunk)
            self._left -= len(chunk)
            short -= len(chunk)
        if short > 0:
            parts.append(np.zeros(short, dtype=np.uint8))
        self._head = np.concatenate(parts)


class BitWriter:
    """Writes bits to ``sink`` in order, the first ``size`` bytes of them only (what follows
    is the last Hamming block's padding)."""

    def __init__(self, sink: BinaryIO, size: int) -> None:
        self._sink = sink
        self._left = size
        self._carry = 0
        """The last, incomplete byte: its first ``_carry_bits`` bits (most significant)."""
        self._carry_bits = 0

    def write(self, packed: UInt8Array, n: int) -> None:
        """Append the first ``n`` bits of ``packed`` (at least ``plane_bytes(n)`` bytes)."""
        if n <= 0:
            return
        c = self._carry_bits
        bits = _masked(np.array(packed[: plane_bytes(n)], dtype=np.uint8), n)
        if c:
            wide = np.zeros(bits.size + 1, dtype=np.uint16)
            wide[1:] = bits
            joined = (((wide[:-1] << (8 - c)) | (wide[1:] >> c)) & 0xFF).astype(np.uint8)
            joined[0] |= self._carry
            joined = np.append(joined, np.uint8((int(bits[-1]) << (8 - c)) & 0xFF))
        else:
            joined = bits
        total = c + n
        self._emit(joined[: total >> 3])
        self._carry_bits = total & 7
        self._carry = int(joined[total >> 3]) if self._carry_bits else 0

    def close(self) -> None:
        """Write the last, incomplete byte (if the payload reaches into it)."""
        if self._carry_bits:
            self._emit(np.array([self._carry], dtype=np.uint8))
            self._carry_bits = 0

    def _emit(self, data: UInt8Array) -> None:
        count = min(self._left, data.size)
        if count:
            self._sink.write(data[:count].tobytes())
            self._left -= count
