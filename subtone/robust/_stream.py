"""Polyphase resampling block by block: :func:`scipy.signal.resample_poly`'s output, the same
float64 values bit for bit, in memory bounded by a block and the filter, not the signal.

``resample_poly(x, up, down)`` is ``upfirdn(h, x, up, down)`` trimmed to the filter's delay.
Output ``j`` of ``upfirdn`` sums ``h[k] · x[i]`` over ``i·up = j·down − k``, so it reads only
``x[⌈(j·down − len(h) + 1)/up⌉ … ⌊j·down/up⌋]``. :class:`Resampler` keeps those inputs (from
a multiple of ``down``, where ``upfirdn`` of the tail lines up with ``upfirdn`` of the whole)
and runs ``upfirdn`` on them for the outputs every new block completes; each output is the
same sum of the same products in the same order, so the values are identical
(``tests/subtone/robust/test_stream.py`` checks it against ``resample_poly``).
"""

from __future__ import annotations

from math import gcd

import numpy as np
import numpy.typing as npt

__all__ = ["Resampler", "resample_blocks"]

Array = npt.NDArray[np.float64]
KAISER_BETA = 5.0
"""scipy's default window for ``resample_poly``."""


def _output_len(len_h: int, in_len: int, up: int, down: int) -> int:
    return ((in_len - 1) * up + len_h - 1) // down + 1


class Resampler:
    """``resample_poly(x, rate_to, rate_from)`` of a signal of ``length`` samples, fed in
    blocks (:meth:`feed`), returned in blocks (what each block completes), ended by
    :meth:`finish`."""

    def __init__(self, rate_from: int, rate_to: int, length: int) -> None:
        g = gcd(rate_from, rate_to)
        self.up, self.down = rate_to // g, rate_from // g
        self.length = length
        self.n_out = -(-length * self.up // self.down)
        self._fed = 0
        self._buffer = np.zeros(0)
        self._start = 0  # input index of _buffer[0], a multiple of down
        if self.up == self.down == 1:
            self._h = np.ones(1)
            self._next = self._end = 0
            return
        from scipy.signal import firwin  # scipy.signal loads in seconds: only when used

        half_len = 10 * max(self.up, self.down)
        h = firwin(2 * half_len + 1, 1.0 / max(self.up, self.down), window=("kaiser", KAISER_BETA))
        h = np.asarray(h, dtype=np.float64) * self.up
        pre_pad = self.down - half_len % self.down
        post_pad = 0
        pre_remove = (half_len + pre_pad) // self.down
        while _output_len(len(h) + pre_pad + post_pad, length, self.up, self.down) < (
            self.n_out + pre_remove
        ):
            post_pad += 1
        self._h = np.concatenate([np.zeros(pre_pad), h, np.zeros(post_pad)])
        self._next = pre_remove  # the next upfirdn output to give
        self._end = pre_remove + self.n_out

    @property
    def identity(self) -> bool:
        return self.up == self.down == 1

    def feed(self, block: npt.ArrayLike) -> Array:
        """Take the next samples; return the outputs they complete."""
        x = np.asarray(block, dtype=np.float64).reshape(-1)
        if self._fed + len(x) > self.length:
            raise ValueError(f"fed more than the {self.length} samples announced")
        self._fed += len(x)
        if self.identity:
            return x.copy()
        self._buffer = np.concatenate([self._buffer, x])
        end_in = self._start + len(self._buffer)
        # Output j needs inputs up to floor(j*down/up): those fed so far complete up to last.
        last = (end_in * self.up - 1) // self.down if end_in else -1
        return self._emit(min(last + 1, self._end))

    def finish(self) -> Array:
        """The outputs left (the signal's end: inputs past it are zeros)."""
        if self._fed != self.length:
            raise ValueError(f"fed {self._fed} of the {self.length} samples announced")
        if self.identity:
            return np.zeros(0)
        return self._emit(self._end)

    def _emit(self, stop: int) -> Array:
        if stop <= self._next:
            return np.zeros(0)
        # The first input the next output reads, rounded down to a multiple of down.
        first = max(0, -(-(self._next * self.down - len(self._h) + 1) // self.up))
        first -= first % self.down
        if first > self._start:
            self._buffer = self._buffer[first - self._start :]
            self._start = first
        from scipy.signal import upfirdn

        shift = self._start * self.up // self.down
        y = upfirdn(self._h, self._buffer, self.up, self.down)
        out = np.asarray(y[self._next - shift : stop - shift], dtype=np.float64)
        if len(out) != stop - self._next:
            raise AssertionError("resampler lost its place")  # pragma: no cover
        self._next = stop
        return out


def resample_blocks(x: npt.ArrayLike, rate_from: int, rate_to: int, block: int) -> Array:
    """:class:`Resampler` over ``x`` in blocks of ``block`` samples (for tests and arrays)."""
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    r = Resampler(rate_from, rate_to, len(a))
    parts = [r.feed(a[i : i + block]) for i in range(0, len(a), block)]
    parts.append(r.finish())
    return np.concatenate(parts) if parts else np.zeros(0)
