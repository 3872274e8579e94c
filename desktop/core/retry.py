"""Retry policies of the client as values, run by tenacity.

A :class:`Backoff` says how many tries and how long between them: exponential growth with
full jitter (clients that failed together do not retry together). :meth:`Backoff.retrying`
gives the ``tenacity.Retrying`` that runs a call under it (the API client's idempotent
requests, the uploader's part PUTs); the sleep is the caller's, so tests run instantly.

Kept by hand: :meth:`Backoff.ceiling`, which is also the polling interval of a job. Polling is
not retrying (it starts over whenever the job changes and never gives up on its own), so no
retry library models it; it is one line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import tenacity

__all__ = ["DEFAULT_BACKOFF", "Backoff", "Retrying", "Wait"]

log = logging.getLogger(__name__)

Retrying = tenacity.Retrying
Wait = Callable[[tenacity.RetryCallState], float]


@dataclass(frozen=True)
class Backoff:
    """Try at most ``max_attempts`` times; before try ``n + 1`` wait up to
    ``min(max_seconds, base_seconds * multiplier ** (n - 1))``, drawn uniformly from
    ``[0, that]`` (or exactly that without ``jitter``)."""

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

    def wait(self) -> tenacity.wait.wait_base:
        """The wait between tries, as tenacity computes it."""
        if self.jitter:
            return tenacity.wait_random_exponential(
                multiplier=self.base_seconds, max=self.max_seconds, exp_base=self.multiplier
            )
        return tenacity.wait_exponential(
            multiplier=self.base_seconds, max=self.max_seconds, exp_base=self.multiplier
        )

    def retrying(
        self,
        *,
        retry: Callable[[BaseException], bool],
        sleep: Callable[[float], None] = time.sleep,
        wait: Wait | None = None,
        before_sleep: Callable[[tenacity.RetryCallState], None] | None = None,
    ) -> Retrying:
        """Runs a call until it succeeds, raises what ``retry`` refuses, or has had its tries;
        the last error is raised as it is. ``wait`` replaces the backoff's own wait;
        ``before_sleep`` reports a failed try that will be retried (else a DEBUG line)."""
        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=wait or self.wait(),
            retry=tenacity.retry_if_exception(retry),
            sleep=sleep,
            before_sleep=before_sleep or tenacity.before_sleep_log(log, logging.DEBUG),
            reraise=True,
        )


DEFAULT_BACKOFF = Backoff()
