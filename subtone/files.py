"""File helpers both sides use: an output that appears under its name only when complete."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_output"]


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike[str], *, mode: int | None = None, durable: bool = True
) -> Iterator[BinaryIO]:
    """A file that appears under ``path`` only once it is complete (temp file + rename), with
    permissions ``mode`` (else the temp file's owner-only 0600). ``durable``: on disk before
    it gets its name (``fsync``); without it a crash of the machine (not of the process) may
    leave the name on a file whose bytes never reached the disk, so only data that can be
    derived again and is checked before reuse should go without."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        if mode is not None:
            Path(tmp).chmod(mode)
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
