"""What the Encode screen says about the chosen files, computed locally (Qt-free).

A cover's format and capacity come from its WAV header alone. A secret is prepared exactly as
the encode will prepare it (audio is compressed to Opus), so the size compared with the
capacity is the real sealed size, and a secret that cannot fit is refused before any upload.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from desktop.app.formatting import format_clock, format_size
from desktop.core.envelope import PreparedSecret, prepare_audio_secret, sealed_length
from subtone.errors import SubtoneError
from subtone.robust.layout import capacity_frames
from subtone.stego.layout import read_capacity

__all__ = [
    "CoverInfo",
    "Fit",
    "SecretInfo",
    "check_fit",
    "describe_cover",
    "describe_secret",
    "recording_name",
]

_CHANNEL_NAMES = {1: "mono", 2: "stereo"}


@dataclass(frozen=True)
class CoverInfo:
    path: Path
    size_bytes: int
    samplerate: int
    channels: int
    bits_per_sample: int
    frames: int
    samples: int
    capacity_bytes: int
    robust_capacity_bytes: int = 0
    """What it holds in robust mode (survives re-encoding; about 100 bits per second)."""

    def holds(self, robust: bool) -> int:
        return self.robust_capacity_bytes if robust else self.capacity_bytes

    @property
    def robust_summary(self) -> str:
        return (
            f"Survives re-encoding (Opus, MP3, resampling, volume, trimming): holds up to "
            f"{format_size(self.robust_capacity_bytes)}. The server then sees a 16 kHz mono "
            "copy of the cover."
        )

    @property
    def duration_seconds(self) -> float:
        return self.frames / self.samplerate if self.samplerate else 0.0

    @property
    def summary(self) -> str:
        channels = _CHANNEL_NAMES.get(self.channels, f"{self.channels} channels")
        rate = f"{self.samplerate / 1000:g} kHz"
        return (
            f"{format_clock(self.duration_seconds)} · WAV {self.bits_per_sample}-bit · {rate} · "
            f"{channels} · {format_size(self.size_bytes)} · holds up to "
            f"{format_size(self.capacity_bytes)}"
        )


def describe_cover(path: str | os.PathLike[str]) -> CoverInfo:
    """Read a cover's header; raises :class:`SubtoneError` (``not_wav``...) for unusable files."""
    cover = Path(path)
    try:
        info, capacity = read_capacity(cover)
        size = cover.stat().st_size
    except OSError as e:
        raise SubtoneError(
            f"Cannot read {cover.name}: {e.strerror}.", code="unreadable_file"
        ) from e
    return CoverInfo(
        path=cover,
        size_bytes=size,
        samplerate=info.sample_rate,
        channels=info.channels,
        bits_per_sample=info.bits_per_sample,
        frames=info.frames,
        samples=info.samples,
        capacity_bytes=capacity.max_payload_bytes,
        robust_capacity_bytes=capacity_frames(info.frames, info.sample_rate),
    )


@dataclass(frozen=True)
class SecretInfo:
    path: Path
    size_bytes: int
    mtime_ns: int
    prepared: PreparedSecret
    payload_bytes: int
    """The sealed payload's size: what must fit in the cover."""

    @property
    def compressed(self) -> bool:
        return self.prepared.media_type.startswith("audio/ogg")

    @property
    def summary(self) -> str:
        what = "audio, compressed to Opus" if self.compressed else self.prepared.media_type
        return f"{format_size(self.size_bytes)} ({what}) → {format_size(self.payload_bytes)} sealed"

    def is_current(self) -> bool:
        """The file is still as it was measured."""
        try:
            st = self.path.stat()
        except OSError:
            return False
        return (st.st_size, st.st_mtime_ns) == (self.size_bytes, self.mtime_ns)


def describe_secret(path: str | os.PathLike[str]) -> SecretInfo:
    """Prepare the secret as the encode will (slow for long audio: call it off the GUI thread)."""
    secret = Path(path)
    try:
        st = secret.stat()
    except OSError as e:
        raise SubtoneError(
            f"Cannot read {secret.name}: {e.strerror}.", code="unreadable_file"
        ) from e
    prepared = prepare_audio_secret(secret)
    payload = sealed_length(len(prepared.data), name=prepared.name, media_type=prepared.media_type)
    return SecretInfo(secret, st.st_size, st.st_mtime_ns, prepared, payload)


@dataclass(frozen=True)
class Fit:
    fits: bool
    message: str
    share: float
    """The part of the cover's capacity the secret uses."""


def check_fit(cover: CoverInfo, secret: SecretInfo, *, robust: bool = False) -> Fit:
    capacity = cover.holds(robust)
    need = secret.payload_bytes
    share = need / capacity if capacity else float("inf")
    if need <= capacity:
        return Fit(True, f"Fits: the secret uses {share:.0%} of what this cover can hold.", share)
    return Fit(
        False,
        f"Too large: the sealed secret needs {format_size(need)} but this cover holds at most "
        f"{format_size(capacity)}. Choose a longer cover or a smaller secret.",
        share,
    )


def recording_name(path: Path) -> str:
    """How a recording is named where a file name would be: ``Recording (0:06.2, 12 KB)``
    (its path inside the app's own folder means nothing to a person)."""
    try:
        size = path.stat().st_size
        info = sf.info(str(path))
    except (OSError, RuntimeError, sf.SoundFileError):
        return "Recording"
    seconds = info.frames / info.samplerate if info.samplerate else 0.0
    return f"Recording ({format_clock(seconds)}, {format_size(size)})"
