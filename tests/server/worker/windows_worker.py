"""``python -m tests.server.worker.windows_worker LOG DELAY``: the real worker process
(``server.worker.main``) with the in-process engine in Triton's place, slowed to DELAY seconds a
window, writing one line per window it finishes into LOG: ``<its key, hex> <seconds>``. Two runs
of one job show which windows the second did again."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

import server.worker
from subtone.stego.engine import EmbedTask, ExtractTask, InProcessEngine

ENGINE = InProcessEngine()


class WindowLog:
    """A stand-in for server.integrations.triton.TritonEngine: ready at once, slow, logging."""

    log: Path
    delay: float
    lock = threading.Lock()

    def __init__(self, url: str, *, timeout_seconds: float, **_: object) -> None:
        pass

    def ready(self) -> None:
        pass

    def close(self) -> None:
        pass

    def _done(self, key: bytes, started: float) -> None:
        with self.lock, self.log.open("a") as out:
            out.write(f"{key.hex()} {time.monotonic() - started:.3f}\n")

    def embed(self, tasks: Sequence[EmbedTask]) -> list[npt.NDArray[np.int32]]:
        results = []
        for task in tasks:  # one window at a time, each logged when done
            started = time.monotonic()
            time.sleep(self.delay)
            results += ENGINE.embed([task])
            self._done(task.key, started)
        return results

    def extract(self, tasks: Sequence[ExtractTask]) -> list[npt.NDArray[np.uint8]]:
        results = []
        for task in tasks:
            started = time.monotonic()
            time.sleep(self.delay)
            results += ENGINE.extract([task])
            self._done(task.key, started)
        return results


if __name__ == "__main__":
    WindowLog.log, WindowLog.delay = Path(sys.argv[1]), float(sys.argv[2])
    server.worker.TritonEngine = WindowLog  # type: ignore[misc,assignment]
    raise SystemExit(server.worker.main())
