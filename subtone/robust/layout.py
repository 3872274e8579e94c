"""The robust mode's layout: what a cover of a given length carries (numpy-free arithmetic,
no scipy: the app and the CLI show capacities without loading the signal processing).

A cover's **working mix** is its channels' mean at :data:`RATE`; its STFT (:data:`FRAME`,
:data:`HOP`) is cut into columns of :data:`TILE_FRAMES` frames, each holding :data:`CELLS`
cells; the first and last :data:`GUARD_SECONDS` are not marked; one cell in
:data:`PILOT_EVERY` is a pilot; the data cells carry the header's :data:`HEADER_COPIES`
copies, then the payload, in a rate-1/4 code (:mod:`subtone.robust._fec`).
"""

from __future__ import annotations

import math

from subtone.robust._fec import RATE_INV, TAIL, coded_length

__all__ = [
    "BANDS",
    "CELLS",
    "COLUMN",
    "FRAME",
    "GUARD_FRAMES",
    "GUARD_SECONDS",
    "HEADER_BYTES",
    "HEADER_CELLS",
    "HEADER_COPIES",
    "HOP",
    "PILOT_EVERY",
    "RATE",
    "RS_K",
    "RS_N",
    "RS_PARITY",
    "TILE_FRAMES",
    "capacity",
    "capacity_frames",
    "mix_capacity",
    "working_length",
]

RATE = 16_000
"""The working rate: every cover is analysed (and marked) below 8 kHz at 16 kHz."""
FRAME = 512
HOP = FRAME // 2
BANDS = 16
CELLS = BANDS // 2  # cells per column
TILE_FRAMES = 1
COLUMN = HOP * TILE_FRAMES  # working-rate samples per column (16 ms)
PILOT_EVERY = 16
GUARD_SECONDS = 1.1
GUARD_FRAMES = math.ceil(GUARD_SECONDS * RATE / HOP)
HEADER_BYTES = 14
HEADER_COPIES = 2
HEADER_CELLS = coded_length(HEADER_BYTES * 8) * HEADER_COPIES
RS_N = 255
RS_PARITY = 0  # outer Reed–Solomon parity bytes per codeword (0: the convolutional code alone)
RS_K = RS_N - RS_PARITY


def _columns(samples_at_rate: int) -> int:
    """Marked columns in a cover of ``samples_at_rate`` working-rate samples."""
    usable = samples_at_rate - 2 * GUARD_FRAMES * HOP - (FRAME - HOP)
    return max(0, usable // COLUMN)


def _data_cells(columns: int) -> int:
    n = columns * CELLS
    full, rest = divmod(n, PILOT_EVERY)
    return full * (PILOT_EVERY - 1) + max(0, rest - 1)


def _payload_bytes_for(coded_bytes: int) -> int:
    if RS_PARITY == 0:
        return coded_bytes
    full, rest = divmod(coded_bytes, RS_N)
    return full * RS_K + max(0, rest - RS_PARITY)


def _coded_bytes_for(payload_bytes: int) -> int:
    if RS_PARITY == 0:
        return payload_bytes
    full, rest = divmod(payload_bytes, RS_K)
    return full * RS_N + (rest + RS_PARITY if rest else 0)


def working_length(frames: int, rate: int) -> int:
    """Samples of the working mix of ``frames`` samples at ``rate`` (what
    :func:`subtone.robust.core.working_mix` returns)."""
    return math.ceil(frames * RATE / rate)


def mix_capacity(mix_samples: int) -> int:
    """Payload bytes a working mix of ``mix_samples`` samples carries."""
    cells = _data_cells(_columns(mix_samples))
    coded = max(0, (cells - HEADER_CELLS) // RATE_INV - TAIL) // 8
    return _payload_bytes_for(coded)


def capacity_frames(frames: int, rate: int) -> int:
    """Payload bytes a cover of ``frames`` samples (per channel) at ``rate`` carries in robust
    mode: known from the file's header alone."""
    if frames <= 0 or rate <= 0:
        return 0
    return mix_capacity(working_length(frames, rate))


def capacity(duration_seconds: float, sample_rate: int) -> int:
    """Payload bytes a cover of this duration carries in robust mode (from the header alone)."""
    if duration_seconds <= 0 or sample_rate <= 0:
        return 0
    return capacity_frames(int(duration_seconds * sample_rate), sample_rate)
