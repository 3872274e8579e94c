"""Streaming RIFF/WAVE parsing and PCM sample (de)serialisation.

Covers come from object storage, so everything here works on a *sequential, non-seekable*
binary stream: nothing seeks and nothing reads the whole file. A WAV file is split into three
parts that the codec treats differently:

* the **prefix**: the RIFF header, every chunk before the ``data`` chunk's payload (``fmt``,
  ``LIST``, ``bext``, ``JUNK``...) and the ``data`` chunk's own 8-byte header. It is returned by
  :func:`read_header` and copied verbatim into the output;
* the **samples**: exactly ``data_size`` bytes, read window by window by :func:`read_windows`
  as int32 arrays and written back by :func:`encode_samples`;
* the **suffix**: the data chunk's pad byte (when its size is odd) and any chunks after it,
  copied verbatim by :func:`copy_rest`.

``prefix + encode_samples(samples) + suffix`` reassembles the original file byte for byte.

Files written by streaming tools (a recorder or ``sox ... -t wav -`` writing to a pipe) cannot
go back to fill in their sizes and leave a placeholder instead: ``0xFFFFFFFF``, ``0`` or sox's
``0x7FFFF000``. Such a data chunk runs to the end of the file, as other audio tools read it: its
``data_size`` is the whole frames the file holds after the prefix, and a trailing partial frame
is part of the suffix. That needs the file's size: :func:`read_header` takes it
(``total_size``) or finds it (a regular file, a seekable stream); a placeholder on a stream of
unknown length is refused as ``unknown_length``. The RIFF size is never checked.

Accepted: integer PCM (format tag 1, or WAVE_FORMAT_EXTENSIBLE with the PCM sub-format), 16-,
24- or 32-bit containers whose valid bits fill the container, any channel count and rate.
Everything else is refused with a :class:`WavError` carrying a stable code.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Any, BinaryIO, Final

import numpy as np
import numpy.typing as npt

from subtone.errors import SubtoneError

__all__ = [
    "EMPTY_AUDIO",
    "MALFORMED_WAV",
    "MAX_METADATA_CHUNK_BYTES",
    "MAX_PREFIX_BYTES",
    "MAX_PREFIX_CHUNKS",
    "NOT_WAV",
    "NO_DATA_CHUNK",
    "SUPPORTED_BITS",
    "TRUNCATED",
    "UNKNOWN_LENGTH",
    "UNKNOWN_SIZE_MARKERS",
    "UNSUPPORTED_FORMAT",
    "WavError",
    "WavInfo",
    "check_file_size",
    "copy_rest",
    "decode_samples",
    "encode_samples",
    "generate_cover",
    "read_header",
    "read_raw_windows",
    "read_windows",
    "write_wav",
    "write_wav_stream",
]

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
file" when the file is not exactly that long (see :func:`_resolve_data_size`)."""
_SOX_UNKNOWN_SIZE: Final = 0x7FFF_F000

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

_GUID_TAIL: Final = b"\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
"""The last 12 bytes of every KSDATAFORMAT_SUBTYPE_* GUID that wraps a WAVE format tag."""
KSDATAFORMAT_SUBTYPE_PCM: Final = struct.pack("<I", WAVE_FORMAT_PCM) + _GUID_TAIL
KSDATAFORMAT_SUBTYPE_IEEE_FLOAT: Final = struct.pack("<I", WAVE_FORMAT_IEEE_FLOAT) + _GUID_TAIL

RIFF_ID: Final = b"RIFF"
WAVE_ID: Final = b"WAVE"
FMT_ID: Final = b"fmt "
DATA_ID: Final = b"data"
_OTHER_CONTAINERS: Final = {
    b"RIFX": "big-endian RIFX",
    b"RF64": "RF64 (64-bit RIFF)",
    b"BW64": "BW64 (64-bit Broadcast Wave)",
}

_RIFF_HEADER = struct.Struct("<4sI4s")
_CHUNK_HEADER = struct.Struct("<4sI")
_FMT_BASIC = struct.Struct("<HHIIHH")
"""format tag, channels, sample rate, byte rate, block align, bits per sample."""
_FMT_EXTENSION = struct.Struct("<HHI16s")
"""cbSize, valid bits per sample, channel mask, sub-format GUID."""
_FMT_EXTENSIBLE_BYTES: Final = _FMT_BASIC.size + _FMT_EXTENSION.size
_EXTENSION_BYTES: Final = _FMT_EXTENSION.size - 2
"""cbSize of WAVE_FORMAT_EXTENSIBLE: the bytes after the cbSize field."""
_MAX_CHUNK_SIZE: Final = 0xFFFF_FFFF

