"""A real X server for the desktop tests: Xvfb, on a display number it picks itself.

``-displayfd`` makes Xvfb choose the first free display and write its number to a pipe once it
accepts connections, so several test runs (or other X servers) on one machine never collide
and nothing has to poll for a socket. ``scripts/setup.sh`` installs Xvfb (apt ``xvfb``).
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import tempfile
import time
from typing import IO

__all__ = ["XServer", "XServerError"]

START_TIMEOUT_S = 20.0
SCREEN = (1920, 1200)


class XServerError(RuntimeError):
    pass


class XServer:
    """``with XServer() as display:`` gives ``":N"``, for ``DISPLAY``; stopped on exit."""

    def __init__(self, screen: tuple[int, int] = SCREEN) -> None:
        self.screen = screen
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        """Xvfb's messages (a file: a pipe nobody reads would fill and stop the server)."""
        self.display = ""

    def start(self) -> str:
        xvfb = shutil.which("Xvfb")
        if xvfb is None:
            raise XServerError("Xvfb is not installed: run scripts/setup.sh (apt package xvfb)")
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - open while Xvfb runs; stop() closes it
        read, write = os.pipe()
        width, height = self.screen
        try:
            self.process = subprocess.Popen(
                [
                    xvfb,
                    "-displayfd",
                    str(write),
                    "-screen",
                    "0",
                    f"{width}x{height}x24",
                    "-nolisten",
                    "tcp",
                    "-noreset",
                ],
                pass_fds=(write,),
                stdout=subprocess.DEVNULL,
                stderr=self._log,
            )
        finally:
            os.close(write)
        try:
            number = self._read_display(read)
        finally:
            os.close(read)
        self.display = f":{number}"
        return self.display

    def _read_display(self, read: int) -> str:
        process = self.process
        assert process is not None
        got = b""
        deadline = time.monotonic() + START_TIMEOUT_S
        while not got.endswith(b"\n"):
            ready, _, _ = select.select([read], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(read, 32) if ready else b""
            if not chunk:
                if process.poll() is None:
                    process.kill()
                process.wait()
                why = self._messages()[-2000:] or "no answer"
                self.stop()
                raise XServerError(f"Xvfb did not start: {why}")
            got += chunk
        return got.decode().strip()

    def _messages(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace").strip()

    def stop(self) -> None:
        process, self.process = self.process, None
        log, self._log = self._log, None
        if log is not None:
            log.close()
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
