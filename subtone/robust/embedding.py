"""The robust mode's marking (format r2, see :mod:`subtone.robust.core`): the coded stream
into the cells' band-energy ratios of the working mix, within the SNR budget, and the residual
that carries them back to the cover."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from subtone.robust import _blocks
from subtone.robust._dsp import (
    FRAME,
    HOP,
    frame_energies,
    stft_span,
    synthesis_frames,
)
from subtone.robust._fec import conv_encode
from subtone.robust.core import (
    _EDGES,
    DELTA_DB,
    ChannelDamaged,
    Mix,
    NoPayload,
    Residual,
    RobustError,
    UnsuitableCover,
    _bits,
    _keys,
    _mix_samples,
    _permutation,
    _ratios,
    _refuse_if_too_large,
    _seal_header,
    _tile_energies,
    add_residual,
    working_mix,
)
from subtone.robust.extraction import extract_mix
from subtone.robust.layout import (
    BANDS,
    CELLS,
    GUARD_FRAMES,
    HEADER_COPIES,
    RS_K,
    RS_PARITY,
    TILE_FRAMES,
    _columns,
    capacity_frames,
    mix_capacity,
)

__all__ = ["apply_residual", "embed", "embed_mix"]

Floats = npt.NDArray[np.float64]
Floats32 = npt.NDArray[np.float32]
Bools = npt.NDArray[np.bool_]
CArray = npt.NDArray[np.complex64]

ITERATIONS = 6
GAIN_CAP_DB = 6.0
VERIFY_BLOCK = 1 << 20
"""Samples of the residual (and of the marked mix the read-back check reads) made at a time."""
SNR_DB = 32.3  # the embedder's distortion budget: stego/cover SNR of the working-rate mix


def _outer_encode(payload: bytes) -> bytes:
    if RS_PARITY == 0:
        return payload
    from reedsolo import RSCodec  # only with the outer code on (the ``robust`` extra)

    rs = RSCodec(RS_PARITY)
    return b"".join(bytes(rs.encode(payload[i : i + RS_K])) for i in range(0, len(payload), RS_K))


def _coded_stream(k_pos: bytes, payload: bytes) -> npt.NDArray[np.int64]:
    """The data cells' bits: the header's copies, then the payload, each interleaved."""
    header = np.tile(conv_encode(_bits(_seal_header(k_pos, payload))), HEADER_COPIES)
    body = conv_encode(_bits(_outer_encode(payload)))
    h = np.empty_like(header)
    h[_permutation(k_pos, b"perm-header", len(header))] = header
    b = np.empty_like(body)
    b[_permutation(k_pos, b"perm-payload", len(body))] = body
    return np.concatenate([h, b])


def _strengths(cost: npt.NDArray[np.float64], budget: float) -> npt.NDArray[np.float64]:
    """Per-cell fraction of the way to the lattice point: the energy each cell may change is
    capped at one level ``T`` chosen so that the total is ``budget`` (water filling)."""
    total = float(cost.sum())
    if total <= budget:
        return np.ones_like(cost)
    c = np.sort(cost)
    below = np.concatenate([[0.0], np.cumsum(c)])[:-1]  # sum of the cells under each level
    above = (len(c) - np.arange(len(c))) * c  # the rest capped at that level
    k = int(np.searchsorted(below + above, budget))  # first level whose total exceeds budget
    level = (budget - below[k]) / (len(c) - k) if k < len(c) else c[-1]
    return np.asarray(np.sqrt(np.minimum(1.0, level / np.maximum(cost, 1e-30))), dtype=np.float64)


def _band_gains(g: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """``gain - 1`` on the marked bins (``_EDGES[0]:_EDGES[-1]``) of every marked frame."""
    widths = np.diff(_EDGES)
    gf = np.repeat((g - 1.0).astype(np.float32), TILE_FRAMES, axis=0)
    return np.repeat(gf, widths, axis=1)


def embed(
    samples: npt.ArrayLike, rate: int, k_pos: bytes, payload: bytes
) -> npt.NDArray[np.generic]:
    """The cover with ``payload`` marked into it: same shape and dtype (int or float PCM,
    mono ``(n,)`` or ``(n, channels)``). Raises :class:`CapacityExceeded`
    (``capacity_exceeded``) when the payload does not fit (see :func:`capacity`).

    The three steps the client and the server split between them: :func:`working_mix` (the
    client), :func:`embed_mix` (the server, on that mix alone), :func:`apply_residual` (the
    client, on its own cover)."""
    a = np.asarray(samples)
    if a.ndim not in (1, 2) or a.shape[0] == 0:
        raise RobustError("the cover has no samples", code="bad_cover")
    _refuse_if_too_large(payload, capacity_frames(a.shape[0], rate))
    residual = embed_mix(working_mix(a, rate), k_pos, payload)
    return apply_residual(a, rate, residual)


def apply_residual(
    samples: npt.ArrayLike, rate: int, residual: Residual
) -> npt.NDArray[np.generic]:
    """The cover with the residual of :func:`embed_mix` added: same shape and dtype."""
    a = np.asarray(samples)
    return add_residual(a, residual.at_rate(rate, a.shape[0]))


def _targets(k_pos: bytes, payload: bytes, columns: int) -> tuple[Bools, Floats]:
    """Which cells are marked, and the lattice offset each marked cell aims at: pilots
    everywhere, the coded stream in the data cells, the rest untouched."""
    keys = _keys(k_pos, columns)
    stream = _coded_stream(k_pos, payload)
    target = np.full(columns * CELLS, -1, dtype=np.int64)
    target[keys.pilot] = keys.pilot_bit[keys.pilot]
    target[np.flatnonzero(~keys.pilot)[: len(stream)]] = stream
    return target >= 0, keys.dither + target * (DELTA_DB / 2)


def embed_mix(mix: Mix, k_pos: bytes, payload: bytes, *, verify: bool = True) -> Residual:
    """Mark ``payload`` into the working mix (:func:`working_mix`); returns what to add to it.
    Raises :class:`CapacityExceeded` when it does not fit (:func:`mix_capacity`), and (with
    ``verify``) :class:`UnsuitableCover` when the marked mix does not read back, before any
    channel: a cover whose sound cannot hold that much (broadband noise, near silence)."""
    m16 = _mix_samples(mix)
    _refuse_if_too_large(payload, mix_capacity(len(m16)))
    columns = _columns(len(m16))
    used, lattice = _targets(k_pos, payload, columns)
    with _blocks.pool() as p:
        y16 = _Marking(m16, used, lattice, columns).run(p)
    start = GUARD_FRAMES * HOP
    end = min(len(m16), (GUARD_FRAMES + columns * TILE_FRAMES + 1) * HOP) if columns else start
    residual = Residual(start, _change(y16, m16, start, end), len(m16))
    del y16
    if verify:
        _verify(mix, residual, k_pos, payload)
    return residual


def _change(y16: Floats, m16: Floats32, start: int, end: int) -> npt.NDArray[np.float16]:
    """``(y16 - m16)[start:end]`` in half precision, made a block at a time (no
    double-precision copy of the whole difference)."""
    out = np.empty(end - start, dtype=np.float16)
    for i in range(start, end, VERIFY_BLOCK):
        j = min(i + VERIFY_BLOCK, end)
        out[i - start : j - start] = y16[i:j] - m16[i:j]  # exact: float64 - float32
    return out


class _Marking:
    """One embed's iterations over blocks of columns (:mod:`subtone.robust._blocks`).

    Each iteration is Jacobi-style, as on the whole cover at once: every block analyses the
    marked mix as the previous iteration left it, then adds its frames' change. A block's
    frames reach the samples of its own span and one hop past each end; the samples strictly
    inside its span are read by no other block, so it adds those itself, at once; the hop at
    each boundary, read by the blocks on both sides, is added after every block is done
    (:meth:`_join`), the same sum of the same two frames as a whole-cover overlap-add.

    A column with no marked cell (past the payload, one in two columns holds no pilot) gets
    no gain, so its frames change nothing: they are neither analysed nor synthesised."""

    def __init__(self, m16: Floats32, used: Bools, lattice: Floats, columns: int) -> None:
        self.y16 = m16.astype(np.float64)
        self.used, self.lattice, self.columns = used, lattice, columns
        self.want = np.zeros(0)
        self.total_db = np.zeros((columns, BANDS))
        self.spans = _blocks.spans(0, columns)
        marked = used.reshape(columns, CELLS).any(axis=1)
        self.active = [np.flatnonzero(marked[c0:c1]) for c0, c1 in self.spans]

    def run(self, p: _blocks.Pool) -> Floats:
        """The marked mix (float64) after :data:`ITERATIONS` iterations."""
        if not self.columns:
            return self.y16
        self.want = self._aims(p)
        for _ in range(ITERATIONS):
            self._join(_blocks.run(p, self._step, self.spans, self.active))
        return self.y16

    def _look(
        self, c0: int, c1: int, cols: npt.NDArray[np.int64] | None = None
    ) -> tuple[CArray, Floats, Floats, Floats]:
        """Columns ``c0 … c1-1`` (only ``c0 + cols`` if given): their spectrum, their cells'
        ratios ``d``, the share ``fa`` of a shift the first tile takes (the quieter tile moves
        more: least energy changed), and their tiles."""
        rows = None if cols is None else _frame_rows(cols)
        f0 = GUARD_FRAMES + c0 * TILE_FRAMES
        spec = stft_span(self.y16, f0, GUARD_FRAMES + c1 * TILE_FRAMES, rows)
        n = c1 - c0 if cols is None else len(cols)
        tiles = _tile_energies(frame_energies(spec, _EDGES), 0, n)
        ea, eb = tiles[:, 0::2].ravel(), tiles[:, 1::2].ravel()
        return spec, _ratios(tiles), eb / (ea + eb), tiles

    def _costs(self, span: tuple[int, int]) -> tuple[Floats, Floats, Floats, float]:
        """A block's cells: their ratios, the full move to their lattice point and its
        energy cost; and the block's spectral energy (its share of the SNR budget's base)."""
        c0, c1 = span
        spec, d, fa, tiles = self._look(c0, c1)
        cells = slice(c0 * CELLS, c1 * CELLS)
        lattice, used = self.lattice[cells], self.used[cells]
        full = np.where(used, np.round((d - lattice) / DELTA_DB) * DELTA_DB + lattice - d, 0)
        ga, gb = 10.0 ** (full * fa / 20.0), 10.0 ** (-full * (1.0 - fa) / 20.0)
        ea, eb = tiles[:, 0::2].ravel(), tiles[:, 1::2].ravel()
        cost = ea * (ga - 1.0) ** 2 + eb * (gb - 1.0) ** 2
        return d, full, cost, float(np.sum(np.abs(spec) ** 2, dtype=np.float64))

    def _aims(self, p: _blocks.Pool) -> Floats:
        """Where each cell should end: its lattice point, or part of the way there where
        getting there would cost more than the SNR budget allows (the decoder's soft values
        and the code absorb the difference). The budget's base, the cover's energy, is
        summed block by block in a fixed order."""
        looks = _blocks.run(p, self._costs, self.spans)
        d, full, cost = (np.concatenate([look[i] for look in looks]) for i in range(3))
        energy = sum((look[3] for look in looks), self._unmarked_energy())
        strengths = _strengths(cost, energy * 10.0 ** (-SNR_DB / 10.0))
        return np.asarray(d + full * strengths, dtype=np.float64)

    def _unmarked_energy(self) -> float:
        """The spectral energy of the frames outside the marked columns (the guards)."""
        first, stop = GUARD_FRAMES, GUARD_FRAMES + self.columns * TILE_FRAMES
        spec = np.concatenate(
            [
                stft_span(self.y16, 0, first),
                stft_span(self.y16, stop, _blocks.frames_in(len(self.y16))),
            ]
        )
        return float(np.sum(np.abs(spec) ** 2, dtype=np.float64))

    def _gains(self, c0: int, cols: npt.NDArray[np.int64], d: Floats, fa: Floats) -> Floats:
        """This iteration's gains (``(len(cols), BANDS)``, linear) of the columns ``c0 +
        cols``: each marked cell's remaining shift split between its two tiles."""
        cells = ((c0 + cols)[:, None] * CELLS + np.arange(CELLS)).ravel()
        shift = np.where(self.used[cells], self.want[cells] - d, 0.0).reshape(-1, CELLS)
        fa2 = fa.reshape(-1, CELLS)
        g_db = np.empty((len(cols), BANDS))
        g_db[:, 0::2] = shift * fa2
        g_db[:, 1::2] = -shift * (1.0 - fa2)
        # A tile that does not follow its gain (a band holding only its neighbours' leakage)
        # must not be pushed without end: the total gain of a tile stays within GAIN_CAP_DB.
        total = self.total_db[c0 + cols]
        g_db = np.clip(total + g_db, -GAIN_CAP_DB, GAIN_CAP_DB) - total
        self.total_db[c0 + cols] = total + g_db
        return np.asarray(10.0 ** (g_db / 20.0), dtype=np.float64)

    def _step(self, span: tuple[int, int], cols: npt.NDArray[np.int64]) -> tuple[Floats32, ...]:
        """One iteration on a block: gains toward each cell's aim, the change they make
        added to the samples inside the block's span; returns the first and the last frame's
        halves that reach past it (for :meth:`_join`)."""
        c0, c1 = span
        fr = np.zeros(((c1 - c0) * TILE_FRAMES, FRAME), dtype=np.float32)
        if len(cols):
            spec, d, fa, _ = self._look(c0, c1, cols)
            lo, hi = int(_EDGES[0]), int(_EDGES[-1])
            diff = np.zeros_like(spec)
            diff[:, lo:hi] = spec[:, lo:hi] * _band_gains(self._gains(c0, cols, d, fa))
            fr[_frame_rows(cols)] = synthesis_frames(diff)
        a = (GUARD_FRAMES + c0 * TILE_FRAMES) * HOP
        inner = fr[1:, :HOP] + fr[:-1, HOP:].astype(np.float64)
        self.y16[a + HOP : a + HOP * len(fr)] += inner.ravel()
        return fr[0, :HOP].copy(), fr[-1, HOP:].copy()

    def _join(self, edges: list[tuple[Floats32, ...]]) -> None:
        """Add the hops at the blocks' boundaries: block ``k``'s first frame's first half and
        block ``k-1``'s last frame's second half (zeros outside the marked columns)."""
        zeros = np.zeros(HOP, dtype=np.float32)
        tails = [zeros, *(tail for _, tail in edges)]
        heads = [*(head for head, _ in edges), zeros]
        starts = [c0 for c0, _ in self.spans] + [self.columns]
        for c0, head, tail in zip(starts, heads, tails, strict=True):
            a = (GUARD_FRAMES + c0 * TILE_FRAMES) * HOP
            self.y16[a : a + HOP] += head.astype(np.float64) + tail


def _frame_rows(cols: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The frames (from a block's first) of the columns ``cols`` (from its first)."""
    return np.asarray(
        (cols[:, None] * TILE_FRAMES + np.arange(TILE_FRAMES)).ravel(), dtype=np.int64
    )


def _verify(mix: Floats32, residual: Residual, k_pos: bytes, payload: bytes) -> None:
    """Read the marked mix back (what a decode of the untouched stego file reads, but for the
    resampling): a mark that does not survive even that is refused, not written."""
    marked = mix.copy()
    r = residual.samples
    for i in range(0, len(r), VERIFY_BLOCK):
        at = slice(residual.start + i, residual.start + min(i + VERIFY_BLOCK, len(r)))
        marked[at] = mix[at].astype(np.float64) + r[i : i + VERIFY_BLOCK]
    try:
        found = extract_mix(marked, k_pos)
    except (NoPayload, ChannelDamaged):
        found = None
    if found != payload:
        raise UnsuitableCover(
            f"This cover cannot carry {len(payload):,} bytes in robust mode: its sound does "
            "not hold the marks (broadband noise or near silence do not; speech and music "
            "do). Use another cover, a longer one, or a shorter secret."
        )
