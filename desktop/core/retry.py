"""Exponential backoff with full jitter, as a value: how many tries, and how long between them.

A few lines are enough for the client's needs (a part PUT, an idempotent API call, polling),
so no retry library is pulled in. The random source and the sleep are the caller's, so tests
run instantly and deterministically.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["DEFAULT_BACKOFF", "Backoff"]


@dataclass(frozen=True)
class Backoff:
    """Try at most ``max_attempts`` times; before try ``n + 1`` wait up to
    ``min(max_seconds, base_seconds * multiplier ** (n - 1))``, drawn uniformly from
    ``[0, that]`` ("full jitter": clients that failed together do not retry together)."""

    max_attempts: int = 5
    base_seconds: float = 0.5
    max_seconds: float = 30.0
    multiplier: float = 2.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_seconds < 0 or self.max_seconds < 0 or self.multiplier < 1:
            raise ValueError("backoff delays must be non-negative and not shrink")

    def ceiling(self, attempt: int) -> float:
        """The longest wait after failed try number ``attempt`` (1-based)."""
        return float(min(self.max_seconds, self.base_seconds * self.multiplier ** (attempt - 1)))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait after failed try number ``attempt`` (1-based)."""
        ceiling = self.ceiling(attempt)
        if not self.jitter:
            return ceiling
        return (rng or _RNG).uniform(0.0, ceiling)

    def gives_up_after(self, attempt: int) -> bool:
        """Whether try number ``attempt`` was the last one allowed."""
        return attempt >= self.max_attempts


_RNG = random.Random()  # noqa: S311 - jitter, not cryptography
DEFAULT_BACKOFF = Backoff()