_SPEAKER_MASKS: Final = {1: 0x4, 2: 0x3}
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


# --- reading ---------------------------------------------------------------------------------


def _read_upto(stream: BinaryIO, size: int, piece: int | None = None) -> bytes:
    """Up to ``size`` bytes, fewer only at end of stream, whatever short reads the stream makes."""
    first = stream.read(size if piece is None else min(size, piece))
    if len(first) == size or not first:
        return first
    parts = [first]
    got = len(first)
    while got < size:
        want = size - got
        part = stream.read(want if piece is None else min(want, piece))
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _read_exact(stream: BinaryIO, size: int, what: str) -> bytes:
    data = _read_upto(stream, size, READ_PIECE_BYTES)
    if len(data) < size:
        raise WavError(
            f"The file ends inside the {what} ({len(data)} of {size} bytes).", code=TRUNCATED
        )
    return data


def _check_magic(head: bytes) -> None:
    riff = head[:4]
    if riff in _OTHER_CONTAINERS:
        raise WavError(
            f"{_OTHER_CONTAINERS[riff]} files are not supported; use a standard RIFF WAV.",
            code=UNSUPPORTED_FORMAT,
        )
    if not RIFF_ID.startswith(riff):
        raise WavError("This is not a WAV file (no RIFF header).", code=NOT_WAV)
    form = head[8:12]
    if not WAVE_ID.startswith(form):
        raise WavError(
            f"This is a RIFF file of type {form!r}, not a WAV file (RIFF/WAVE).", code=NOT_WAV
        )


def _format_name(tag: int) -> str:
    name = _FORMAT_NAMES.get(tag)
    return f"format tag 0x{tag:04X}" + (f" ({name})" if name else "")


def _unsupported(found: str) -> WavError:
    return WavError(
        f"{found} is not supported; use 16- or 24-bit PCM WAV.", code=UNSUPPORTED_FORMAT
    )


@dataclass(frozen=True)
class _Format:
    format_tag: int
    channels: int
    sample_rate: int
    block_align: int
    bits_per_sample: int
    valid_bits: int


def _parse_fmt(body: bytes) -> _Format:
    if len(body) < _FMT_BASIC.size:
        raise WavError(
            f"The fmt chunk is too short ({len(body)} bytes, at least {_FMT_BASIC.size}).",
            code=MALFORMED_WAV,
        )
    tag, channels, rate, _byte_rate, block_align, bits = _FMT_BASIC.unpack_from(body)
    valid_bits = bits
    if tag == WAVE_FORMAT_EXTENSIBLE:
        if len(body) < _FMT_EXTENSIBLE_BYTES:
            raise WavError(
                f"The WAVE_FORMAT_EXTENSIBLE fmt chunk is too short ({len(body)} bytes, "
                f"at least {_FMT_EXTENSIBLE_BYTES}).",
                code=MALFORMED_WAV,
            )
        cb_size, valid_bits, _mask, sub_format = _FMT_EXTENSION.unpack_from(body, _FMT_BASIC.size)
        if cb_size < _EXTENSION_BYTES:
            raise WavError(
                f"The WAVE_FORMAT_EXTENSIBLE fmt chunk has cbSize {cb_size}, "
                f"at least {_EXTENSION_BYTES} expected.",
                code=MALFORMED_WAV,
            )
        if sub_format == KSDATAFORMAT_SUBTYPE_IEEE_FLOAT:
            raise _unsupported(f"{bits}-bit float WAV")
        if sub_format != KSDATAFORMAT_SUBTYPE_PCM:
            if sub_format[4:] == _GUID_TAIL:
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
    return _Format(tag, channels, rate, block_align, bits, valid_bits)


def _stream_size(stream: BinaryIO) -> int | None:
    """The whole stream's size, where it can be had without reading: a regular file's, or a
    seekable stream's end (the position is restored); None for a pipe or a socket."""
    try:
        stat = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        pass
    else:
        return stat.st_size if S_ISREG(stat.st_mode) else None
    try:
        if not stream.seekable():
            return None
        here = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(here)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    return end


