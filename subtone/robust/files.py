"""Robust mode on files: the steps the client runs on its own files, and the whole embed and
extract in one process, made of the same steps.

* :func:`cover_mix` reads a PCM WAV cover once and returns its working mix (what is sent);
  :func:`file_mix` does the same for a file to decode, in any format soundfile reads (WAV,
  FLAC, OGG/Opus, MP3: what a channel may have turned the stego file into).
* :func:`apply_residual_file` writes the stego file: the cover with the residual added to every
  channel, in one streaming copy to a temporary name renamed when complete. Everything but the
  samples (the header, its chunks, what follows the data) is copied byte for byte.

:func:`embed_file` and :func:`extract_file` run the server's part in this process; the pipeline
(client + server) gives byte-identical files.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import soundfile as sf

from subtone.files import atomic_output
from subtone.robust._dsp import RATE
from subtone.robust._stream import Resampler
from subtone.robust.core import (
    PROBE_SECONDS,
    Mix,
    Residual,
    RobustError,
    add_residual,
    as_mix,
    capacity_frames,
    embed_mix,
    extract_mix,
    mono_mix,
    probe,
    working_length,
)
from subtone.stego import wav
from subtone.stego.wav import WavInfo

__all__ = [
    "BLOCK_FRAMES",
    "apply_residual_file",
    "cover_capacity",
    "cover_mix",
    "embed_file",
    "extract_file",
    "file_mix",
    "file_probe",
]

BLOCK_FRAMES: Final = 1 << 16
"""Frames read at a time."""
PROBE_MARGIN_SECONDS: Final = 0.5
"""Read past what :func:`~subtone.robust.core.probe` looks at: the resampler's edge."""

Progress = Callable[[int, int], None]


def _scale(info: WavInfo) -> float:
    return float(1 << (info.bits_per_sample - 1))


def _cannot_read(path: Path, e: OSError) -> RobustError:
    return RobustError(f"Cannot read {path.name}: {e.strerror}.", code="unreadable_file")


def cover_capacity(cover: str | os.PathLike[str]) -> tuple[WavInfo, int]:
    """The cover's format, and the payload bytes it carries in robust mode (header only)."""
    path = Path(cover)
    try:
        with path.open("rb") as f:
            info, _ = wav.read_header(f)
    except OSError as e:
        raise _cannot_read(path, e) from e
    return info, capacity_frames(info.frames, info.sample_rate)


class _MixBuilder:
    """The working mix of a signal fed block by block (its mono mix), in bounded memory:
    only the mix itself (4 bytes a sample at 16 kHz) is kept."""

    def __init__(self, rate: int, frames: int) -> None:
        self._resampler = Resampler(rate, RATE, frames)
        self._parts: list[Mix] = []

    def feed(self, mono: npt.NDArray[np.float64]) -> None:
        self._parts.append(as_mix(self._resampler.feed(mono)))

    def finish(self) -> Mix:
        self._parts.append(as_mix(self._resampler.finish()))
        return np.concatenate(self._parts).astype(np.float32, copy=False)


def cover_mix(
    cover: str | os.PathLike[str], *, progress: Progress | None = None
) -> tuple[WavInfo, Mix]:
    """Read the PCM WAV ``cover`` once: its format and its working mix (16 kHz mono)."""
    path = Path(cover)
    try:
        with path.open("rb") as f:
            info, _ = wav.read_header(f)
            wav.check_file_size(info, os.fstat(f.fileno()).st_size)
            scale, done = _scale(info), 0
            mix = _MixBuilder(info.sample_rate, info.frames)
            for block in wav.read_windows(f, info, BLOCK_FRAMES * info.channels):
                frames = block.reshape(-1, info.channels)
                mix.feed(mono_mix(frames, scale=scale))
                done += len(frames)
                if progress is not None:
                    progress(done, info.frames)
    except OSError as e:
        raise _cannot_read(path, e) from e
    return info, mix.finish()


def file_mix(
    path: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
    seconds: float | None = None,
) -> Mix:
    """The working mix of a file to decode, in any format soundfile reads (its first
    ``seconds`` only, if given)."""
    source = Path(path)
    try:
        with sf.SoundFile(str(source)) as f:
            rate, frames = f.samplerate, f.frames
            limit = frames if seconds is None else min(frames, math.ceil(seconds * rate))
            monos = (
                mono_mix(block)
                for block in f.blocks(BLOCK_FRAMES, dtype="float64", always_2d=True, frames=limit)
            )
            try:
                return _stream_mix(monos, rate, limit, progress)
            except _LengthMismatch:  # a compressed file whose header miscounts its frames
                f.seek(0)
                whole = mono_mix(f.read(limit, dtype="float64", always_2d=True))
                return _stream_mix(iter([whole]), rate, len(whole), progress)
    except sf.LibsndfileError as e:
        raise RobustError(
            f"{source.name} is not an audio file this client reads ({e}).", code="not_audio"
        ) from e
    except OSError as e:
        raise _cannot_read(source, e) from e


