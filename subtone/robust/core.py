"""The robust mode: an opaque payload carried by band-energy ratios, keyed by ``k_pos``.

Format r2 (the algorithm, its measurements and its security argument are in
``docs/robust.md``):

* Everything happens at :data:`RATE` (16 kHz) on the mono mix: the cover is resampled down,
  marked below 8 kHz, and only the *difference* is resampled back up and added to every
  channel, so nothing above 8 kHz and no channel balance changes.
* The STFT (512 / hop 256) is cut into **tiles**: :data:`BANDS` bands on Opus's (CELT's) own
  band edges from 200 Hz to 8 kHz by :data:`TILE_FRAMES` frame (16 ms). Two neighbouring bands
  of one column form a **cell**; a cell carries one coded bit by dithered quantisation (QIM) of
  the log-energy ratio of its two tiles with step :data:`DELTA_DB` — a ratio, so gain does not
  move it, and whole-band energies are what perceptual codecs keep. Cells whose full move would
  cost more than the SNR budget (:data:`SNR_DB`) allows go part of the way (water filling).
* The first and last :data:`GUARD_SECONDS` of the cover are not marked, so cropping up to a
  second at either end loses nothing; the extractor finds where the marked columns start by
  correlating keyed **pilot** cells (one in every :data:`PILOT_EVERY`) over every frame shift
  and eight sub-frame offsets, and weighs every cell by the reliability the pilots show for
  cells of its level.
* Data cells carry a header (14 bytes: version, flags, payload length, 4-byte payload HMAC,
  4-byte header HMAC, masked under ``k_pos``; two copies), then the payload, both in a
  rate-1/4 convolutional code (soft Viterbi) over keyed interleavers.
* Every cell's dither, which cells are pilots, the pilot bits and the interleavers come from
  SHAKE-256 keyed by ``HMAC(k_pos, label)``: without ``k_pos`` a cell's bit is unreadable and
  the pilots are noise.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from subtone import errors
from subtone.errors import SubtoneError
from subtone.robust._dsp import (
    FRAME,
    HOP,
    RATE,
    band_edges_hz,
    frame_energies,
    istft,
    resample,
    stft,
)
from subtone.robust._fec import coded_length, conv_decode, conv_encode
from subtone.robust.layout import (
    BANDS,
    CELLS,
    GUARD_FRAMES,
    GUARD_SECONDS,
    HEADER_BYTES,
    HEADER_CELLS,
    HEADER_COPIES,
    PILOT_EVERY,
    RS_K,
    RS_N,
    RS_PARITY,
    TILE_FRAMES,
    _coded_bytes_for,
    _columns,
    capacity,
    capacity_frames,
    mix_capacity,
    working_length,
)
from subtone.robust.wire import Mix, Residual

__all__ = [
    "BANDS",
    "DELTA_DB",
    "GUARD_SECONDS",
    "KEY_BYTES",
    "PROBE_SECONDS",
    "PROBE_Z",
    "RATE",
    "CapacityExceeded",
    "ChannelDamaged",
    "Mix",
    "NoPayload",
    "Residual",
    "RobustError",
    "UnsuitableCover",
    "apply_residual",
    "as_mix",
    "capacity",
    "capacity_frames",
    "embed",
    "embed_mix",
    "extract",
    "extract_mix",
    "mix_capacity",
    "probe",
    "working_length",
    "working_mix",
]

KEY_BYTES = 32
VERSION = 2
DELTA_DB = 7.0
ITERATIONS = 6
GAIN_CAP_DB = 6.0
SNR_DB = 32.3  # the embedder's distortion budget: stego/cover SNR of the working-rate mix
SYNC_COLUMNS = 600  # columns (about 9.6 s) the offset search looks at
SYNC_OFFSETS = tuple(range(0, HOP, HOP // 8))
PRESENT_Z = 6.0  # pilot z-score above which a mark under this key is taken as present
# ... or the z-score of the pilots after the columns the search looked at: no maximum was taken
# over those, so a wrong key leaves them N(0, 1) and a lower bar is as safe (p = 3e-5).
PRESENT_Z_UNSEARCHED = 4.0
QUIET_STEP_DB = (
    10.0  # cells are weighted in groups by their quieter tile's level below the column's
)
QUIET_GROUPS = 6  # loudest: 0-10 dB, 10-20 dB, ... 50 dB and more
PRIOR_PILOTS = 20.0
PILOT_QUIET_DB = 30.0  # pilots weigh 1 down to 20 dB under their column's loudest, 0 from 30

# Opus's (CELT's) own band edges from 200 Hz: it codes each band's energy explicitly, so ratios
# of whole CELT bands survive it; ratios inside one band depend on its coarse shape coding.
_EDGES = band_edges_hz(
    (
        200,
        400,
        600,
        800,
        1000,
        1200,
        1400,
        1600,
        2000,
        2400,
        2800,
        3200,
        4000,
        4800,
        5600,
        6800,
        8000,
    )
)
_HEADER = struct.Struct(">BBI4s")  # version, flags, length, payload tag
_TAG = 4


UNSUITABLE_COVER = "unsuitable_cover"


class RobustError(SubtoneError):
    """A cover or marked file that cannot be used as asked (robust mode)."""

    status = 422


class NoPayload(RobustError, errors.NoPayload):
    """No payload under this key: a wrong passphrase, or a file that was never marked."""


class ChannelDamaged(RobustError, errors.ChannelDamaged):
    """A payload under this key is there, but the channel damaged it beyond correction."""


class CapacityExceeded(RobustError, errors.CapacityExceeded):
    """The payload does not fit the cover in robust mode."""


class UnsuitableCover(RobustError):
    """The cover's sound does not hold the marks: even unchanged, it would not read back."""

    code = UNSUITABLE_COVER