def _resolve_data_size(
    stream: BinaryIO,
    declared: int,
    block_align: int,
    riff_size: int,
    consumed: int,
    total_size: int | None,
) -> int | None:
    """The bytes after the prefix when ``declared`` is a streaming placeholder, else None.

    A placeholder size is a real one when the file agrees with it: 0 with a RIFF size that
    accounts for the whole file (an empty data chunk, maybe chunks after it), or 0xFFFFFFFF /
    0x7FFFF000 with at least that many bytes present. A recorder that wrote ``RIFF 36, data 0``
    and never came back has audio outside its RIFF: that is read as streamed.
    """
    if declared not in UNKNOWN_SIZE_MARKERS and declared != _SOX_UNKNOWN_SIZE - (
        _SOX_UNKNOWN_SIZE % block_align
    ):
        return None
    honest_empty = declared == 0 and riff_size + _CHUNK_HEADER.size == consumed
    total = total_size if total_size is not None else _stream_size(stream)
    if total is None:
        if honest_empty:
            return None  # the RIFF ends with this empty chunk; nothing to say otherwise
        raise WavError(
            "This WAV was written by a streaming tool and does not record how long its audio "
            "is; its size is not known here. Save it to a file and try again.",
            code=UNKNOWN_LENGTH,
        )
    remaining = max(0, total - consumed)
    if declared == 0 and riff_size + _CHUNK_HEADER.size == total:
        return None  # the RIFF accounts for the whole file: the data chunk is really empty
    if declared and remaining >= declared:
        return None
    return remaining


def read_header(stream: BinaryIO, *, total_size: int | None = None) -> tuple[WavInfo, bytes]:
    """Read a WAV's header up to its first sample; return the info and the bytes read.

    The stream is left at the first byte of the data chunk's payload. The returned prefix is
    exactly the bytes consumed (``len(prefix) == info.prefix_size``). ``total_size`` is the
    file's size in bytes, when the caller knows it; it is needed (or found from the stream)
    only for a data chunk whose size is a streaming placeholder.
    """
    head = _read_upto(stream, _RIFF_HEADER.size)
    if not head:
        raise WavError("The file is empty, not a WAV file.", code=NOT_WAV)
    _check_magic(head)
    if len(head) < _RIFF_HEADER.size:
        raise WavError("The file ends inside the RIFF header.", code=TRUNCATED)
    _, riff_size, _ = _RIFF_HEADER.unpack(head)
    prefix = bytearray(head)
    consumed = len(head)
    fmt: _Format | None = None
    for _ in range(MAX_PREFIX_CHUNKS + 1):
        chunk_head = _read_upto(stream, _CHUNK_HEADER.size)
        if not chunk_head:
            missing = "fmt and data chunks" if fmt is None else "data chunk"
            raise WavError(f"The WAV file has no {missing}.", code=NO_DATA_CHUNK)
        if len(chunk_head) < _CHUNK_HEADER.size:
            raise WavError("The file ends inside a chunk header.", code=TRUNCATED)
        prefix += chunk_head
        consumed += len(chunk_head)
        chunk_id, size = _CHUNK_HEADER.unpack(chunk_head)
        if chunk_id == DATA_ID:
            break
        if size > MAX_METADATA_CHUNK_BYTES:
            raise WavError(
                f"The {chunk_id!r} chunk before the audio claims {size} bytes "
                f"(more than {MAX_METADATA_CHUNK_BYTES}).",
                code=MALFORMED_WAV,
            )
        padded = size + (size & 1)
        if consumed + padded > MAX_PREFIX_BYTES:
            raise WavError(
                f"The chunks before the audio take more than {MAX_PREFIX_BYTES} bytes.",
                code=MALFORMED_WAV,
            )
        body = _read_exact(stream, padded, f"{chunk_id!r} chunk")
        prefix += body
        consumed += padded
        if chunk_id == FMT_ID:
            if fmt is not None:
                raise WavError("The WAV file has two fmt chunks.", code=MALFORMED_WAV)
            fmt = _parse_fmt(body[:size])
    else:
        raise WavError(
            f"The WAV file has more than {MAX_PREFIX_CHUNKS} chunks before its audio.",
            code=MALFORMED_WAV,
        )
    if fmt is None:
        raise WavError("The data chunk comes before the fmt chunk.", code=MALFORMED_WAV)
    streamed = _resolve_data_size(stream, size, fmt.block_align, riff_size, consumed, total_size)
    if streamed is not None:
        size = streamed - streamed % fmt.block_align
    if size == 0:
        raise WavError("The WAV file contains no audio (empty data chunk).", code=EMPTY_AUDIO)
    if size % fmt.block_align:
        raise WavError(
            f"The data chunk's size ({size} bytes) is not a whole number of "
            f"{fmt.block_align}-byte frames.",
            code=MALFORMED_WAV,
        )
    frames = size // fmt.block_align
    info = WavInfo(
        channels=fmt.channels,
        sample_rate=fmt.sample_rate,
        bits_per_sample=fmt.bits_per_sample,
        valid_bits=fmt.valid_bits,
        block_align=fmt.block_align,
        format_tag=fmt.format_tag,
        data_size=size,
        frames=frames,
        samples=frames * fmt.channels,
        riff_size=riff_size,
        prefix_size=consumed,
        size_known=streamed is None,
    )
    return info, bytes(prefix)