class _LengthMismatch(Exception):
    pass


def _stream_mix(
    monos: Iterator[npt.NDArray[np.float64]], rate: int, frames: int, progress: Progress | None
) -> Mix:
    mix, done = _MixBuilder(rate, frames), 0
    for mono in monos:
        if done + len(mono) > frames:
            raise _LengthMismatch()
        mix.feed(mono)
        done += len(mono)
        if progress is not None:
            progress(done, frames)
    if done != frames:
        raise _LengthMismatch()
    return mix.finish()


def file_probe(path: str | os.PathLike[str], k_pos: bytes) -> float:
    """:func:`~subtone.robust.core.probe` of a file to decode: reads its first dozen seconds
    only, so a wrong passphrase is told before anything is sent."""
    return probe(file_mix(path, seconds=PROBE_SECONDS + PROBE_MARGIN_SECONDS), k_pos)


def apply_residual_file(
    cover: str | os.PathLike[str],
    residual: Residual,
    out: str | os.PathLike[str],
    *,
    mode: int | None = None,
    progress: Progress | None = None,
) -> int:
    """Write ``out``: the PCM WAV ``cover`` with ``residual`` added to every channel (complete,
    or not at all; permissions ``mode``). Returns the bytes written."""
    path = Path(cover)
    try:
        src = path.open("rb")
    except OSError as e:
        raise _cannot_read(path, e) from e
    with src:
        info, prefix = wav.read_header(src)
        wav.check_file_size(info, os.fstat(src.fileno()).st_size)
        if residual.length != _mix_length(info):
            raise RobustError(
                "The residual is for another cover (its length does not match).",
                code="residual_mismatch",
            )
        delta = _Delta(residual, info.sample_rate, info.frames)
        scale, at = _scale(info), 0
        with atomic_output(out, mode=mode) as dst:
            dst.write(prefix)
            for block in wav.read_windows(src, info, BLOCK_FRAMES * info.channels):
                frames = block.reshape(-1, info.channels)
                marked = add_residual(frames, delta.take(len(frames)), scale=scale)
                dst.write(wav.encode_samples(marked.astype(np.int32), info.bits_per_sample))
                at += len(frames)
                if progress is not None:
                    progress(at, info.frames)
            wav.copy_rest(src, dst)
            return dst.tell()


class _Delta:
    """:meth:`Residual.at_rate`, block by block: the residual resampled to the cover's rate,
    ``frames`` long, the same values, in memory bounded by a block."""

    def __init__(self, residual: Residual, rate: int, frames: int) -> None:
        self._residual = residual
        self._resampler = Resampler(RATE, rate, residual.length)
        self._left = frames
        self._fed = 0
        self._ready = np.zeros(0)
        self._done = False

    def _more(self) -> None:
        if self._done:
            self._ready = np.concatenate([self._ready, np.zeros(BLOCK_FRAMES)])
            return
        r = self._residual
        n = min(BLOCK_FRAMES, r.length - self._fed)
        if n == 0:
            self._ready = np.concatenate([self._ready, self._resampler.finish()])
            self._done = True
            return
        piece = np.zeros(n)
        lo, hi = max(self._fed, r.start), min(self._fed + n, r.start + len(r.samples))
        if lo < hi:
            piece[lo - self._fed : hi - self._fed] = r.samples[lo - r.start : hi - r.start]
        self._fed += n
        self._ready = np.concatenate([self._ready, self._resampler.feed(piece)])

    def take(self, n: int) -> npt.NDArray[np.float64]:
        n = min(n, self._left)
        while len(self._ready) < n:
            self._more()
        out, self._ready = self._ready[:n], self._ready[n:]
        self._left -= n
        return out


def _mix_length(info: WavInfo) -> int:
    return working_length(info.frames, info.sample_rate)


def embed_file(
    cover: str | os.PathLike[str],
    out: str | os.PathLike[str],
    k_pos: bytes,
    payload: bytes,
) -> None:
    """Mark the PCM WAV ``cover`` into ``out`` (the same format, header and length), written
    atomically: the client's and the server's steps in one process."""
    _, mix = cover_mix(cover)
    apply_residual_file(cover, embed_mix(mix, k_pos, payload), out)


def extract_file(path: str | os.PathLike[str], k_pos: bytes) -> bytes:
    """The payload of a marked file (WAV, FLAC, OGG/Opus, MP3: whatever soundfile reads)."""
    return extract_mix(file_mix(path), k_pos)
