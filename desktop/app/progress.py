"""Turn the core's progress events into one bar's value and one line of text (Qt-free).

Byte stages (hashing, uploads, downloads) get a speed and a time left, measured over the
last few seconds; the server's job gets its percentage.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from desktop.app.formatting import format_duration, format_rate, format_size
from desktop.core.orchestration import ProgressEvent, Stage

__all__ = ["ProgressText", "Throttle", "Transfer", "TransferMeter"]

RATE_WINDOW_SECONDS: Final = 5.0
MIN_RATE_SPAN_SECONDS: Final = 0.2
_BYTE_STAGES: Final = frozenset({Stage.HASH, Stage.UPLOAD, Stage.UPLOAD_PAYLOAD, Stage.DOWNLOAD})


@dataclass(frozen=True)
class Transfer:
    done: int
    total: int
    bytes_per_second: float | None
    seconds_left: float | None

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0


class TransferMeter:
    """Speed and time left of one transfer, over a sliding window of recent samples."""

    def __init__(
        self,
        *,
        window_seconds: float = RATE_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window = window_seconds
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque()

    def reset(self) -> None:
        self._samples.clear()

    def update(self, done: int, total: int) -> Transfer:
        now = self._clock()
        if self._samples and done < self._samples[-1][1]:
            self._samples.clear()  # went backwards: a new transfer
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > self._window:
            self._samples.popleft()
        first_time, first_done = self._samples[0]
        span = now - first_time
        rate = (done - first_done) / span if span >= MIN_RATE_SPAN_SECONDS else None
        left = None
        if rate is not None and rate > 0:
            left = max(0, total - done) / rate
        return Transfer(done, total, rate, left)


class ProgressText:
    """Keeps one meter per run; ``describe(event)`` gives ``(fraction, text)`` for the bar."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._meter = TransferMeter(clock=clock)
        self._stage: Stage | None = None

    def describe(self, event: ProgressEvent) -> tuple[float, str]:
        if event.stage is not self._stage:
            self._meter.reset()
            self._stage = event.stage
        label = event.stage.label
        if event.stage in _BYTE_STAGES:
            transfer = self._meter.update(int(event.done), int(event.total))
            parts = [f"{label}: {format_size(transfer.done)} of {format_size(transfer.total)}"]
            if transfer.bytes_per_second is not None and event.stage is not Stage.HASH:
                parts.append(format_rate(transfer.bytes_per_second))
                if transfer.seconds_left is not None and transfer.done < transfer.total:
                    parts.append(f"{format_duration(transfer.seconds_left)} left")
            return transfer.fraction, " · ".join(parts)
        fraction = min(1.0, event.done / event.total) if event.total else 0.0
        if event.stage is Stage.JOB:
            return fraction, f"{label}: {fraction:.0%}"
        return fraction, f"{label}…" if fraction < 1 else label


class Throttle:
    """Lets a call through at most every ``interval`` seconds, and always the last one."""

    def __init__(
        self, interval_seconds: float = 0.1, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval = interval_seconds
        self._clock = clock
        self._last = -float("inf")

    def ready(self, *, final: bool = False) -> bool:
        now = self._clock()
        if final or now - self._last >= self._interval:
            self._last = now
            return True
        return False
