"""Reading a WAV from a sequential stream: the header up to the first sample (with the
streaming tools' size placeholders), the samples window by window, and the rest verbatim.

Private: the public names are re-exported by :mod:`subtone.stego.wav`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from stat import S_ISREG
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from subtone.stego._wav_format import (
    CHUNK_HEADER,
    DATA_ID,
    DEFAULT_COPY_CHUNK_BYTES,
    EMPTY_AUDIO,
    FMT_ID,
    MALFORMED_WAV,
    MAX_METADATA_CHUNK_BYTES,
    MAX_PREFIX_BYTES,
    MAX_PREFIX_CHUNKS,
    NO_DATA_CHUNK,
    NOT_WAV,
    OTHER_CONTAINERS,
    READ_PIECE_BYTES,
    RIFF_HEADER,
    RIFF_ID,
    SOX_UNKNOWN_SIZE,
    SUPPORTED_BITS,
    TRUNCATED,
    UNKNOWN_LENGTH,
    UNKNOWN_SIZE_MARKERS,
    UNSUPPORTED_FORMAT,
    WAVE_ID,
    Format,
    Samples,
    WavError,
    WavInfo,
    parse_fmt,
)


def read_upto(stream: BinaryIO, size: int, piece: int | None = None) -> bytes:
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
    data = read_upto(stream, size, READ_PIECE_BYTES)
    if len(data) < size:
        raise WavError(
            f"The file ends inside the {what} ({len(data)} of {size} bytes).", code=TRUNCATED
        )
    return data


def _check_magic(head: bytes) -> None:
    riff = head[:4]
    if riff in OTHER_CONTAINERS:
        raise WavError(
            f"{OTHER_CONTAINERS[riff]} files are not supported; use a standard RIFF WAV.",
            code=UNSUPPORTED_FORMAT,
        )
    if not RIFF_ID.startswith(riff):
        raise WavError("This is not a WAV file (no RIFF header).", code=NOT_WAV)
    form = head[8:12]
    if not WAVE_ID.startswith(form):
        raise WavError(
            f"This is a RIFF file of type {form!r}, not a WAV file (RIFF/WAVE).", code=NOT_WAV
        )


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
    if declared not in UNKNOWN_SIZE_MARKERS and declared != SOX_UNKNOWN_SIZE - (
        SOX_UNKNOWN_SIZE % block_align
    ):
        return None
    honest_empty = declared == 0 and riff_size + CHUNK_HEADER.size == consumed
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
    if declared == 0 and riff_size + CHUNK_HEADER.size == total:
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
    prefix = bytearray(_read_riff_header(stream))
    _, riff_size, _ = RIFF_HEADER.unpack_from(prefix)
    fmt, declared = _read_chunks_to_data(stream, prefix)
    consumed = len(prefix)
    streamed = _resolve_data_size(
        stream, declared, fmt.block_align, riff_size, consumed, total_size
    )
    size = declared if streamed is None else streamed - streamed % fmt.block_align
    _check_data_size(size, fmt.block_align)
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


def _read_riff_header(stream: BinaryIO) -> bytes:
    """The 12-byte RIFF/WAVE header, checked."""
    head = read_upto(stream, RIFF_HEADER.size)
    if not head:
        raise WavError("The file is empty, not a WAV file.", code=NOT_WAV)
    _check_magic(head)
    if len(head) < RIFF_HEADER.size:
        raise WavError("The file ends inside the RIFF header.", code=TRUNCATED)
    return head


def _read_chunks_to_data(stream: BinaryIO, prefix: bytearray) -> tuple[Format, int]:
    """Read (into ``prefix``) every chunk up to the ``data`` chunk's header; return the
    parsed ``fmt`` chunk and the data chunk's declared size."""
    fmt: Format | None = None
    for _ in range(MAX_PREFIX_CHUNKS + 1):
        chunk_id, size = _read_chunk_header(stream, prefix, fmt_seen=fmt is not None)
        if chunk_id == DATA_ID:
            if fmt is None:
                raise WavError("The data chunk comes before the fmt chunk.", code=MALFORMED_WAV)
            return fmt, size
        body = _read_metadata_chunk(stream, prefix, chunk_id, size)
        if chunk_id == FMT_ID:
            if fmt is not None:
                raise WavError("The WAV file has two fmt chunks.", code=MALFORMED_WAV)
            fmt = parse_fmt(body[:size])
    raise WavError(
        f"The WAV file has more than {MAX_PREFIX_CHUNKS} chunks before its audio.",
        code=MALFORMED_WAV,
    )


def _read_chunk_header(stream: BinaryIO, prefix: bytearray, *, fmt_seen: bool) -> tuple[bytes, int]:
    """The next chunk's id and size (its header appended to ``prefix``)."""
    chunk_head = read_upto(stream, CHUNK_HEADER.size)
    if not chunk_head:
        missing = "data chunk" if fmt_seen else "fmt and data chunks"
        raise WavError(f"The WAV file has no {missing}.", code=NO_DATA_CHUNK)
    if len(chunk_head) < CHUNK_HEADER.size:
        raise WavError("The file ends inside a chunk header.", code=TRUNCATED)
    prefix += chunk_head
    chunk_id, size = CHUNK_HEADER.unpack(chunk_head)
    return chunk_id, size


def _read_metadata_chunk(stream: BinaryIO, prefix: bytearray, chunk_id: bytes, size: int) -> bytes:
    """A chunk before the audio, with its pad byte (appended to ``prefix``), within the limits
    on what the prefix may hold."""
    if size > MAX_METADATA_CHUNK_BYTES:
        raise WavError(
            f"The {chunk_id!r} chunk before the audio claims {size} bytes "
            f"(more than {MAX_METADATA_CHUNK_BYTES}).",
            code=MALFORMED_WAV,
        )
    padded = size + (size & 1)
    if len(prefix) + padded > MAX_PREFIX_BYTES:
        raise WavError(
            f"The chunks before the audio take more than {MAX_PREFIX_BYTES} bytes.",
            code=MALFORMED_WAV,
        )
    body = _read_exact(stream, padded, f"{chunk_id!r} chunk")
    prefix += body
    return body


def _check_data_size(size: int, block_align: int) -> None:
    if size == 0:
        raise WavError("The WAV file contains no audio (empty data chunk).", code=EMPTY_AUDIO)
    if size % block_align:
        raise WavError(
            f"The data chunk's size ({size} bytes) is not a whole number of "
            f"{block_align}-byte frames.",
            code=MALFORMED_WAV,
        )


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
        data = read_upto(stream, want)
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
