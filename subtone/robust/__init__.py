"""Robust mode: a payload that survives re-encoding (Opus, MP3), resampling, gain and cropping.

Numpy, scipy and reedsolo only; see :mod:`subtone.robust.core` and ``docs/robust.md``."""

from subtone.robust.core import (
    ChannelDamaged,
    NoPayload,
    RobustError,
    capacity,
    embed,
    extract,
)
from subtone.robust.files import embed_file, extract_file

__all__ = [
    "ChannelDamaged",
    "NoPayload",
    "RobustError",
    "capacity",
    "embed",
    "embed_file",
    "extract",
    "extract_file",
]
