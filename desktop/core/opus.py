"""Audio secrets made small: any sound soundfile reads, resampled to an Opus rate (a streaming
polyphase windowed-sinc resampler) and encoded as Opus in Ogg, a block at a time.

Qt-free and crypto-free: :func:`desktop.core.envelope.prepare_audio_secret` decides when to use it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from numpy.typing import NDArray

__all__ = ["OPUS_EXTENSION", "OPUS_MEDIA_TYPE", "encode_opus", "opus_rate", "resample"]

OPUS_MEDIA_TYPE = "audio/ogg; codecs=opus"
OPUS_EXTENSION = ".opus"
#: Sample rates an Opus stream can carry, ascending.
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
#: Channels kept in an Opus secret; more are mixed down to mono.
MAX_OPUS_CHANNELS = 2
#: libsndfile's Opus compression level (0..1): 0.9 is about 40 kbit/s per mono channel.
OPUS_COMPRESSION_LEVEL = 0.9
AUDIO_BLOCK_FRAMES = 65536
#: Windowed-sinc resampler: zero crossings on each side, and the cut-off as a share of Nyquist.
RESAMPLE_HALF_TAPS = 16
RESAMPLE_ROLLOFF = 0.95
#: Up to this many filter phases (output rate / gcd of the rates) are computed once.
RESAMPLE_MAX_PHASES = 4096


def opus_rate(rate: int) -> int:
    """The smallest Opus rate at or above ``rate``, else the highest."""
    return next((r for r in OPUS_RATES if r >= rate), OPUS_RATES[-1])


def _kernel(x: NDArray[np.float64], cutoff: float, half_width: int) -> NDArray[np.float64]:
    """Blackman-windowed sinc low-pass, ``x`` in input samples."""
    u = x / half_width
    window = 0.42 + 0.5 * np.cos(np.pi * u) + 0.08 * np.cos(2 * np.pi * u)
    window = np.where(np.abs(u) < 1.0, window, 0.0)
    result: NDArray[np.float64] = cutoff * np.sinc(cutoff * x) * window
    return result


def _normalised(weights: NDArray[np.float64]) -> NDArray[np.float32]:
    """Rows scaled to sum to one (unit gain at DC), as float32."""
    result: NDArray[np.float32] = (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)
    return result


def resample(
    blocks: Iterable[NDArray[np.float32]], rate_in: int, rate_out: int, channels: int
) -> Iterator[NDArray[np.float32]]:
    """Stream ``blocks`` (frames x channels) from ``rate_in`` to ``rate_out`` Hz.

    A polyphase windowed-sinc resampler: output sample ``k`` sits at input time
    ``k * down / up``. Input is kept only as far back as the filter reaches.
    """
    gcd = math.gcd(rate_in, rate_out)
    up, down = rate_out // gcd, rate_in // gcd
    cutoff = min(1.0, up / down) * RESAMPLE_ROLLOFF
    half = math.ceil(RESAMPLE_HALF_TAPS / min(1.0, up / down))
    taps = np.arange(-half + 1, half + 1, dtype=np.float64)
    # Output k uses phase (k * down) % up; with few phases, weigh each one once.
    table = None
    if up <= RESAMPLE_MAX_PHASES:
        table = _normalised(_kernel(np.arange(up)[:, None] / up - taps, cutoff, half))
    buf = np.zeros((half, channels), dtype=np.float32)
    buf_start = -half  # absolute input index of buf[0]; zeros before the signal
    next_k = 0
    total_in = 0

    def emit(k_stop: int) -> Iterator[NDArray[np.float32]]:
        nonlocal next_k
        for k0 in range(next_k, k_stop, AUDIO_BLOCK_FRAMES):
            ks = np.arange(k0, min(k0 + AUDIO_BLOCK_FRAMES, k_stop), dtype=np.int64)
            base = (ks * down) // up - buf_start
            phase = (ks * down) % up
            if table is not None:
                weights = table[phase]
            else:
                weights = _normalised(_kernel(phase[:, None] / up - taps, cutoff, half))
            acc = np.zeros((len(ks), channels), dtype=np.float32)
            for column, tap in enumerate(range(-half + 1, half + 1)):
                acc += buf[base + tap] * weights[:, column, None]
            yield acc
        next_k = max(next_k, k_stop)

    for block in blocks:
        total_in += len(block)
        buf = np.concatenate([buf, block])
        last_usable = buf_start + len(buf) - 1 - half  # highest base with all taps present
        yield from emit(-(-(last_usable + 1) * up // down))
        keep_from = (next_k * down) // up - half + 1
        if keep_from > buf_start:
            buf = buf[keep_from - buf_start :]
            buf_start = keep_from
    buf = np.concatenate([buf, np.zeros((half + 1, channels), dtype=np.float32)])
    yield from emit(-(-total_in * up // down))


def _read_blocks(sound: Any, channels: int) -> Iterator[NDArray[np.float32]]:
    """Float32 blocks of at most :data:`MAX_OPUS_CHANNELS` channels from an open file."""
    while True:
        block: NDArray[np.float32] = sound.read(AUDIO_BLOCK_FRAMES, dtype="float32", always_2d=True)
        if not len(block):
            return
        if channels > MAX_OPUS_CHANNELS:
            block = block.mean(axis=1, keepdims=True, dtype=np.float32)
        yield block


def encode_opus(path: Path, target: Path) -> None:
    with sf.SoundFile(str(path)) as source:
        rate_in = int(source.samplerate)
        channels_in = int(source.channels)
        channels = channels_in if channels_in <= MAX_OPUS_CHANNELS else 1
        rate_out = opus_rate(rate_in)
        blocks: Iterable[NDArray[np.float32]] = _read_blocks(source, channels_in)
        if rate_out != rate_in:
            blocks = resample(blocks, rate_in, rate_out, channels)
        with sf.SoundFile(
            str(target),
            mode="w",
            samplerate=rate_out,
            channels=channels,
            format="OGG",
            subtype="OPUS",
            compression_level=OPUS_COMPRESSION_LEVEL,
        ) as sink:
            for block in blocks:
                sink.write(np.clip(block, -1.0, 1.0))
