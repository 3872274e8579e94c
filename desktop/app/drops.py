"""Where a file dropped on the window goes (Qt-free): the cover, the secret or the stego file."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

__all__ = ["DropTarget", "route_drop"]

_WAV_SUFFIXES = frozenset({".wav", ".wave"})


class DropTarget(StrEnum):
    COVER = "cover"
    SECRET = "secret"  # noqa: S105 - a field name
    STEGO = "stego"


def route_drop(screen: str, paths: list[Path], *, has_cover: bool) -> list[tuple[DropTarget, Path]]:
    """Assign dropped files on ``screen`` ("record", "encode", "decode"...) to their fields.

    On Decode the first file is the stego file; on Record it is the secret. On Encode a WAV
    goes to the cover while the cover is empty, and the next file is the secret.
    """
    files = [p for p in paths if p.is_file()]
    if not files:
        return []
    if screen == "decode":
        return [(DropTarget.STEGO, files[0])]
    if screen == "record":
        return [(DropTarget.SECRET, files[0])]
    routed: list[tuple[DropTarget, Path]] = []
    cover_taken = has_cover
    for path in files:
        if not cover_taken and path.suffix.lower() in _WAV_SUFFIXES:
            routed.append((DropTarget.COVER, path))
            cover_taken = True
        elif all(t is not DropTarget.SECRET for t, _ in routed):
            routed.append((DropTarget.SECRET, path))
    return routed
