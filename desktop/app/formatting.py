"""Numbers as a person reads them: sizes, durations, rates, dates (Qt-free)."""

from __future__ import annotations

import math
import time
from typing import Final

__all__ = ["format_clock", "format_duration", "format_rate", "format_size", "format_timestamp"]

_UNITS: Final = ("B", "KB", "MB", "GB", "TB")


def format_size(size: float) -> str:
    """``1234567`` → ``1.2 MB`` (decimal units, as file managers show)."""
    value = float(max(0.0, size))
    for unit in _UNITS:
        if value < 1000 or unit == _UNITS[-1]:
            if unit == "B":
                return f"{int(value)} B"
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def format_rate(bytes_per_second: float) -> str:
    return f"{format_size(bytes_per_second)}/s"


def format_clock(seconds: float) -> str:
    """An elapsed time as a clock: ``0:07.3``, ``12:04.0``, ``1:02:05``."""
    seconds = max(0.0, seconds)
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f"{hours}:{minutes:02d}:{int(secs):02d}"
    return f"{minutes}:{secs:04.1f}"


def format_duration(seconds: float) -> str:
    """A time left, rounded as people say it: ``8 s``, ``3 min 10 s``, ``2 h 5 min``."""
    if not math.isfinite(seconds):
        return "a while"
    total = max(0, round(seconds))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs and minutes < 10 else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def format_timestamp(epoch: float) -> str:
    """A local date and time: ``2030-01-01 14:05``."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))
