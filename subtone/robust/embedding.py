"""The robust mode's marking (format r2, see :mod:`subtone.robust.core`): the coded stream
into the cells' band-energy ratios of the working mix, within the SNR budget, and the residual
that carries them back to the cover."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from subtone.robust._dsp import (
    HOP,
    frame_energies,
    istft,
    stft,
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
    _mix_values,
    _permutation,
    _ratios,
    _refuse_if_too_large,
    _seal_header,
    _tile_energies,
    add_residual,
    as_mix,
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

ITERATIONS = 6
GAIN_CAP_DB = 6.0
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


def embed_mix(mix: Mix, k_pos: bytes, payload: bytes, *, verify: bool = True) -> Residual:
    """Mark ``payload`` into the working mix (:func:`working_mix`); returns what to add to it.
    Raises :class:`CapacityExceeded` when it does not fit (:func:`mix_capacity`), and (with
    ``verify``) :class:`UnsuitableCover` when the marked mix does not read back, before any
    channel: a cover whose sound cannot hold that much (broadband noise, near silence)."""
    m16 = _mix_values(mix)
    _refuse_if_too_large(payload, mix_capacity(len(m16)))
    columns = _columns(len(m16))
    keys = _keys(k_pos, columns)
    stream = _coded_stream(k_pos, payload)
    # Cell targets: pilots everywhere, the coded stream in the data cells, the rest untouched.
    target = np.full(columns * CELLS, -1, dtype=np.int64)
    target[keys.pilot] = keys.pilot_bit[keys.pilot]
    data_idx = np.flatnonzero(~keys.pilot)[: len(stream)]
    target[data_idx] = stream
    used = target >= 0
    lattice = keys.dither + target * (DELTA_DB / 2)

    lo, hi = int(_EDGES[0]), int(_EDGES[-1])
    rows = slice(GUARD_FRAMES, GUARD_FRAMES + columns * TILE_FRAMES)
    y16 = m16.copy()
    want = np.zeros(0)
    total_db = np.zeros((columns, BANDS))
    for it in range(ITERATIONS):
        spec = stft(y16)
        tiles = _tile_energies(frame_energies(spec, _EDGES), GUARD_FRAMES, columns)
        d = _ratios(tiles)
        ea, eb = tiles[:, 0::2].ravel(), tiles[:, 1::2].ravel()
        fa = eb / (ea + eb)  # move the quieter tile more: least energy changed for the shift
        if it == 0:
            # Where each cell should end: its lattice point, or part of the way there where
            # getting there would cost more than the SNR budget allows (the decoder's soft
            # values and the code absorb the difference).
            full = np.where(used, np.round((d - lattice) / DELTA_DB) * DELTA_DB + lattice - d, 0)
            ga, gb = 10.0 ** (full * fa / 20.0), 10.0 ** (-full * (1.0 - fa) / 20.0)
            cost = ea * (ga - 1.0) ** 2 + eb * (gb - 1.0) ** 2
            budget = float(np.sum(np.abs(spec) ** 2, dtype=np.float64)) * 10.0 ** (-SNR_DB / 10.0)
            want = d + full * _strengths(cost, budget)
        shift = np.where(used, want - d, 0.0).reshape(columns, CELLS)
        fa2 = fa.reshape(columns, CELLS)
        g_db = np.empty((columns, BANDS))
        g_db[:, 0::2] = shift * fa2
        g_db[:, 1::2] = -shift * (1.0 - fa2)
        # A tile that does not follow its gain (a band holding only its neighbours' leakage)
        # must not be pushed without end: the total gain of a tile stays within GAIN_CAP_DB.
        g_db = np.clip(total_db + g_db, -GAIN_CAP_DB, GAIN_CAP_DB) - total_db
        total_db += g_db
        g = 10.0 ** (g_db / 20.0)
        diff = np.zeros_like(spec)
        diff[rows, lo:hi] = spec[rows, lo:hi] * _band_gains(g)
        y16 += istft(diff, len(y16))
    start = GUARD_FRAMES * HOP
    end = min(len(m16), (GUARD_FRAMES + columns * TILE_FRAMES + 1) * HOP)
    change = (y16 - m16)[start:end] if columns else np.zeros(0)
    residual = Residual(start, change.astype(np.float16), len(m16))
    if verify:
        _verify(m16, residual, k_pos, payload)
    return residual


def _verify(m16: npt.NDArray[np.float64], residual: Residual, k_pos: bytes, payload: bytes) -> None:
    """Read the marked mix back (what a decode of the untouched stego file reads, but for the
    resampling): a mark that does not survive even that is refused, not written."""
    marked = m16.copy()
    end = residual.start + len(residual.samples)
    marked[residual.start : end] += residual.samples
    try:
        found = extract_mix(as_mix(marked), k_pos)
    except (NoPayload, ChannelDamaged):
        found = None
    if found != payload:
        raise UnsuitableCover(
            f"This cover cannot carry {len(payload):,} bytes in robust mode: its sound does "
            "not hold the marks (broadband noise or near silence do not; speech and music "
            "do). Use another cover, a longer one, or a shorter secret."
        )