def check_file_size(info: WavInfo, total_size: int) -> None:
    """Refuse a file of ``total_size`` bytes too short for the samples its header announces."""
    needed = info.prefix_size + info.data_size
    if total_size < needed:
        raise WavError(
            f"The file is truncated: its header announces {needed} bytes up to the end of the "
            f"audio, but it has {total_size}.",
            code=TRUNCATED,
        )


def decode_samples(data: bytes, bits_per_sample: int) -> Samples:
    """Little-endian signed PCM bytes as an int32 array (a new, writable array)."""
    if bits_per_sample in SUPPORTED_BITS and len(data) % (bits_per_sample // 8):
        raise ValueError(f"{len(data)} bytes are not whole {bits_per_sample}-bit samples")
    if bits_per_sample == 16:
        return np.frombuffer(data, dtype="<i2").astype(np.int32)
    if bits_per_sample == 32:
        return np.frombuffer(data, dtype="<i4").astype(np.int32)
    if bits_per_sample == 24:
        # With one byte in front, the int32 starting every 3 bytes holds a sample in its top
        # three bytes: an arithmetic shift right by 8 sign-extends it. One pass, no Python loop.
        padded = bytearray(1) + data
        overlapping: npt.NDArray[np.int32] = np.ndarray(
            (len(data) // 3,), dtype=np.dtype("<i4"), buffer=padded, strides=(3,)
        )
        return (overlapping >> 8).astype(np.int32, copy=False)
    raise ValueError(f"bits_per_sample must be one of {SUPPORTED_BITS}, got {bits_per_sample}")


def read_raw_windows(stream: BinaryIO, info: WavInfo, window_samples: int) -> Iterator[bytes]:
    """Yield the data chunk's bytes, ``window_samples`` samples at a time (the last fewer).

    Channels stay interleaved as in the file and a window may split a frame. Exactly
    ``info.data_size`` bytes are read; the stream is then at the start of the suffix.
    Raises :class:`WavError` ``truncated`` if the stream ends first.
    """
    if window_samples <= 0:
        raise ValueError(f"window_samples must be positive, got {window_samples}")
    window_bytes = window_samples * info.sample_bytes
    left = info.data_size
    while left:
        want = min(window_bytes, left)
        data = _read_upto(stream, want)
        if len(data) < want:
            read = info.data_size - left + len(data)
            raise WavError(
                f"The file is truncated: its data chunk announces {info.data_size} bytes of "
                f"audio but the file ends after {read}.",
                code=TRUNCATED,
            )
        left -= want
        yield data


def read_windows(stream: BinaryIO, info: WavInfo, window_samples: int) -> Iterator[Samples]:
    """:func:`read_raw_windows`, each window decoded to an int32 array of samples."""
    for data in read_raw_windows(stream, info, window_samples):
        yield decode_samples(data, info.bits_per_sample)


def copy_rest(src: BinaryIO, dst: BinaryIO, chunk_size: int = DEFAULT_COPY_CHUNK_BYTES) -> int:
    """Copy ``src`` to ``dst`` until the end of ``src``; return the number of bytes copied."""
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    total = 0
    while data := src.read(chunk_size):
        dst.write(data)
        total += len(data)
    return total


# --- writing ---------------------------------------------------------------------------------


def encode_samples(samples: IntArray, bits_per_sample: int) -> bytes:
    """Integer samples as little-endian signed PCM bytes; the inverse of :func:`decode_samples`.

    Raises ``ValueError`` if a value does not fit in ``bits_per_sample`` bits.
    """
    if bits_per_sample not in SUPPORTED_BITS:
        raise ValueError(f"bits_per_sample must be one of {SUPPORTED_BITS}, got {bits_per_sample}")
    values = np.asarray(samples)
    if not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"samples must be integers, got {values.dtype}")
    if values.size == 0:
        return b""
    top = 1 << (bits_per_sample - 1)
    lo, hi = int(values.min()), int(values.max())
    if lo < -top or hi > top - 1:
        raise ValueError(
            f"sample values [{lo}, {hi}] do not fit in {bits_per_sample} bits [{-top}, {top - 1}]"
        )
    if bits_per_sample == 16:
        return values.astype("<i2").tobytes()
    wide = np.ascontiguousarray(values, dtype=np.dtype("<i4")).reshape(-1)
    if bits_per_sample == 32:
        return wide.tobytes()
    # Every 3 output bytes: the low 16 bits (one unaligned uint16 store) then the third byte.
    out = np.empty(wide.size * 3, dtype=np.uint8)
    low: npt.NDArray[np.uint16] = np.ndarray(
        (wide.size,), dtype=np.dtype("<u2"), buffer=out, strides=(3,)
    )
    low[:] = wide.view(np.dtype("<u2"))[::2]
    out[2::3] = wide.view(np.uint8)[2::4]
    return out.tobytes()


def _chunk(chunk_id: bytes, body: bytes) -> bytes:
    if len(chunk_id) != 4:
        raise ValueError(f"a chunk id has 4 bytes, got {chunk_id!r}")
    return _CHUNK_HEADER.pack(chunk_id, len(body)) + body + b"\x00" * (len(body) & 1)


def _fmt_body(channels: int, rate: int, bits_per_sample: int, extensible: bool) -> bytes:
    block_align = channels * (bits_per_sample // 8)
    tag = WAVE_FORMAT_EXTENSIBLE if extensible else WAVE_FORMAT_PCM
    body = _FMT_BASIC.pack(tag, channels, rate, rate * block_align, block_align, bits_per_sample)
    if extensible:
        mask = _SPEAKER_MASKS.get(channels, 0)
        body += _FMT_EXTENSION.pack(
            _EXTENSION_BYTES, bits_per_sample, mask, KSDATAFORMAT_SUBTYPE_PCM
        )
    return body


def write_wav_stream(
    stream: BinaryIO,
    blocks: Iterable[IntArray],
    *,
    frames: int,
    channels: int,
    rate: int,
    bits_per_sample: int,
    extensible: bool = False,
    extra_chunks_before: Sequence[tuple[bytes, bytes]] = (),
    extra_chunks_after: Sequence[tuple[bytes, bytes]] = (),
) -> int:
    """Write a WAV of ``frames`` frames from ``blocks`` without holding it all; return its size.

    Each block is an integer array of whole frames, shaped ``(n, channels)`` or flat and
    interleaved. The header is written first (so ``frames`` must be known up front) and the
    stream is never sought. ``extra_chunks_*`` are ``(id, body)`` pairs written before the
    ``data`` chunk (after ``fmt``) and after it, padded to even sizes.
    """
    if channels <= 0 or rate <= 0 or frames < 0:
        raise ValueError(f"bad shape: {frames} frames, {channels} channels, {rate} Hz")
    if bits_per_sample not in SUPPORTED_BITS:
        raise ValueError(f"bits_per_sample must be one of {SUPPORTED_BITS}, got {bits_per_sample}")
    data_size = frames * channels * (bits_per_sample // 8)
    if data_size > _MAX_CHUNK_SIZE:
        raise ValueError(f"{data_size} bytes of samples do not fit in a RIFF data chunk")
    before = _chunk(FMT_ID, _fmt_body(channels, rate, bits_per_sample, extensible)) + b"".join(
        _chunk(cid, body) for cid, body in extra_chunks_before
    )
    after = b"\x00" * (data_size & 1) + b"".join(
        _chunk(cid, body) for cid, body in extra_chunks_after
    )
    riff_size = len(WAVE_ID) + len(before) + _CHUNK_HEADER.size + data_size + len(after)
    if riff_size > _MAX_CHUNK_SIZE:
        raise ValueError(f"a {riff_size}-byte RIFF body is too large for a WAV file")
    stream.write(_RIFF_HEADER.pack(RIFF_ID, riff_size, WAVE_ID))
    stream.write(before)
    stream.write(_CHUNK_HEADER.pack(DATA_ID, data_size))
    written = 0
    for block in blocks:
        values = np.asarray(block)
        if values.size % channels:
            raise ValueError(
                f"a block of {values.size} samples is not whole {channels}-channel frames"
            )
        written += values.size // channels
        if written > frames:
            raise ValueError(f"the blocks hold more than the {frames} frames announced")
        stream.write(encode_samples(values, bits_per_sample))
    if written != frames:
        raise ValueError(f"the blocks hold {written} frames, {frames} were announced")
    stream.write(after)
    return _RIFF_HEADER.size - len(WAVE_ID) + riff_size


def write_wav(
    target: str | os.PathLike[str] | BinaryIO,
    samples: IntArray,
    rate: int,
    bits_per_sample: int,
    *,
    extensible: bool = False,
    extra_chunks_before: Sequence[tuple[bytes, bytes]] = (),
    extra_chunks_after: Sequence[tuple[bytes, bytes]] = (),
) -> int:
    """Write ``samples`` (shaped ``(frames, channels)``, or flat for mono) as a WAV file.

    ``target`` is a path or a binary stream; returns the number of bytes written.
    """
    values = np.asarray(samples)
    if values.ndim == 1:
        values = values.reshape(-1, 1)
    if values.ndim != 2:
        raise ValueError(f"samples must be shaped (frames, channels), got {values.shape}")
    frames, channels = values.shape

    def write(stream: BinaryIO) -> int:
        return write_wav_stream(
            stream,
            [values],
            frames=frames,
            channels=channels,
            rate=rate,
            bits_per_sample=bits_per_sample,
            extensible=extensible,
            extra_chunks_before=extra_chunks_before,
            extra_chunks_after=extra_chunks_after,
        )

    if isinstance(target, str | os.PathLike):
        with Path(target).open("wb") as f:
            return write(f)
    return write(target)


def _cover_blocks(frames: int, rate: int, channels: int, bits: int, seed: int) -> Iterator[Samples]:
    """Three tones per channel plus uniform noise, peaking below a third of full scale.

    The tones' frequencies are whole multiples of ``rate / COVER_BLOCK_FRAMES``, so every block
    repeats the same tone table (computed once) and only the noise is drawn per block: the
    generator runs at disk speed instead of computing a sine per sample.
    """
    rng = np.random.default_rng(seed)
    top = 1 << (bits - 1)
    cycles = rng.integers(
        COVER_LOW_HZ * COVER_BLOCK_FRAMES // rate + 1,
        COVER_HIGH_HZ * COVER_BLOCK_FRAMES // rate + 2,
        size=(COVER_TONES, channels),
    )
    phases = rng.uniform(0.0, 2 * np.pi, size=(COVER_TONES, channels))
    amps = top * rng.uniform(0.03, 0.08, size=(COVER_TONES, channels))
    t = (np.arange(COVER_BLOCK_FRAMES, dtype=np.float64) / COVER_BLOCK_FRAMES)[:, None]
    tones = sum(
        (amps[i] * np.sin(2 * np.pi * cycles[i] * t + phases[i]) for i in range(COVER_TONES)),
        start=np.zeros((COVER_BLOCK_FRAMES, channels)),
    )
    table = np.rint(tones).astype(np.int32)
    noise = int(top * COVER_NOISE_FRACTION)
    for start in range(0, frames, COVER_BLOCK_FRAMES):
        n = min(COVER_BLOCK_FRAMES, frames - start)
        yield table[:n] + rng.integers(-noise, noise + 1, size=(n, channels), dtype=np.int32)


def generate_cover(
    path: str | os.PathLike[str],
    seconds: float,
    rate: int = 44_100,
    channels: int = 2,
    bits: int = 16,
    seed: int = 0,
    *,
    extensible: bool = False,
    extra_chunks_before: Sequence[tuple[bytes, bytes]] = (),
    extra_chunks_after: Sequence[tuple[bytes, bytes]] = (),
) -> int:
    """Write a noisy, tonal cover of ``seconds`` to ``path`` in fixed-size blocks.

    Memory stays bounded (``COVER_BLOCK_FRAMES`` frames at a time) whatever the length, and the
    same arguments always give the same file. Returns the file's size in bytes.
    """
    frames = round(seconds * rate)
    with Path(path).open("wb") as f:
        return write_wav_stream(
            f,
            _cover_blocks(frames, rate, channels, bits, seed),
            frames=frames,
            channels=channels,
            rate=rate,
            bits_per_sample=bits,
            extensible=extensible,
            extra_chunks_before=extra_chunks_before,
            extra_chunks_after=extra_chunks_after,
        )
