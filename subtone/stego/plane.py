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
:data:`~subtone.stego.kernel.WINDOW_SAMPLES` samples is exactly :data:`WINDOW_PLANE_BYTES`
bytes of the plane, so window ``w`` starts at byte ``HEADER.size + w * WINDOW_PLANE_BYTES``:
the header window (window 0) comes first, and a reader can stop after it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final

import numpy as np
import numpy.typing as npt

from subtone.errors import SubtoneError
from subtone.stego import wav
from subtone.stego.kernel import WINDOW_SAMPLES

__all__ = [
    "HEADER",
    "MAGIC",
    "MALFORMED_PLANE",
    "MEDIA_TYPE",
    "WINDOW_PLANE_BYTES",
    "PlaneError",
    "PlaneHeader",
    "iter_plane",
    "lsb_bits",
    "plane_bytes",
    "read_plane_header",
    "read_plane_windows",
    "write_plane",
]

MAGIC: Final = b"STPL"
VERSION: Final = 1
HEADER: Final = struct.Struct("<4sBBHQ")
MEDIA_TYPE: Final = "application/vnd.subtone.lsb-plane"
MALFORMED_PLANE: Final = "malformed_plane"
WINDOW_PLANE_BYTES: Final = WINDOW_SAMPLES // 8
READ_WINDOWS: Final = 16
"""Windows of audio read at once when making a plane (8 MiB of 16-bit audio)."""

UInt8Array = npt.NDArray[np.uint8]


class PlaneError(SubtoneError):
    """Bytes that are not an LSB plane this version reads."""

    code = MALFORMED_PLANE
    status = 422


def plane_bytes(samples: int) -> int:
    """Bytes of a plane object for a file of ``samples`` samples, header included."""
    return HEADER.size + (samples + 7) // 8


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


def read_plane_windows(stream: BinaryIO, samples: int) -> Iterator[UInt8Array]:
    """The plane's bits window by window (after its header), as packed bytes."""
    left = (samples + 7) // 8
    while left:
        want = min(WINDOW_PLANE_BYTES, left)
        data = stream.read(want)
        if len(data) != want:
            raise PlaneError("The LSB plane ends before its last window.")
        left -= want
        yield np.frombuffer(data, dtype=np.uint8)


def lsb_bits(data: bytes | memoryview, bits_per_sample: int) -> UInt8Array:
    """The packed LSBs (LSB first) of little-endian PCM ``data``: one strided byte per sample."""
    step = bits_per_sample // 8
    low = np.frombuffer(data, dtype=np.uint8)[::step]
    packed: UInt8Array = np.packbits(low & 1, bitorder="little")
    return packed


def _fill(src: BinaryIO, view: memoryview) -> int:
    """Read into all of ``view`` unless the stream ends first; the bytes read."""
    got = 0
    while got < len(view):
        count = src.readinto(view[got:])  # type: ignore[attr-defined]
        if not count:
            break
        got += count
    return got


def iter_plane(src: BinaryIO, info: wav.WavInfo) -> Iterator[bytes]:
    """The plane's bytes (header first) of the WAV in ``src``, positioned at its samples."""
    yield PlaneHeader(samples=info.samples, bits_per_sample=info.bits_per_sample).pack()
    chunk = WINDOW_SAMPLES * READ_WINDOWS * info.sample_bytes
    view = memoryview(bytearray(chunk))
    done = 0
    while done < info.data_size:
        want = min(chunk, info.data_size - done)
        got = _fill(src, view[:want])
        if got < want:
            raise wav.WavError(
                f"The file is truncated: its data chunk announces {info.data_size:,} bytes of "
                f"audio but the file ends after {done + got:,}.",
                code=wav.TRUNCATED,
            )
        done += got
        # Every chunk but the last is whole windows: each starts on a byte of the plane.
        yield lsb_bits(view[:got], info.bits_per_sample).tobytes()


def write_plane(src: BinaryIO, dst: BinaryIO) -> PlaneHeader:
    """Read the WAV in ``src`` from its start and write its LSB plane to ``dst``."""
    info, _ = wav.read_header(src)
    for piece in iter_plane(src, info):
        dst.write(piece)
    return PlaneHeader(samples=info.samples, bits_per_sample=info.bits_per_sample)
