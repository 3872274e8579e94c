"""The robust mode's synchronisation (format r2, see :mod:`subtone.robust.core`): where the
marked columns start, found from the keyed pilots, and the soft value and the reliability of
every data cell there."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from subtone.robust import _blocks
from subtone.robust._dsp import (
    FRAME,
    HOP,
    RATE,
    frame_energies,
    stft,
)
from subtone.robust.core import (
    _EDGES,
    DELTA_DB,
    Mix,
    _Keys,
    _keys,
    _mix_samples,
    _ratios,
    _ratios_of,
    _tile_energies,
)
from subtone.robust.layout import (
    CELLS,
    GUARD_FRAMES,
    TILE_FRAMES,
)

__all__ = ["PROBE_SECONDS", "PROBE_Z", "probe"]

SYNC_COLUMNS = 600  # columns (about 9.6 s) the offset search looks at
SYNC_OFFSETS = tuple(range(0, HOP, HOP // 8))
QUIET_STEP_DB = (
    10.0  # cells are weighted in groups by their quieter tile's level below the column's
)
QUIET_GROUPS = 6  # loudest: 0-10 dB, 10-20 dB, ... 50 dB and more
PRIOR_PILOTS = 20.0
PILOT_QUIET_DB = 30.0  # pilots weigh 1 down to 20 dB under their column's loudest, 0 from 30


@dataclass(frozen=True)
class _Sync:
    offset: int  # working-rate samples dropped before the STFT
    start: int  # frame where column 0 begins
    z: float
    z_unsearched: float = 0.0  # z of the pilots after the first SYNC_COLUMNS columns


def _soft(
    tiles: npt.NDArray[np.float64], dither: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """+1 for a clean 0, -1 for a clean 1, near 0 where unsure."""
    return _soft_of(_ratios(tiles), dither)


def _soft_of(
    ratios: npt.NDArray[np.float64], dither: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """:func:`_soft` of cells whose ratios (:func:`~subtone.robust.core._ratios`) are given."""
    return np.asarray(np.cos(2 * np.pi * (ratios - dither) / DELTA_DB), dtype=np.float64)


def _reliability(
    tiles: npt.NDArray[np.float64], soft: npt.NDArray[np.float64], keys: _Keys
) -> npt.NDArray[np.float64]:
    """Per-cell weight from the channel as the pilots saw it. Cells are grouped by how far
    their quieter tile lies below the column's loudest (codecs rewrite quiet bands first); in
    each group the mean signed pilot value ``c`` is the channel's reliability there, and a
    cell's weight is ``atanh(c)`` (the log-likelihood ratio of a hard bit of that quality)."""
    quiet = _quiet_db(tiles)
    group = np.clip((-quiet / QUIET_STEP_DB).astype(np.int64), 0, QUIET_GROUPS - 1)
    p = keys.pilot[: len(soft)]
    signed = soft[p] * (1 - 2 * keys.pilot_bit[: len(soft)][p])
    total = np.bincount(group[p], weights=signed, minlength=QUIET_GROUPS)
    count = np.bincount(group[p], minlength=QUIET_GROUPS)
    # A few pilots say little: shrink each group's estimate toward the overall mean.
    overall = signed.mean() if signed.size else 0.0
    c = (total + PRIOR_PILOTS * overall) / (count + PRIOR_PILOTS)
    w = np.arctanh(np.clip(c, 0.0, 0.95))
    return np.asarray(w[group], dtype=np.float64)


