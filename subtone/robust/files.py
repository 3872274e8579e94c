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
from typing import BinaryIO, Final

import numpy as np
import numpy.typing as npt
import soundfile as sf

from subtone.files import atomic_output
from subtone.robust import wire
from subtone.robust._dsp import RATE, resample_quick
from subtone.robust._stream import Resampler
from subtone.robust.core import (
    Mix,
    Residual,
    RobustError,
    add_residual,
    as_mix,
    capacity_frames,
    mono_mix,
    working_length,
)
from subtone.robust.embedding import embed_mix
from subtone.robust.extraction import extract_mix
from subtone.robust.sync import PROBE_SECONDS, probe
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
    "write_cover_mix",
    "write_file_mix",
]

BLOCK_FRAMES: Final = 1 << 16
"""Frames read at a time."""
PROBE_MARGIN_SECONDS: Final = 0.5
"""Read past what :func:`~subtone.robust.sync.probe` looks at: the resampler's edge."""

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


MixSink = Callable[[Mix], None]
"""Takes the working mix piece by piece, in order."""


class _MixBuilder:
    """The working mix of a signal fed block by block (its mono mix), handed to ``sink``
    piece by piece: memory bounded by a block, whatever the signal's length."""

    def __init__(self, rate: int, frames: int, sink: MixSink) -> None:
        self._resampler = Resampler(rate, RATE, frames)
        self._sink = sink

    def feed(self, mono: npt.NDArray[np.float64]) -> None:
        self._sink(as_mix(self._resampler.feed(mono)))

    def finish(self) -> None:
        self._sink(as_mix(self._resampler.finish()))


def _collect() -> tuple[list[Mix], MixSink]:
    parts: list[Mix] = []
    return parts, parts.append


def _joined(parts: list[Mix]) -> Mix:
    return np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros(0, "f4")


def _feed_cover(
    cover: str | os.PathLike[str], sink: MixSink | None, progress: Progress | None
) -> WavInfo:
    """Read the PCM WAV ``cover`` once, its working mix going to ``sink`` (made once the
    header says how long the mix is: ``sink`` is then ``make_sink(info)``)."""
    path = Path(cover)
    try:
        with path.open("rb") as f:
            info, _ = wav.read_header(f)
            wav.check_file_size(info, os.fstat(f.fileno()).st_size)
            if sink is None:
                return info
            scale, done = _scale(info), 0
            mix = _MixBuilder(info.sample_rate, info.frames, sink)
            for block in wav.read_windows(f, info, BLOCK_FRAMES * info.channels):
                frames = block.reshape(-1, info.channels)
                mix.feed(mono_mix(frames, scale=scale))
                done += len(frames)
                if progress is not None:
                    progress(done, info.frames)
            mix.finish()
    except OSError as e:
        raise _cannot_read(path, e) from e
    return info


def cover_mix(
    cover: str | os.PathLike[str], *, progress: Progress | None = None
) -> tuple[WavInfo, Mix]:
    """Read the PCM WAV ``cover`` once: its format and its working mix (16 kHz mono)."""
    parts, sink = _collect()
    info = _feed_cover(cover, sink, progress)
    return info, _joined(parts)


def write_cover_mix(
    cover: str | os.PathLike[str], dst: BinaryIO, *, progress: Progress | None = None
) -> WavInfo:
    """:func:`cover_mix` written to ``dst`` as a mix object as it is made (the client's
    upload: the mix is never whole in memory)."""
    info = _feed_cover(cover, None, None)
    wire.write_mix_header(dst, working_length(info.frames, info.sample_rate))
    return _feed_cover(cover, lambda piece: _write(dst, piece), progress)


def _write(dst: BinaryIO, piece: Mix) -> None:
    wire.write_mix_samples(dst, piece)


def file_mix(
    path: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
    seconds: float | None = None,
) -> Mix:
    """The working mix of a file to decode, in any format soundfile reads (its first
    ``seconds`` only, if given)."""
    parts, sink = _collect()
    _feed_file(path, lambda samples: sink, progress, seconds)
    return _joined(parts)


def write_file_mix(
    path: str | os.PathLike[str], dst: BinaryIO, *, progress: Progress | None = None
) -> None:
    """:func:`file_mix` written to ``dst`` (at its start, seekable) as a mix object as it is
    made."""

    def sink_for(samples: int) -> MixSink:
        dst.seek(0)
        dst.truncate()
        wire.write_mix_header(dst, samples)
        return lambda piece: _write(dst, piece)

    _feed_file(path, sink_for, progress, None)


def _feed_file(
    path: str | os.PathLike[str],
    sink_for: Callable[[int], MixSink],
    progress: Progress | None,
    seconds: float | None,
) -> None:
    """Read a file to decode once (twice if its header miscounts its frames, as compressed
    files may), its working mix going to ``sink_for(samples)``."""
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
                _stream_mix(monos, rate, limit, sink_for, progress)
            except _LengthMismatch:
                f.seek(0)
                whole = mono_mix(f.read(limit, dtype="float64", always_2d=True))
                _stream_mix(iter([whole]), rate, len(whole), sink_for, progress)
    except sf.LibsndfileError as e:
        raise RobustError(
            f"{source.name} is not an audio file this client reads ({e}).", code="not_audio"
        ) from e
    except OSError as e:
        raise _cannot_read(source, e) from e


class _LengthMismatch(Exception):
    pass


def _stream_mix(
    monos: Iterator[npt.NDArray[np.float64]],
    rate: int,
    frames: int,
    sink_for: Callable[[int], MixSink],
    progress: Progress | None,
) -> None:
    """Feed ``frames`` samples at ``rate`` to a mix; raises :class:`_LengthMismatch` when
    ``monos`` holds another number of them."""
    parts, collect = _collect()
    mix, done = _MixBuilder(rate, frames, collect), 0
    sink: MixSink | None = None
    for mono in monos:
        if done + len(mono) > frames:
            raise _LengthMismatch()
        mix.feed(mono)
        done += len(mono)
        if sink is None:  # the first block read is the check that the length holds
            sink = sink_for(working_length(frames, rate))
        while parts:
            sink(parts.pop(0))
        if progress is not None:
            progress(done, frames)
    if done != frames:
        raise _LengthMismatch()
    mix.finish()
    if sink is None:
        sink = sink_for(working_length(frames, rate))
    for piece in parts:
        sink(piece)


def file_probe(path: str | os.PathLike[str], k_pos: bytes) -> float:
    """:func:`~subtone.robust.sync.probe` of a file to decode: reads its first dozen seconds
    only, resampled in numpy alone (:func:`~subtone.robust._dsp.resample_quick`: no
    ``scipy.signal`` to load), so a wrong passphrase is told quickly, before anything is
    sent."""
    source = Path(path)
    try:
        with sf.SoundFile(str(source)) as f:
            rate = f.samplerate
            frames = min(f.frames, math.ceil((PROBE_SECONDS + PROBE_MARGIN_SECONDS) * rate))
            mono = mono_mix(f.read(frames, dtype="float64", always_2d=True))
    except sf.LibsndfileError as e:
        raise RobustError(
            f"{source.name} is not an audio file this client reads ({e}).", code="not_audio"
        ) from e
    except OSError as e:
        raise _cannot_read(source, e) from e
    return probe(as_mix(resample_quick(mono, rate, RATE)), k_pos)


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
