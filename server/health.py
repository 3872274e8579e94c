"""Is the API up (``/healthz``), and can it serve (``/readyz``: Redis, broker, storage, Triton)?"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from subtone.protocol import Readiness

__all__ = ["OK", "ReadinessService"]

log = logging.getLogger(__name__)

OK = "ok"
UNAVAILABLE = "unavailable"


class ReadinessService:
    """Runs each named check; a check passes when it returns, fails when it raises."""

    def __init__(self, checks: Mapping[str, Callable[[], object]]) -> None:
        self._checks = dict(checks)

    def check(self) -> Readiness:
        results = {name: self._run(name, check) for name, check in self._checks.items()}
        return Readiness(ready=all(r == OK for r in results.values()), checks=results)

    @staticmethod
    def _run(name: str, check: Callable[[], object]) -> str:
        try:
            check()
        except Exception as e:
            log.warning("readiness: %s is not ready: %s", name, e)
            return f"{UNAVAILABLE} ({type(e).__name__})"
        return OK
