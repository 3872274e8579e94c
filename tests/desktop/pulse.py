"""A private PulseAudio daemon for the tests that record through the real PortAudio path.

``with PulseAudio() as pulse:`` starts ``pulseaudio`` in an ``XDG_RUNTIME_DIR`` of its own (a
short temporary path: a socket path has a length limit), so it never meets another daemon on
the machine; :meth:`PulseAudio.pactl` loads its modules (a null sink, a pipe source...);
:meth:`PulseAudio.spawn` starts a client of it (``paplay``) that is stopped with it; and
:func:`portaudio_on` points this process's PortAudio at it (``PULSE_SERVER``, then a rescan).
On exit every client and the daemon are stopped by pid, and the folder is removed.

:class:`PulseUnavailable` says why PulseAudio cannot run here (not installed, or the daemon
does not start or answer): the only reason for such a test to skip. ``scripts/setup.sh``
installs ``pulseaudio``, ``pulseaudio-utils`` and ``libportaudio2``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

__all__ = ["PulseAudio", "PulseUnavailable", "alive", "portaudio_on"]

START_TIMEOUT_S = 15.0
COMMAND_TIMEOUT_S = 20.0


class PulseUnavailable(RuntimeError):
    """PulseAudio cannot run on this machine; the message says why."""


def alive(pid: int) -> bool:
    """Running (a zombie left for init to reap counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _stop_pid(pid: int) -> None:
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not alive(pid):
                return
            time.sleep(0.05)


class PulseAudio:
    """One private daemon; see the module's docstring."""

    def __init__(self) -> None:
        self.runtime: Path | None = None
        self.pid: int | None = None
        self.clients: list[subprocess.Popen[bytes]] = []

    @property
    def env(self) -> dict[str, str]:
        """The environment of a client of this daemon (and of nothing else)."""
        assert self.runtime is not None, "not started"
        env = os.environ | {"XDG_RUNTIME_DIR": str(self.runtime), "HOME": str(self.runtime)}
        env.pop("PULSE_SERVER", None)
        return env

    @property
    def server(self) -> str:
        """Its socket, as ``PULSE_SERVER`` names it."""
        assert self.runtime is not None, "not started"
        return f"unix:{self.runtime / 'pulse' / 'native'}"

    @property
    def log(self) -> str:
        """What the daemon logged so far (for a failure's message)."""
        if self.runtime is None:
            return ""
        with contextlib.suppress(OSError):
            return (self.runtime / "pulse.log").read_text(errors="replace")[-2000:]
        return ""

    def _run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, env=self.env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
        )

    def start(self) -> PulseAudio:
        if shutil.which("pulseaudio") is None or shutil.which("pactl") is None:
            raise PulseUnavailable(
                "PulseAudio is not installed (scripts/setup.sh: apt-get install pulseaudio "
                "pulseaudio-utils)"
            )
        self.runtime = Path(tempfile.mkdtemp(prefix="subtone-pa-"))
        self.runtime.chmod(0o700)
        started = self._run(
            [
                "pulseaudio",
                "-D",
                "--exit-idle-time=-1",
                "-n",
                "--load=module-native-protocol-unix",
                f"--log-target=file:{self.runtime / 'pulse.log'}",
            ]
        )
        pid_file = self.runtime / "pulse" / "pid"
        if pid_file.exists():
            self.pid = int(pid_file.read_text().split()[0])
        if started.returncode != 0 or self.pid is None:
            why = started.stderr.strip() or started.stdout.strip() or self.log
            raise PulseUnavailable(f"PulseAudio could not start: {why}")
        deadline = time.monotonic() + START_TIMEOUT_S
        while self._run(["pactl", "info"]).returncode != 0:
            if time.monotonic() > deadline:
                raise PulseUnavailable(
                    f"PulseAudio started but does not answer pactl within {START_TIMEOUT_S:g} s"
                )
            time.sleep(0.1)
        return self

    def pactl(self, *args: str) -> str:
        """Run ``pactl ARGS`` on this daemon; its output (a failure raises, with the log)."""
        done = self._run(["pactl", *args])
        if done.returncode != 0:
            raise RuntimeError(f"pactl {' '.join(args)} failed: {done.stderr.strip()}\n{self.log}")
        return done.stdout.strip()

    def spawn(self, args: list[str]) -> subprocess.Popen[bytes]:
        """Start a client of this daemon (``paplay ...``); it is stopped by :meth:`stop`."""
        process = subprocess.Popen(
            args, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.clients.append(process)
        return process

    def stop(self) -> None:
        """Stop the clients, then the daemon (by pid, waiting for each); remove the folder.
        Safe to call again."""
        for process in self.clients:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
            if process.stderr is not None:
                process.stderr.close()
        if self.pid is not None:
            _stop_pid(self.pid)
        if self.runtime is not None:
            shutil.rmtree(self.runtime, ignore_errors=True)

    @property
    def stopped(self) -> bool:
        """The daemon and every client are gone."""
        return (self.pid is None or not alive(self.pid)) and all(
            p.poll() is not None for p in self.clients
        )

    def __enter__(self) -> PulseAudio:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def portaudio_on(
    pulse: PulseAudio, sd: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """This process's PortAudio sees ``pulse``'s devices while inside (``PULSE_SERVER``, then
    a rescan). On the way out ``pulse`` is stopped first, then PortAudio rescans to forget
    its devices: ``PULSE_SERVER`` still names the dead socket then, so libpulse cannot
    autospawn another daemon."""
    monkeypatch.setenv("PULSE_SERVER", pulse.server)
    try:
        sd._terminate()
        sd._initialize()
        yield
    finally:
        pulse.stop()
        with contextlib.suppress(Exception):
            sd._terminate()
            sd._initialize()
        monkeypatch.delenv("PULSE_SERVER", raising=False)
