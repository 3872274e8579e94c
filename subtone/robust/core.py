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
  cost more than the SNR budget (:data:`~subtone.robust.embedding.SNR_DB`) allows go part of
  the way (water filling).
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

This module holds what the stages share (the format's constants and errors, the keying, the
header, the working mix); the stages are :mod:`subtone.robust.embedding`,
:mod:`subtone.robust.sync` and :mod:`subtone.robust.extraction`.
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
    RATE,
    band_edges_hz,
    resample,
)
from subtone.robust.layout import (
    BANDS,
    CELLS,
    GUARD_SECONDS,
    HEADER_BYTES,
    PILOT_EVERY,
    TILE_FRAMES,
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
    "RATE",
    "CapacityExceeded",
    "ChannelDamaged",
    "Mix",
    "NoPayload",
    "Residual",
    "RobustError",
    "UnsuitableCover",
    "as_mix",
    "capacity",
    "capacity_frames",
    "mix_capacity",
    "working_length",
    "working_mix",
]

KEY_BYTES = 32
VERSION = 2
DELTA_DB = 7.0

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


# ----------------------------------------------------------------------------- the working mix


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


def _mix_samples(mix: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """A mix's samples, checked, as they came (single precision: the STFT's own precision,
    so the stages read them without a double-precision copy)."""
    a = np.asarray(mix)
    if a.dtype != np.float32 or a.ndim != 1:
        raise RobustError("the working mix is mono single-precision float", code="bad_mix")
    if not np.all(np.isfinite(a)):
        raise RobustError("the working mix holds values that are not numbers", code="bad_mix")
    return a


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
    """``(columns, BANDS)`` energies of tiles whose first column starts at frame ``start``.
    Each tile is summed from its own frames alone (no running sum over the cover): a tile's
    value does not depend on what came before it, so a block of frames gives the same
    values as the whole, and a quiet tile keeps its precision."""
    e = e_frames[start : start + columns * TILE_FRAMES]
    if TILE_FRAMES > 1:
        e = e.reshape(columns, TILE_FRAMES, -1).sum(axis=1)
    return np.asarray(e + 1e-12, dtype=np.float64)


def _ratios(tiles: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return _ratios_of(10.0 * np.log10(tiles))


def _ratios_of(db: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """:func:`_ratios` of tiles whose levels in dB are given."""
    return np.asarray((db[:, 0::2] - db[:, 1::2]).ravel(), dtype=np.float64)
