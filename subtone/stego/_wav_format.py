"""What a WAV header holds: error codes, limits, the chunk layouts, :class:`WavError`,
:class:`WavInfo`, and the ``fmt`` chunk's parsing (which formats are accepted).

Private: the public names are re-exported by :mod:`subtone.stego.wav`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from subtone.errors import SubtoneError

# Error codes (stable: never renamed once released).
NOT_WAV: Final = "not_wav"
TRUNCATED: Final = "truncated"
UNSUPPORTED_FORMAT: Final = "unsupported_format"
NO_DATA_CHUNK: Final = "no_data_chunk"
EMPTY_AUDIO: Final = "empty_audio"
MALFORMED_WAV: Final = "malformed_wav"
UNKNOWN_LENGTH: Final = "unknown_length"

UNKNOWN_SIZE_MARKERS: Final = frozenset({0, 0xFFFF_FFFF, 0x7FFF_F000})
"""Data chunk sizes that streaming tools write when they cannot seek back: 0 and 0xFFFFFFFF
(recorders, pipes), 0x7FFFF000 (sox, rounded down to whole frames). Read as "to the end of the
file" when the file is not exactly that long (see ``_wav_read._resolve_data_size``)."""
SOX_UNKNOWN_SIZE: Final = 0x7FFF_F000

MiB: Final = 1 << 20
MAX_METADATA_CHUNK_BYTES: Final = 64 * MiB
"""Largest chunk accepted before ``data``: it is metadata, held in memory as part of the prefix."""
MAX_PREFIX_BYTES: Final = 64 * MiB
"""Largest prefix (all chunks before the samples together) held in memory."""
MAX_PREFIX_CHUNKS: Final = 1024
"""Most chunks accepted before ``data`` (real files have a handful): millions of empty chunks
in a small file would otherwise cost a Python loop turn and an object each."""
READ_PIECE_BYTES: Final = 1 * MiB
"""Most bytes asked of the stream per call while reading the prefix (bounds allocation by what
the stream really holds, not by what a hostile header claims)."""
DEFAULT_COPY_CHUNK_BYTES: Final = 1 * MiB
COVER_BLOCK_FRAMES: Final = 1 << 16
"""Frames generated and written at a time by :func:`generate_cover`."""
COVER_TONES: Final = 3
COVER_LOW_HZ: Final = 80
COVER_HIGH_HZ: Final = 4000
COVER_NOISE_FRACTION: Final = 0.05
"""Peak of the cover's uniform noise, as a fraction of full scale."""

SUPPORTED_BITS: Final = (16, 24, 32)

WAVE_FORMAT_PCM: Final = 0x0001
WAVE_FORMAT_IEEE_FLOAT: Final = 0x0003
WAVE_FORMAT_ALAW: Final = 0x0006
WAVE_FORMAT_MULAW: Final = 0x0007
WAVE_FORMAT_EXTENSIBLE: Final = 0xFFFE
_FORMAT_NAMES: Final = {
    0x0002: "Microsoft ADPCM",
    WAVE_FORMAT_IEEE_FLOAT: "floating-point",
    WAVE_FORMAT_ALAW: "A-law",
    WAVE_FORMAT_MULAW: "µ-law",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0050: "MPEG",
    0x0055: "MPEG Layer 3 (MP3)",
    0x00FF: "AAC",
    0x1610: "HE-AAC",
    0x6750: "Ogg Vorbis",
    0xF1AC: "FLAC",
}

GUID_TAIL: Final = b"\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
"""The last 12 bytes of every KSDATAFORMAT_SUBTYPE_* GUID that wraps a WAVE format tag."""
KSDATAFORMAT_SUBTYPE_PCM: Final = struct.pack("<I", WAVE_FORMAT_PCM) + GUID_TAIL
KSDATAFORMAT_SUBTYPE_IEEE_FLOAT: Final = struct.pack("<I", WAVE_FORMAT_IEEE_FLOAT) + GUID_TAIL

RIFF_ID: Final = b"RIFF"
WAVE_ID: Final = b"WAVE"
FMT_ID: Final = b"fmt "
DATA_ID: Final = b"data"
OTHER_CONTAINERS: Final = {
    b"RIFX": "big-endian RIFX",
    b"RF64": "RF64 (64-bit RIFF)",
    b"BW64": "BW64 (64-bit Broadcast Wave)",
}

RIFF_HEADER = struct.Struct("<4sI4s")
CHUNK_HEADER = struct.Struct("<4sI")
FMT_BASIC = struct.Struct("<HHIIHH")
"""format tag, channels, sample rate, byte rate, block align, bits per sample."""
FMT_EXTENSION = struct.Struct("<HHI16s")
"""cbSize, valid bits per sample, channel mask, sub-format GUID."""
FMT_EXTENSIBLE_BYTES: Final = FMT_BASIC.size + FMT_EXTENSION.size
EXTENSION_BYTES: Final = FMT_EXTENSION.size - 2
"""cbSize of WAVE_FORMAT_EXTENSIBLE: the bytes after the cbSize field."""
MAX_CHUNK_SIZE: Final = 0xFFFF_FFFF