# ----------------------------------------------------------------------------- keying


def _subkey(k_pos: bytes, label: bytes) -> bytes:
    if len(k_pos) != KEY_BYTES:
        raise ValueError(f"k_pos has {KEY_BYTES} bytes, got {len(k_pos)}")
    return hmac.new(k_pos, b"subtone/robust/r2/" + label, hashlib.sha256).digest()


def _stream(k_pos: bytes, label: bytes, n: int) -> npt.NDArray[np.uint8]:
    """``n`` keyed bytes; a prefix of a longer stream (so a cropped file reads the same)."""
    return np.frombuffer(hashlib.shake_256(_subkey(k_pos, label)).digest(n), dtype=np.uint8)


@dataclass(frozen=True)
class _Keys:
    dither: npt.NDArray[np.float64]  # (cells,) in dB, uniform on [0, DELTA_DB)
    pilot: npt.NDArray[np.bool_]  # (cells,) this cell is a pilot
    pilot_bit: npt.NDArray[np.int64]  # (cells,) the pilot's bit (where pilot)


def _keys(k_pos: bytes, columns: int) -> _Keys:
    n = columns * CELLS
    d = _stream(k_pos, b"dither", 2 * n).view(">u2").astype(np.float64)
    dither = d / 65536.0 * DELTA_DB
    groups = math.ceil(n / PILOT_EVERY)
    choice = _stream(k_pos, b"pilot", groups).astype(np.int64) % PILOT_EVERY
    pilot = np.zeros(groups * PILOT_EVERY, dtype=bool)
    pilot[np.arange(groups) * PILOT_EVERY + choice] = True
    bits = _stream(k_pos, b"pilot-bits", n).astype(np.int64) & 1
    return _Keys(dither, pilot[:n], bits)


def _refuse_if_too_large(payload: bytes, room: int) -> None:
    if len(payload) > room:
        raise CapacityExceeded(
            f"The sealed secret has {len(payload):,} bytes; in robust mode this cover holds "
            f"{room:,} (about 100 bits per second of cover, less its first and last second): "
            "use a longer cover or a shorter secret."
        )


