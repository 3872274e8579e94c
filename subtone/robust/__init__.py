"""Robust mode: a payload that survives re-encoding (Opus, MP3), resampling, gain and cropping.

Numpy and scipy; see :mod:`subtone.robust.core` (the format: keys, header, working mix),
:mod:`subtone.robust.embedding`, :mod:`subtone.robust.sync` and
:mod:`subtone.robust.extraction` (the algorithm's stages), :mod:`subtone.robust.layout`
(capacities, no scipy), :mod:`subtone.robust.wire` (what travels), :mod:`subtone.robust.files`
(the client's steps on files) and ``docs/robust.md``.

The names below are loaded when first used (:pep:`562`): ``subtone.robust.layout`` (what the
app and the CLI read to show a capacity) imports no scipy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from subtone.lazy import lazy_attributes

if TYPE_CHECKING:
    from subtone.robust.core import (
        CapacityExceeded,
        ChannelDamaged,
        NoPayload,
        Residual,
        RobustError,
        UnsuitableCover,
        working_mix,
    )
    from subtone.robust.embedding import apply_residual, embed, embed_mix
    from subtone.robust.extraction import extract, extract_mix
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
    from subtone.robust.layout import (
        capacity,
        capacity_frames,
        mix_capacity,
    )

_HOMES = {
    "CapacityExceeded": "subtone.robust.core",
    "ChannelDamaged": "subtone.robust.core",
    "NoPayload": "subtone.robust.core",
    "Residual": "subtone.robust.core",
    "RobustError": "subtone.robust.core",
    "UnsuitableCover": "subtone.robust.core",
    "apply_residual": "subtone.robust.embedding",
    "apply_residual_file": "subtone.robust.files",
    "capacity": "subtone.robust.layout",
    "capacity_frames": "subtone.robust.layout",
    "cover_capacity": "subtone.robust.files",
    "cover_mix": "subtone.robust.files",
    "embed": "subtone.robust.embedding",
    "embed_file": "subtone.robust.files",
    "embed_mix": "subtone.robust.embedding",
    "extract": "subtone.robust.extraction",
    "extract_file": "subtone.robust.files",
    "extract_mix": "subtone.robust.extraction",
    "file_mix": "subtone.robust.files",
    "file_probe": "subtone.robust.files",
    "mix_capacity": "subtone.robust.layout",
    "working_mix": "subtone.robust.core",
    "write_cover_mix": "subtone.robust.files",
    "write_file_mix": "subtone.robust.files",
}


__getattr__ = lazy_attributes(__name__, _HOMES)


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
