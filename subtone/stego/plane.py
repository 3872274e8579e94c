"""The LSB plane: what the server reads of a cover or a stego file, and nothing audible.

Embedding and extraction only ever look at the least significant bit of each sample (which
samples, and in which order, is decided by ``k_pos``). So the client sends a *plane*, one bit
per PCM sample, instead of the audio: 1/16 of a 16-bit file, 1/24 of a 24-bit one. The server
never holds the cover's samples; the client applies the job's patch to its own cover
(:mod:`subtone.stego.patch`).

Object format (version 1), little-endian::

    magic "STPL" | version u8 | bits_per_sample u8 | reserved u16 (0) | samples u64
    bits: ceil(samples / 8) bytes; bit i (LSB first in each byte) = LSB of sample i

Samples are the data chunk's, all channels interleaved as in the file. A window of
:data:`~subtone.stego.kernel.WINDOW_SAMPLES` samples is exactly
:data:`~subtone.stego.kernel.WINDOW_BYTES` bytes of the plane, so window ``w`` starts at byte
``HEADER.size + w * WINDOW_BYTES``: the header window (window 0) comes first. The bits are
made by :func:`subtone.stego.codec.lsb_plane` and read by :func:`~subtone.stego.codec.extract_plane`
and :func:`~subtone.stego.codec.embed_plane`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final

from subtone.errors import SubtoneError
from subtone.stego import codec, wav

__all__ = [
    "HEADER",
    "MAGIC",
    "MALFORMED_PLANE",
    "MEDIA_TYPE",
    "PlaneError",
    "PlaneHeader",
    "iter_plane",
    "plane_bytes",
    "read_plane_header",
    "write_plane",
]

MAGIC: Final = b"STPL"
VERSION: Final = 1
HEADER: Final = struct.Struct("<4sBBHQ")
MEDIA_TYPE: Final = "application/vnd.subtone.lsb-plane"
MALFORMED_PLANE: Final = "malformed_plane"


class PlaneError(SubtoneError):
    """Bytes that are not an LSB plane this version reads."""

    code = MALFORMED_PLANE
    status = 422


def plane_bytes(samples: int) -> int:
    """Bytes of a plane object for a file of ``samples`` samples, header included."""
    return HEADER.size + codec.plane_size(samples)


@dataclass(frozen=True)
class PlaneHeader:
    samples: int
    bits_per_sample: int

    def pack(self) -> bytes:
        return HEADER.pack(MAGIC, VERSION, self.bits_per_sample, 0, self.samples)

    @property
    def size(self) -> int:
        """The whole object's size in bytes."""
        return plane_bytes(self.samples)


def read_plane_header(stream: BinaryIO, object_size: int | None = None) -> PlaneHeader:
    """The header at the start of ``stream``, checked against the object's size if known."""
    raw = stream.read(HEADER.size)
    if len(raw) < HEADER.size:
        raise PlaneError("The input is too short to be an LSB plane.")
    magic, version, bits, reserved, samples = HEADER.unpack(raw)
    if magic != MAGIC or reserved != 0:
        raise PlaneError("The input is not an LSB plane (wrong magic).")
    if version != VERSION:
        raise PlaneError(f"LSB plane version {version} is not supported (this reads {VERSION}).")
    if bits not in wav.SUPPORTED_BITS or samples == 0:
        raise PlaneError(f"The LSB plane's header is invalid ({bits} bits, {samples} samples).")
    header = PlaneHeader(samples=samples, bits_per_sample=bits)
    if object_size is not None and object_size != header.size:
        raise PlaneError(
            f"The LSB plane has {object_size:,} bytes; {samples:,} samples need {header.size:,}."
        )
    return header


def iter_plane(src: BinaryIO, info: wav.WavInfo) -> Iterator[bytes]:
    """The plane's bytes (header first, then window by window) of the WAV in ``src``,
    positioned at its samples; reads exactly the data chunk, once."""
    yield PlaneHeader(samples=info.samples, bits_per_sample=info.bits_per_sample).pack()
    for window in codec.lsb_plane(src, info):
        yield window.tobytes()


def write_plane(src: BinaryIO, dst: BinaryIO) -> PlaneHeader:
    """Read the WAV in ``src`` from its start and write its LSB plane to ``dst``."""
    info, _ = wav.read_header(src)
    for piece in iter_plane(src, info):
        dst.write(piece)
    return PlaneHeader(samples=info.samples, bits_per_sample=info.bits_per_sample)