def _permutation(k_pos: bytes, label: bytes, n: int) -> npt.NDArray[np.int64]:
    """A keyed permutation of ``range(n)`` (the interleaver)."""
    r = _stream(k_pos, label, 4 * n).view(">u4")
    return np.asarray(np.argsort(r, kind="stable"), dtype=np.int64)


# ----------------------------------------------------------------------------- header


def _payload_tag(k_pos: bytes, payload: bytes) -> bytes:
    return hmac.new(_subkey(k_pos, b"payload-tag"), payload, hashlib.sha256).digest()[:_TAG]


def _seal_header(k_pos: bytes, payload: bytes) -> bytes:
    body = _HEADER.pack(VERSION, 0, len(payload), _payload_tag(k_pos, payload))
    tag = hmac.new(_subkey(k_pos, b"header-tag"), body, hashlib.sha256).digest()[:_TAG]
    mask = _subkey(k_pos, b"header-mask")[:HEADER_BYTES]
    plain = body + tag
    return bytes(a ^ b for a, b in zip(plain, mask, strict=True))


def _open_header(k_pos: bytes, sealed: bytes) -> tuple[int, bytes] | None:
    mask = _subkey(k_pos, b"header-mask")[:HEADER_BYTES]
    plain = bytes(a ^ b for a, b in zip(sealed, mask, strict=True))
    body, tag = plain[: _HEADER.size], plain[_HEADER.size :]
    want = hmac.new(_subkey(k_pos, b"header-tag"), body, hashlib.sha256).digest()[:_TAG]
    if not hmac.compare_digest(tag, want):
        return None
    version, _flags, length, payload_tag = _HEADER.unpack(body)
    return (length, payload_tag) if version == VERSION else None


def _bits(data: bytes) -> npt.NDArray[np.int64]:
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8)).astype(np.int64)


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


# ----------------------------------------------------------------------------- embedding


def _as_float(
    samples: npt.ArrayLike, scale: float | None = None
) -> tuple[npt.NDArray[np.float64], np.dtype[np.generic]]:
    """Samples in [-1, 1) and their dtype; integers are divided by ``scale`` (else by their
    dtype's full scale)."""
    a = np.asarray(samples)
    dtype = a.dtype
    if np.issubdtype(dtype, np.integer):
        full = scale if scale is not None else float(2 ** (8 * dtype.itemsize - 1))
        return a.astype(np.float64) / full, dtype
    if np.issubdtype(dtype, np.floating):
        return np.asarray(a, dtype=np.float64), dtype
    raise TypeError(f"samples must be integer or float, got {dtype}")


def _from_float(
    x: npt.NDArray[np.float64], dtype: np.dtype[np.generic], scale: float | None = None
) -> npt.NDArray[np.generic]:
    if np.issubdtype(dtype, np.integer):
        full = scale if scale is not None else float(2 ** (8 * dtype.itemsize - 1))
        out = np.clip(np.round(x * full), -full, full - 1)
    else:
        out = x if dtype == np.float64 else np.clip(x, -1.0, 1.0)
    return np.asarray(out, dtype=dtype)


