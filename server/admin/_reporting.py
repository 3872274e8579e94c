"""Errors of the admin commands as ``error [code]: message`` and an exit status, as the
client CLI prints its own."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Final

import redis
import typer
from rich.console import Console
from rich.text import Text

from server.settings import Settings
from subtone.errors import SubtoneError

__all__ = ["EXIT_ERROR", "err", "out", "redis_errors", "reporting"]

EXIT_ERROR: Final = 1
EXIT_INTERRUPTED: Final = 130

out = Console()
err = Console(stderr=True)


@contextlib.contextmanager
def reporting() -> Iterator[None]:
    try:
        yield
    except SubtoneError as e:
        err.print(Text.assemble(("error", "bold red"), f" [{e.code}]: {e.message}"), soft_wrap=True)
        raise typer.Exit(EXIT_ERROR) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None


@contextlib.contextmanager
def redis_errors() -> Iterator[None]:
    """Redis unreachable (or refusing) as a message, not a traceback."""
    try:
        yield
    except redis.RedisError as e:
        url = Settings().REDIS_URL
        raise SubtoneError(
            f"Cannot reach Redis at {url} ({e}). Start it (`subtone standalone up` starts the "
            "machine's Redis if installed), or set SUBTONE_REDIS_URL.",
            code="redis_unavailable",
        ) from e
