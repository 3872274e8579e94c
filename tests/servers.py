"""Real servers the tests start as processes, each on a port the OS picks and stopped by the
context manager that started it."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import httpx

MOTO_SERVER = Path(sys.executable).with_name("moto_server")
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
POLL_SECONDS = 0.05

T = TypeVar("T")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(
    condition: Callable[[], T | None], process: subprocess.Popen[bytes], log: Path, what: str
) -> T:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}):\n{log.read_text()}")
        value = condition()
        if value:
            return value
        time.sleep(POLL_SECONDS)
    raise RuntimeError(f"{what} did not start in {START_TIMEOUT_SECONDS}s:\n{log.read_text()}")


def answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=1.0)
    except httpx.TransportError:
        return False
    return True


@contextmanager
def moto_server(log: Path) -> Iterator[str]:
    """A moto S3 server process on 127.0.0.1; yields its URL."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", "0"], stdout=out, stderr=subprocess.STDOUT
        )
    try:

        def port() -> str | None:
            found = re.search(r"Running on http://127\.0\.0\.1:(\d+)", log.read_text())
            return found.group(1) if found else None

        url = f"http://127.0.0.1:{wait_for(port, process, log, 'moto_server')}"
        wait_for(lambda: answers(url), process, log, "moto_server")
        yield url
    finally:
        stop(process)