def _mono(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The channels' mean, sample by sample (the same value whatever block a sample is read
    in: the client computes it block by block)."""
    if x.ndim == 1:
        return x
    acc = x[:, 0].copy()
    for c in range(1, x.shape[1]):
        acc += x[:, c]
    acc *= 1.0 / x.shape[1]
    return acc


def mono_mix(samples: npt.ArrayLike, *, scale: float | None = None) -> npt.NDArray[np.float64]:
    """The mono mix (channels' mean, in [-1, 1)) of ``samples``: int or float PCM, ``(n,)``
    or ``(n, channels)``; integers are divided by ``scale`` (else their dtype's full scale:
    give it for 24-bit samples held in int32)."""
    x, _ = _as_float(samples, scale)
    return _mono(x)


def working_mix(samples: npt.ArrayLike, rate: int) -> Mix:
    """What the marking works on: the mono mix at :data:`RATE` (16 kHz), in single
    precision. The robust mode's only view of the cover's audio: what the client sends the
    server."""
    return as_mix(resample(mono_mix(samples), rate, RATE))


def as_mix(m16: npt.NDArray[np.float64]) -> Mix:
    """A working-rate signal as a :data:`Mix` (rounded to single precision)."""
    return np.asarray(m16, dtype=np.float32)


def _mix_values(mix: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """A mix's samples in double precision, checked."""
    a = np.asarray(mix)
    if a.dtype != np.float32 or a.ndim != 1:
        raise RobustError("the working mix is mono single-precision float", code="bad_mix")
    if not np.all(np.isfinite(a)):
        raise RobustError("the working mix holds values that are not numbers", code="bad_mix")
    return a.astype(np.float64)


def add_residual(
    block: npt.NDArray[np.generic], delta: npt.NDArray[np.float64], *, scale: float | None = None
) -> npt.NDArray[np.generic]:
    """``block`` (int or float PCM, ``(n,)`` or ``(n, channels)``) with ``delta`` (``(n,)``,
    full scale 1) added to every channel, in its own dtype (rounded and clipped at ``scale``,
    else the dtype's full scale, for PCM)."""
    x, dtype = _as_float(block, scale)
    out = x + (delta if x.ndim == 1 else delta[:, None])
    return _from_float(out, dtype, scale)


def _tile_energies(
    e_frames: npt.NDArray[np.float64], start: int, columns: int
) -> npt.NDArray[np.float64]:
    """``(columns, BANDS)`` energies of tiles whose first column starts at frame ``start``."""
    cs = np.concatenate([np.zeros((1, e_frames.shape[1])), np.cumsum(e_frames, axis=0)])
    idx = start + TILE_FRAMES * np.arange(columns + 1)
    c = cs[idx]
    return np.asarray(c[1:] - c[:-1], dtype=np.float64) + 1e-12


def _ratios(tiles: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    db = 10.0 * np.log10(tiles)
    return np.asarray((db[:, 0::2] - db[:, 1::2]).ravel(), dtype=np.float64)


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


# ----------------------------------------------------------------------------- extraction


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
    return np.asarray(np.cos(2 * np.pi * (_ratios(tiles) - dither) / DELTA_DB), dtype=np.float64)


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
    db = 10.0 * np.log10(tiles)
    top = db.max(axis=1, keepdims=True)
    return np.asarray((np.minimum(db[:, 0::2], db[:, 1::2]) - top).ravel(), dtype=np.float64)


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
    w = np.clip((_quiet_db(tiles)[:n][p] + PILOT_QUIET_DB) / 10.0, 0.0, 1.0)
    if not p.any() or not w.any():
        return 0.0
    signed = soft[:n][p] * (1 - 2 * keys.pilot_bit[:n][p])
    return float((w * signed).sum() / math.sqrt(0.5 * (w * w).sum()))


def _search(m16: npt.NDArray[np.float64], k_pos: bytes) -> _Sync:
    """The alignment (sub-hop offset, first frame) whose pilots in the first
    :data:`SYNC_COLUMNS` columns correlate best with ``k_pos``'s, and their z-score."""
    max_start = GUARD_FRAMES + 8
    window = m16[: (max_start + SYNC_COLUMNS * TILE_FRAMES + 2) * HOP + FRAME]
    keys = _keys(k_pos, SYNC_COLUMNS)
    best = _Sync(0, 0, -math.inf)
    for off in SYNC_OFFSETS:
        e = frame_energies(stft(window[off:]), _EDGES)
        for start in range(0, max_start + 1):
            cols = min(SYNC_COLUMNS, (e.shape[0] - start) // TILE_FRAMES)
            if cols < 8:
                break
            tiles = _tile_energies(e, start, cols)
            soft = _soft(tiles, keys.dither[: cols * CELLS])
            z = _pilot_z(soft, tiles, keys, cols * CELLS)
            if z > best.z:
                best = _Sync(off, start, z)
    return best


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
    z = _search(_mix_values(mix), k_pos).z
    return 0.0 if not math.isfinite(z) else z


def _synchronise(
    m16: npt.NDArray[np.float64], k_pos: bytes
) -> tuple[_Sync, npt.NDArray[np.float64]]:
    best = _search(m16, k_pos)
    e = frame_energies(stft(m16[best.offset :]), _EDGES)
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


def _deinterleave(
    k_pos: bytes, label: bytes, soft: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    return np.asarray(soft[_permutation(k_pos, label, len(soft))], dtype=np.float64)


def _bytes(bits: npt.NDArray[np.int64]) -> bytes:
    return np.packbits(bits.astype(np.uint8)).tobytes()


def _outer_decode(coded: bytes, length: int) -> bytes | None:
    if RS_PARITY == 0:
        return coded[:length]
    from reedsolo import ReedSolomonError, RSCodec  # only with the outer code on

    rs = RSCodec(RS_PARITY)
    out = bytearray()
    for i in range(0, len(coded), RS_N):
        try:
            msg, _, _ = rs.decode(bytearray(coded[i : i + RS_N]))
        except ReedSolomonError:
            return None
        out += msg
    return bytes(out)


def extract(samples: npt.ArrayLike, rate: int, k_pos: bytes) -> bytes:
    """The payload marked under ``k_pos``. Raises :class:`NoPayload` when there is none under
    this key, :class:`ChannelDamaged` when there is one the channel destroyed."""
    a = np.asarray(samples)
    if a.ndim not in (1, 2) or a.shape[0] == 0:
        raise NoPayload(f"{errors.MESSAGES[errors.NO_PAYLOAD]} (the file has no samples)")
    return extract_mix(working_mix(a, rate), k_pos)


def _say(code: str, detail: str) -> str:
    """The shared message of ``code`` (:data:`subtone.errors.MESSAGES`), with a detail."""
    return f"{errors.MESSAGES[code][:-1]} ({detail})."


def extract_mix(mix: Mix, k_pos: bytes) -> bytes:
    """:func:`extract` on the working mix (:func:`working_mix`) of the file."""
    m16 = _mix_values(mix)
    sync, data = _synchronise(m16, k_pos)
    present = sync.z >= PRESENT_Z or sync.z_unsearched >= PRESENT_Z_UNSEARCHED
    if len(data) < HEADER_CELLS:
        if present:
            raise ChannelDamaged(_say(errors.CHANNEL_DAMAGED, "the file is cut too short"))
        raise NoPayload(_say(errors.NO_PAYLOAD, "the file is too short to hold one"))
    hsoft = _deinterleave(k_pos, b"perm-header", data[:HEADER_CELLS])
    hsoft = hsoft.reshape(HEADER_COPIES, -1).sum(axis=0)
    sealed = _bytes(conv_decode(hsoft))
    opened = _open_header(k_pos, sealed)
    if opened is None:
        if present:
            raise ChannelDamaged(
                _say(
                    errors.CHANNEL_DAMAGED,
                    f"its marks are there, pilot z = {sync.z:.1f}, its header is not",
                )
            )
        raise NoPayload(_say(errors.NO_PAYLOAD, f"pilot z = {sync.z:.1f}"))
    length, payload_tag = opened
    coded = _coded_bytes_for(length)
    n = coded_length(coded * 8)
    body = data[HEADER_CELLS : HEADER_CELLS + n]
    if len(body) < n:
        raise ChannelDamaged(_say(errors.CHANNEL_DAMAGED, "the message's end is cut off"))
    word = _bytes(conv_decode(_deinterleave(k_pos, b"perm-payload", body)))
    out = _outer_decode(word, length)
    if out is None or not hmac.compare_digest(_payload_tag(k_pos, out), payload_tag):
        raise ChannelDamaged(
            _say(errors.CHANNEL_DAMAGED, "more errors than the error correction repairs")
        )
    return out
