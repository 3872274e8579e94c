"""What travels in robust mode: the working mix up, the residual back.

Robust marking reads the cover's *audio*, not its LSB plane, so the client sends the least it
can: the **working mix** (:func:`subtone.robust.core.working_mix`): the channels' mean,
resampled to 16 kHz (nothing above 8 kHz), as 32-bit floats: 64 kB per second of cover, 1/2.8
of a 44.1 kHz stereo 16-bit file (1/4.1 of a 24-bit one), whatever the cover's own format.
Floats, not 16-bit PCM: a 16-bit floor drowns the quiet bands between a tonal cover's partials
and costs cells (docs/robust.md). The server sees that mix: a
mono, band-limited copy of the cover's audio (docs/robust.md, "What travels"). The secret
stays sealed (AEAD) as in the LSB mode.

An embed's result is the **residual**: what marking adds to the mix, over the marked span only,
in half precision (16 bits a sample). The client resamples it to its cover's rate and adds it
to every channel of its own cover in one streaming copy (:func:`subtone.robust.files.
apply_residual_file`); the stego file is byte-identical to an in-process
:func:`~subtone.robust.files.embed_file` of the same inputs.

Object formats (version 1), little-endian::

    mix:       magic "SRMX" | version u8 | reserved 3 bytes (0) | samples u64
               then samples × float32
    residual:  magic "SRRS" | version u8 | reserved 3 bytes (0) | length u64 | start u64 |
               count u64, then count × float16 (mix samples start .. start + count - 1)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO, Final

import numpy as np
import numpy.typing as npt

from subtone.errors import SubtoneError
from subtone.robust.layout import RATE

__all__ = [
    "MALFORMED_MIX",
    "MALFORMED_RESIDUAL",
    "MIX_HEADER",
    "MIX_MEDIA_TYPE",
    "RESIDUAL_HEADER",
    "RESIDUAL_MEDIA_TYPE",
    "Mix",
    "Residual",
    "WireError",
    "mix_bytes",
    "read_mix",
    "read_mix_header",
    "read_mix_samples",
    "read_residual",
    "residual_bytes",
    "write_mix",
    "write_mix_header",
    "write_mix_samples",
    "write_residual",
]

Mix = npt.NDArray[np.float32]
"""A working mix: mono, at :data:`~subtone.robust.layout.RATE`, full scale 1, single
precision. Single, not 16-bit PCM: the ratios of quiet bands (80-100 dB under a tonal cover's
partials) survive float32 and not a 16-bit floor, and only this precision reaches the STFT
anyway."""


@dataclass(frozen=True, eq=False)
class Residual:
    """What marking adds to the working mix: ``samples`` from working-rate sample ``start``
    on (zero elsewhere), in a mix of ``length`` samples. Half precision: its rounding error
    is ~66 dB under the residual, itself ~30 dB under the cover."""

    start: int
    samples: npt.NDArray[np.float16]
    length: int

    def at_rate(self, rate: int, frames: int) -> npt.NDArray[np.float64]:
        """The residual resampled to the cover's ``rate``, ``frames`` long (what is added to
        every channel)."""
        from subtone.robust._dsp import resample  # scipy: only when it is used

        full = np.zeros(self.length)
        full[self.start : self.start + len(self.samples)] = self.samples
        delta = resample(full, RATE, rate)
        if len(delta) < frames:
            delta = np.pad(delta, (0, frames - len(delta)))
        return delta[:frames]


MIX_MAGIC: Final = b"SRMX"
RESIDUAL_MAGIC: Final = b"SRRS"
VERSION: Final = 1
MIX_HEADER: Final = struct.Struct("<4sB3sQ")
RESIDUAL_HEADER: Final = struct.Struct("<4sB3sQQQ")
MIX_MEDIA_TYPE: Final = "application/vnd.subtone.robust-mix"
RESIDUAL_MEDIA_TYPE: Final = "application/vnd.subtone.robust-residual"
MALFORMED_MIX: Final = "malformed_mix"
MALFORMED_RESIDUAL: Final = "malformed_residual"
_FLOAT: Final = np.dtype("<f4")
_HALF: Final = np.dtype("<f2")
_READ_CHUNK: Final = 1 << 20


class WireError(SubtoneError):
    """Bytes that are not a robust mix or residual this version reads."""

    status = 422


def mix_bytes(samples: int) -> int:
    """Bytes of a mix object of ``samples`` samples, header included."""
    return MIX_HEADER.size + samples * _FLOAT.itemsize


def residual_bytes(count: int) -> int:
    """Bytes of a residual object of ``count`` samples, header included."""
    return RESIDUAL_HEADER.size + count * _HALF.itemsize


def write_mix(dst: BinaryIO, mix: Mix) -> int:
    """Write ``mix`` as a mix object; returns the bytes written."""
    write_mix_header(dst, len(mix))
    return MIX_HEADER.size + write_mix_samples(dst, mix)


def write_mix_header(dst: BinaryIO, samples: int) -> None:
    """A mix object's header, for ``samples`` samples that :func:`write_mix_samples` writes
    next (a mix written as it is made)."""
    dst.write(MIX_HEADER.pack(MIX_MAGIC, VERSION, bytes(3), samples))


def write_mix_samples(dst: BinaryIO, piece: Mix) -> int:
    """Write the next samples of a mix object; returns the bytes written."""
    data = np.ascontiguousarray(piece, dtype=_FLOAT).tobytes()
    dst.write(data)
    return len(data)


def _exact(src: BinaryIO, size: int, what: str, code: str) -> bytes:
    data = src.read(size)
    if len(data) != size:
        raise WireError(f"The {what} ends early.", code=code)
    return data


def read_mix_header(src: BinaryIO, size: int | None = None) -> int:
    """The samples a mix object holds, its header checked (against its ``size`` if known)."""
    magic, version, _, samples = MIX_HEADER.unpack(
        _exact(src, MIX_HEADER.size, "mix", MALFORMED_MIX)
    )
    if magic != MIX_MAGIC or version != VERSION:
        raise WireError("This is not a robust-mode mix this server reads.", code=MALFORMED_MIX)
    if size is not None and size != mix_bytes(samples):
        raise WireError(
            f"The mix announces {samples:,} samples ({mix_bytes(samples):,} bytes) but has "
            f"{size:,} bytes.",
            code=MALFORMED_MIX,
        )
    return int(samples)


def read_mix(src: BinaryIO, size: int | None = None) -> Mix:
    """A whole mix object."""
    return read_mix_samples(src, read_mix_header(src, size))


def read_mix_samples(src: BinaryIO, samples: int) -> Mix:
    """A mix object's ``samples`` samples (its header already read), read straight into the
    array that is returned, a megabyte at a time (no whole copy of a long cover's bytes)."""
    data = bytearray(samples * _FLOAT.itemsize)
    view, got = memoryview(data), 0
    while got < len(data):
        chunk = src.read(min(_READ_CHUNK, len(data) - got))
        if not chunk:
            raise WireError("The mix ends early.", code=MALFORMED_MIX)
        view[got : got + len(chunk)] = chunk
        got += len(chunk)
    mix = np.frombuffer(data, dtype=_FLOAT).astype(np.float32, copy=False)
    if not np.all(np.isfinite(mix)):
        raise WireError("The mix holds values that are not numbers.", code=MALFORMED_MIX)
    return mix


def write_residual(dst: BinaryIO, residual: Residual) -> int:
    """Write ``residual`` as a residual object; returns the bytes written."""
    data = np.ascontiguousarray(residual.samples, dtype=_HALF).tobytes()
    count = len(residual.samples)
    dst.write(
        RESIDUAL_HEADER.pack(
            RESIDUAL_MAGIC, VERSION, bytes(3), residual.length, residual.start, count
        )
    )
    dst.write(data)
    return RESIDUAL_HEADER.size + len(data)


def read_residual(src: BinaryIO, size: int | None = None) -> Residual:
    """A whole residual object, checked (against its ``size`` if known)."""
    magic, version, _, length, start, count = RESIDUAL_HEADER.unpack(
        _exact(src, RESIDUAL_HEADER.size, "residual", MALFORMED_RESIDUAL)
    )
    if magic != RESIDUAL_MAGIC or version != VERSION:
        raise WireError("This is not a robust-mode residual.", code=MALFORMED_RESIDUAL)
    if start + count > length or (size is not None and size != residual_bytes(count)):
        raise WireError("The residual's header does not match its size.", code=MALFORMED_RESIDUAL)
    data = _exact(src, count * _HALF.itemsize, "residual", MALFORMED_RESIDUAL)
    samples = np.frombuffer(data, dtype=_HALF).astype(np.float16)
    if not np.all(np.isfinite(samples)):
        raise WireError("The residual holds values that are not numbers.", code=MALFORMED_RESIDUAL)
    return Residual(int(start), samples, int(length))