def _quiet_db(tiles: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Per cell: its quieter tile's level below the column's loudest tile, in dB (<= 0)."""
    return _quiet_of(10.0 * np.log10(tiles))


def _quiet_of(db: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """:func:`_quiet_db` of tiles whose levels in dB are given."""
    top = db.max(axis=1, keepdims=True)
    return np.asarray((np.minimum(db[:, 0::2], db[:, 1::2]) - top).ravel(), dtype=np.float64)


def _pilot_weight(quiet: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """A pilot's weight in :func:`_pilot_z` from its :func:`_quiet_db` level."""
    return np.asarray(np.clip((quiet + PILOT_QUIET_DB) / 10.0, 0.0, 1.0), dtype=np.float64)


def _pilot_z(
    soft: npt.NDArray[np.float64],
    tiles: npt.NDArray[np.float64],
    keys: _Keys,
    n: int,
    first: int = 0,
) -> float:
    """z-score of the signed pilot values, each weighted by a fixed function of its level
    (loud cells count fully, cells 30 dB under their column's loudest not at all), so a
    wrong key gives N(0, 1) before any maximum is taken."""
    p = keys.pilot[:n].copy()
    p[:first] = False
    w = _pilot_weight(_quiet_db(tiles)[:n][p])
    if not p.any() or not w.any():
        return 0.0
    signed = soft[:n][p] * (1 - 2 * keys.pilot_bit[:n][p])
    return float((w * signed).sum() / math.sqrt(0.5 * (w * w).sum()))


Samples = npt.NDArray[np.floating[Any]]


def _search(m16: Samples, k_pos: bytes) -> _Sync:
    """The alignment (sub-hop offset, first frame) whose pilots in the first
    :data:`SYNC_COLUMNS` columns correlate best with ``k_pos``'s, and their z-score.

    The alignments of one offset read the same frames, each from its own start: the frames'
    levels are computed once per offset and every start gathers its pilot cells from them
    (the z-score looks at pilots only, a 16th of the cells), the same values as
    :func:`_pilot_z` of each alignment's own tiles."""
    max_start = GUARD_FRAMES + 8
    window = m16[: (max_start + SYNC_COLUMNS * TILE_FRAMES + 2) * HOP + FRAME]
    keys = _keys(k_pos, SYNC_COLUMNS)
    best = _Sync(0, 0, -math.inf)
    for off in SYNC_OFFSETS:
        e = frame_energies(stft(window[off:]), _EDGES)
        z = _start_z(e, keys, max_start)
        if z.size and z.max() > best.z:
            best = _Sync(off, int(np.argmax(z)), float(z.max()))
    return best


def _start_z(e: npt.NDArray[np.float64], keys: _Keys, max_start: int) -> npt.NDArray[np.float64]:
    """The pilots' z-score at each first frame ``0 .. max_start`` of frames ``e`` that still
    leaves 8 columns (fewer entries when ``e`` is short)."""
    full = SYNC_COLUMNS * TILE_FRAMES
    whole = max(0, min(max_start + 1, e.shape[0] - full + 1))  # starts that see every column
    cells = np.flatnonzero(keys.pilot)
    sign = 1 - 2 * keys.pilot_bit[cells]
    dither = keys.dither[cells]
    z = np.zeros(whole, dtype=np.float64)
    for residue in range(min(TILE_FRAMES, whole)):
        # Tile row j of this residue's tiling is the column of first frame residue + j * T.
        db = 10.0 * np.log10(_tile_energies(e, residue, (e.shape[0] - residue) // TILE_FRAMES))
        ratio, quiet = _ratios_of(db), _quiet_of(db)
        starts = np.arange(residue, whole, TILE_FRAMES)
        at = ((starts - residue) // TILE_FRAMES * CELLS)[:, None] + cells[None, :]
        w = _pilot_weight(quiet[at])
        top = (w * (_soft_of(ratio[at], dither) * sign)).sum(axis=1)
        norm = np.sqrt(0.5 * (w * w).sum(axis=1))
        z[starts] = np.divide(top, norm, out=np.zeros_like(top), where=norm > 0)
    short: list[float] = []
    for start in range(whole, max_start + 1):  # a short file: fewer columns from here on
        cols = min(SYNC_COLUMNS, (e.shape[0] - start) // TILE_FRAMES)
        if cols < 8:
            break
        tiles = _tile_energies(e, start, cols)
        soft_cells = _soft(tiles, keys.dither[: cols * CELLS])
        short.append(_pilot_z(soft_cells, tiles, keys, cols * CELLS))
    return np.concatenate([z, np.asarray(short, dtype=np.float64)])


PROBE_SECONDS = ((GUARD_FRAMES + 8 + SYNC_COLUMNS * TILE_FRAMES + 2) * HOP + FRAME) / RATE
"""The working-rate seconds :func:`probe` reads (what the alignment search looks at)."""
PROBE_Z = 4.0
"""A :func:`probe` at or above this says "a mark under this key may be there". Its only use
is to spare an upload when the passphrase is wrong, so it errs on the side of "there": a
wrong key's best z over the search's 624 alignments exceeds it about 2 % of the time (the
server then answers ``no_payload``); a marked file that lost its payload to the channel still
shows z ≥ 6 (docs/robust.md)."""


def probe(mix: Mix, k_pos: bytes) -> float:
    """How strongly the start of a file's working mix (:data:`PROBE_SECONDS` of it is
    enough) shows pilots under ``k_pos``: the z-score at the best alignment. Cheap (no
    decoding); see :data:`PROBE_Z`."""
    z = _search(_mix_samples(mix), k_pos).z
    return 0.0 if not math.isfinite(z) else z


def _synchronise(m16: Samples, k_pos: bytes) -> tuple[_Sync, npt.NDArray[np.float64]]:
    best = _search(m16, k_pos)
    with _blocks.pool() as p:
        e = _blocks.energies(m16[best.offset :], _EDGES, p)
    cols = max(0, (e.shape[0] - best.start) // TILE_FRAMES)
    keys = _keys(k_pos, cols)
    if not cols:
        return _Sync(best.offset, best.start, 0.0), np.zeros(0)
    tiles = _tile_energies(e, best.start, cols)
    soft = _soft(tiles, keys.dither)
    z = _pilot_z(soft, tiles, keys, cols * CELLS)
    z_out = _pilot_z(soft, tiles, keys, cols * CELLS, first=SYNC_COLUMNS * CELLS)
    data = (soft * _reliability(tiles, soft, keys))[~keys.pilot]
    return _Sync(best.offset, best.start, z, z_out), data
