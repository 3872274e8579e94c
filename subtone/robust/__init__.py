"""Robust mode: a payload that survives re-encoding (Opus, MP3), resampling, gain and cropping.

Numpy, scipy and reedsolo only; see :mod:`subtone.robust.core` (the algorithm),
:mod:`subtone.robust.wire` (what travels), :mod:`subtone.robust.files` (the client's steps on
files) and ``docs/robust.md``."""

from subtone.robust.core import (
    CapacityExceeded,
    ChannelDamaged,
    NoPayload,
    Residual,
    RobustError,
    UnsuitableCover,
    apply_residual,
    capacity,
    capacity_frames,
    embed,
    embed_mix,
    extract,
    extract_mix,
    mix_capacity,
    working_mix,
)
from subtone.robust.files import (
    apply_residual_file,
    cover_capacity,
    cover_mix,
    embed_file,
    extract_file,
    file_mix,
    file_probe,
    write_cover_mix,
    write_file_mix,
)

__all__ = [
    "CapacityExceeded",
    "ChannelDamaged",
    "NoPayload",
    "Residual",
    "RobustError",
    "UnsuitableCover",
    "apply_residual",
    "apply_residual_file",
    "capacity",
    "capacity_frames",
    "cover_capacity",
    "cover_mix",
    "embed",
    "embed_file",
    "embed_mix",
    "extract",
    "extract_file",
    "extract_mix",
    "file_mix",
    "file_probe",
    "mix_capacity",
    "working_mix",
    "write_cover_mix",
    "write_file_mix",
]
