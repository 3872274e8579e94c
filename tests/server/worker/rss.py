"""Peak resident memory of a process while it works: a helper for the worker benchmark.

Not a test (pytest does not collect it). Use :class:`PeakRss` around any work::

    with PeakRss(worker_pid) as peak:
        ...  # enqueue a job and wait for it
    print(peak.peak_bytes, peak.baseline_bytes)

or run one embed job through the runner in a fresh process and print its peak::

    .venv/bin/python -m tests.server.worker.rss --seconds 600

(in-process engine, a local folder store in a temporary directory, the machine's Redis under a
prefix of its own, deleted afterwards). The peak should not grow with ``--seconds``: the worker
holds about two storage parts and ``WINDOWS_IN_FLIGHT`` windows, whatever the cover's size.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType

import psutil
import redis

DEFAULT_INTERVAL_SECONDS = 0.01
KIB = 1024
MIB = 1024 * KIB


class PeakRss:
    """Samples the RSS of ``pid`` (default: this process), children included, on a thread."""

    def __init__(
        self,
        pid: int | None = None,
        *,
        interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
        children: bool = True,
    ) -> None:
        self._process = psutil.Process(pid or os.getpid())
        self._interval = interval_seconds
        self._children = children
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="peak-rss", daemon=True)
        self.baseline_bytes = 0
        self.peak_bytes = 0
        self.samples = 0

    def rss(self) -> int:
        total: int = self._process.memory_info().rss
        if self._children:
            for child in self._process.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
        return total

    @property
    def growth_bytes(self) -> int:
        """How far the peak rose above the RSS when measuring began."""
        return self.peak_bytes - self.baseline_bytes

    def __enter__(self) -> PeakRss:
        self.baseline_bytes = self.peak_bytes = self.rss()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()
        self._sample()

    def _loop(self) -> None:
        while not self._done.wait(self._interval):
            self._sample()

    def _sample(self) -> None:
        try:
            self.peak_bytes = max(self.peak_bytes, self.rss())
            self.samples += 1
        except psutil.NoSuchProcess:
            self._done.set()


def max_rss_self_bytes() -> int:
    """The kernel's own high-water mark of this process's RSS (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * KIB


def _run_one_embed(seconds: float, redis_url: str) -> tuple[PeakRss, float, int]:
    from server.integrations.localstore import LocalStore
    from server.jobs import runner
    from server.settings import Settings
    from subtone.stego import wav
    from tests.server.worker.support import World, make_deps

    prefix = f"subtone-rss-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    try:
        with tempfile.TemporaryDirectory(prefix="subtone-rss-") as tmp:
            cover = Path(tmp) / "cover.wav"
            wav.generate_cover(cover, seconds)
            store = LocalStore(Path(tmp) / "objects", secrets.token_hex(16))
            settings = Settings(DATA_DIR=Path(tmp), REDIS_URL=redis_url, REDIS_PREFIX=prefix)
            world = World(make_deps(settings, client, store), store)
            size = cover.stat().st_size
            job_id = world.embed_job(cover.read_bytes(), secrets.token_bytes(64 * KIB))
            cover.unlink()
            started = time.perf_counter()
            with PeakRss() as peak:
                runner.run(job_id, deps=world.deps)
            elapsed = time.perf_counter() - started
            assert world.record(job_id).state.value == "succeeded", world.record(job_id)
            return peak, elapsed, size
    finally:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="cover length (stereo)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    peak, elapsed, size = _run_one_embed(args.seconds, args.redis_url)
    print(
        f"cover {size / MIB:.1f} MiB, embedded in {elapsed:.2f} s; RSS before "
        f"{peak.baseline_bytes / MIB:.1f} MiB, peak {peak.peak_bytes / MIB:.1f} MiB "
        f"(+{peak.growth_bytes / MIB:.1f} MiB, {peak.samples} samples)"
    )


if __name__ == "__main__":
    main()
