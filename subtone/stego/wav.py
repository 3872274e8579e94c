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

The code lives in private modules: ``_wav_format`` (codes, limits, the ``fmt`` chunk),
``_wav_read`` (the header and the samples from a stream) and ``_wav_write`` (PCM bytes, whole
files, generated covers).
"""

from __future__ import annotations

from subtone.stego._wav_format import (
    EMPTY_AUDIO,
    MALFORMED_WAV,
    MAX_METADATA_CHUNK_BYTES,
    MAX_PREFIX_BYTES,
    MAX_PREFIX_CHUNKS,
    NO_DATA_CHUNK,
    NOT_WAV,
    SUPPORTED_BITS,
    TRUNCATED,
    UNKNOWN_LENGTH,
    UNKNOWN_SIZE_MARKERS,
    UNSUPPORTED_FORMAT,
    WavError,
    WavInfo,
)
from subtone.stego._wav_read import (
    check_file_size,
    copy_rest,
    decode_samples,
    read_header,
    read_raw_windows,
    read_windows,
)
from subtone.stego._wav_write import encode_samples, generate_cover, write_wav, write_wav_stream

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
