"""Writing WAVs: samples to PCM bytes, a whole file from blocks of samples (never seeking),
and generated covers (tones plus noise, the same file for the same seed).

Private: the public names are re-exported by :mod:`subtone.stego.wav`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from subtone.stego._wav_format import (
    CHUNK_HEADER,
    COVER_BLOCK_FRAMES,
    COVER_HIGH_HZ,
    COVER_LOW_HZ,
    COVER_NOISE_FRACTION,
    COVER_TONES,
    DATA_ID,
    EXTENSION_BYTES,
    FMT_BASIC,
    FMT_EXTENSION,
    FMT_ID,
    KSDATAFORMAT_SUBTYPE_PCM,
    MAX_CHUNK_SIZE,
    RIFF_HEADER,
    RIFF_ID,
    SPEAKER_MASKS,
    SUPPORTED_BITS,
    WAVE_FORMAT_EXTENSIBLE,
    WAVE_FORMAT_PCM,
    WAVE_ID,
    IntArray,
    Samples,
)


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
    return CHUNK_HEADER.pack(chunk_id, len(body)) + body + b"\x00" * (len(body) & 1)


def _fmt_body(channels: int, rate: int, bits_per_sample: int, extensible: bool) -> bytes:
    block_align = channels * (bits_per_sample // 8)
    tag = WAVE_FORMAT_EXTENSIBLE if extensible else WAVE_FORMAT_PCM
    body = FMT_BASIC.pack(tag, channels, rate, rate * block_align, block_align, bits_per_sample)
    if extensible:
        mask = SPEAKER_MASKS.get(channels, 0)
        body += FMT_EXTENSION.pack(EXTENSION_BYTES, bits_per_sample, mask, KSDATAFORMAT_SUBTYPE_PCM)
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
    if data_size > MAX_CHUNK_SIZE:
        raise ValueError(f"{data_size} bytes of samples do not fit in a RIFF data chunk")
    before = _chunk(FMT_ID, _fmt_body(channels, rate, bits_per_sample, extensible)) + b"".join(
        _chunk(cid, body) for cid, body in extra_chunks_before
    )
    after = b"\x00" * (data_size & 1) + b"".join(
        _chunk(cid, body) for cid, body in extra_chunks_after
    )
    riff_size = len(WAVE_ID) + len(before) + CHUNK_HEADER.size + data_size + len(after)
    if riff_size > MAX_CHUNK_SIZE:
        raise ValueError(f"a {riff_size}-byte RIFF body is too large for a WAV file")
    stream.write(RIFF_HEADER.pack(RIFF_ID, riff_size, WAVE_ID))
    stream.write(before)
    stream.write(CHUNK_HEADER.pack(DATA_ID, data_size))
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
    return RIFF_HEADER.size - len(WAVE_ID) + riff_size


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