SPEAKER_MASKS: Final = {1: 0x4, 2: 0x3}
"""Channel masks written for mono (front centre) and stereo (front left + right)."""

Samples = npt.NDArray[np.int32]
IntArray = npt.NDArray[np.integer[Any]]


class WavError(SubtoneError):
    """A file that is not a WAV this project can use; ``code`` says why."""

    code = MALFORMED_WAV
    status = 422


@dataclass(frozen=True)
class WavInfo:
    """What the header says about the samples, and where they lie in the file."""

    channels: int
    sample_rate: int
    bits_per_sample: int
    """Container bits per sample: 16, 24 or 32."""
    valid_bits: int
    block_align: int
    """Bytes per frame (all channels)."""
    format_tag: int
    """``WAVE_FORMAT_PCM`` (1) or ``WAVE_FORMAT_EXTENSIBLE`` (0xFFFE)."""
    data_size: int
    """Bytes of samples: the data chunk's size, or for a streamed file (``size_known`` false)
    the whole frames between the prefix and the end of the file."""
    frames: int
    samples: int
    """``frames * channels``: the int32 values :func:`read_windows` yields in total."""
    riff_size: int
    """The RIFF header's size field, as written (not checked)."""
    prefix_size: int
    """Bytes before the first sample: ``len(prefix)``."""
    size_known: bool = True
    """False when the data chunk's size was a streaming placeholder and ``data_size`` comes
    from the file's size."""

    @property
    def sample_bytes(self) -> int:
        return self.bits_per_sample // 8

    @property
    def duration_seconds(self) -> float:
        return self.frames / self.sample_rate


def _format_name(tag: int) -> str:
    name = _FORMAT_NAMES.get(tag)
    return f"format tag 0x{tag:04X}" + (f" ({name})" if name else "")


def _unsupported(found: str) -> WavError:
    return WavError(
        f"{found} is not supported; use 16- or 24-bit PCM WAV.", code=UNSUPPORTED_FORMAT
    )


@dataclass(frozen=True)
class Format:
    format_tag: int
    channels: int
    sample_rate: int
    block_align: int
    bits_per_sample: int
    valid_bits: int


def parse_fmt(body: bytes) -> Format:
    if len(body) < FMT_BASIC.size:
        raise WavError(
            f"The fmt chunk is too short ({len(body)} bytes, at least {FMT_BASIC.size}).",
            code=MALFORMED_WAV,
        )
    tag, channels, rate, _byte_rate, block_align, bits = FMT_BASIC.unpack_from(body)
    valid_bits = bits
    if tag == WAVE_FORMAT_EXTENSIBLE:
        if len(body) < FMT_EXTENSIBLE_BYTES:
            raise WavError(
                f"The WAVE_FORMAT_EXTENSIBLE fmt chunk is too short ({len(body)} bytes, "
                f"at least {FMT_EXTENSIBLE_BYTES}).",
                code=MALFORMED_WAV,
            )
        cb_size, valid_bits, _mask, sub_format = FMT_EXTENSION.unpack_from(body, FMT_BASIC.size)
        if cb_size < EXTENSION_BYTES:
            raise WavError(
                f"The WAVE_FORMAT_EXTENSIBLE fmt chunk has cbSize {cb_size}, "
                f"at least {EXTENSION_BYTES} expected.",
                code=MALFORMED_WAV,
            )
        if sub_format == KSDATAFORMAT_SUBTYPE_IEEE_FLOAT:
            raise _unsupported(f"{bits}-bit float WAV")
        if sub_format != KSDATAFORMAT_SUBTYPE_PCM:
            if sub_format[4:] == GUID_TAIL:
                inner = struct.unpack_from("<I", sub_format)[0]
                raise _unsupported(f"Extensible WAV with sub-format {_format_name(inner)}")
            raise _unsupported(f"Extensible WAV with sub-format GUID {sub_format.hex()}")
        if valid_bits == 0:  # "not specified": the container is full
            valid_bits = bits
    elif tag == WAVE_FORMAT_IEEE_FLOAT:
        raise _unsupported(f"{bits}-bit float WAV")
    elif tag != WAVE_FORMAT_PCM:
        raise _unsupported(f"Compressed or non-PCM WAV ({_format_name(tag)})")
    if channels == 0:
        raise WavError("The fmt chunk says the file has 0 channels.", code=MALFORMED_WAV)
    if rate == 0:
        raise WavError("The fmt chunk says the sample rate is 0 Hz.", code=MALFORMED_WAV)
    if bits not in SUPPORTED_BITS:
        raise _unsupported(f"{bits}-bit PCM WAV")
    if valid_bits > bits:
        raise WavError(
            f"The fmt chunk claims {valid_bits} valid bits in a {bits}-bit container.",
            code=MALFORMED_WAV,
        )
    if valid_bits < bits:
        raise _unsupported(f"{valid_bits}-bit audio in {bits}-bit containers")
    if block_align != channels * (bits // 8):
        raise WavError(
            f"The fmt chunk's block align ({block_align}) does not match {channels} channel(s) "
            f"of {bits}-bit samples ({channels * (bits // 8)}).",
            code=MALFORMED_WAV,
        )
    return Format(tag, channels, rate, block_align, bits, valid_bits)
