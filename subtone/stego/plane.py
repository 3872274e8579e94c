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
made by :func:`lsb_plane` and read by :func:`~subtone.stego.codec.extract_plane` and
:func:`~subtone.stego.codec.embed_plane`; :func:`header_from_plane` reads the payload header
from window 0 alone. This module (like :mod:`~subtone.stego.pcm` and
:mod:`~subtone.stego.patch`) needs numpy only: the client never loads the compiled kernel.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final

import numpy as np

from subtone.errors import SubtoneError
from subtone.stego import layout, wav
from subtone.stego.pcm import first_positions, pack_lsb
from subtone.stego.window import WINDOW_SAMPLES, UInt8Array
from subtone.stego.window import plane_bytes as packed_bytes

__all__ = [
    "HEADER",
    "MAGIC",
    "MALFORMED_PLANE",
    "MEDIA_TYPE",
    "PlaneError",
    "PlaneHeader",
    "header_from_plane",
    "iter_plane",
    "lsb_plane",
    "plane_bytes",
    "plane_size",
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


def plane_size(samples: int) -> int:
    """Bytes of the packed LSB plane of a file of ``samples`` samples (no header)."""
    return packed_bytes(samples)


def plane_bytes(samples: int) -> int:
    """Bytes of a plane object for a file of ``samples`` samples, header included."""
    return HEADER.size + packed_bytes(samples)


def lsb_plane(stream: BinaryIO, info: wav.WavInfo) -> Iterator[UInt8Array]:
    """The packed LSB plane of the data chunk at ``stream``'s position, one window at a time
    (:data:`~subtone.stego.window.WINDOW_BYTES` bytes, the last window fewer). Reads exactly
    the data chunk."""
    for data in wav.read_raw_windows(stream, info, WINDOW_SAMPLES):
        yield pack_lsb(data, info.bits_per_sample)


def header_from_plane(
    window0_plane: UInt8Array | bytes, samples: int, k_pos: bytes
) -> layout.Header:
    """The payload header read from window 0's LSB plane: refuses a wrong ``k_pos`` (or a
    file without a payload) locally, before any upload. The header's bits are the LSBs at
    window 0's first :data:`~subtone.stego.layout.HEADER_BITS` keyed positions (k = 1)."""
    if samples <= layout.HEADER_BITS:
        raise layout.StegoError(
            "This file is too short to hold a Subtone message.", code="no_payload"
        )
    length = layout.window_length(samples, 0)
    plane = np.frombuffer(bytes(window0_plane), dtype=np.uint8)
    if plane.size < packed_bytes(length):
        raise ValueError(f"window 0's plane has {packed_bytes(length)} bytes, got {plane.size}")
    where = first_positions(layout.window_key(k_pos, 0), length, layout.HEADER_BITS)
    bits = (plane[where >> 3] >> (where & 7).astype(np.uint8)) & 1
    return layout.open_header(k_pos, np.packbits(bits).tobytes(), samples)


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
    for window in lsb_plane(src, info):
        yield window.tobytes()


def write_plane(src: BinaryIO, dst: BinaryIO) -> PlaneHeader:
    """Read the WAV in ``src`` from its start and write its LSB plane to ``dst``."""
    info, _ = wav.read_header(src)
    for piece in iter_plane(src, info):
        dst.write(piece)
    return PlaneHeader(samples=info.samples, bits_per_sample=info.bits_per_sample)
