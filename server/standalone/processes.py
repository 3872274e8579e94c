"""The machine's processes as the standalone supervision sees them: system commands run to
completion, whether a pid lives, and the processes a stack marked as its own
(:data:`~server.standalone.stack.HOME_MARKER`), stopped when no supervisord looks after them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from server.standalone.stack import HOME_MARKER, POLL_SECONDS, StandaloneError

__all__ = ["alive", "marked_processes", "run_or_explain", "stop_marked", "tail"]

STRAY_STOP_SECONDS: Final = 10.0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is not alive
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == 0


def tail(path: Path, size: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


def run_or_explain(
    argv: list[str], what: str, timeout: float = 120.0, env: dict[str, str] | None = None
) -> None:
    """Run a system command; a failure is a :class:`StandaloneError` saying what it printed."""
    try:
        subprocess.run(argv, check=True, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.CalledProcessError as e:
        said = (e.stderr or e.stdout or "").strip()[-1500:]
        hint = " (are you root? try `sudo systemctl start` it)" if os.geteuid() != 0 else ""
        raise StandaloneError(
            f"Could not {what}{hint}: `{' '.join(argv[:2])}` exited with {e.returncode}."
            + (f"\n{said}" if said else ""),
            code="service_start_failed",
        ) from e
    except (OSError, subprocess.TimeoutExpired) as e:
        raise StandaloneError(f"Could not {what}: {e}.", code="service_start_failed") from e


def marked_processes(home: Path) -> list[int]:
    """Pids of the processes whose environment says this stack (``home``) started them."""
    marker = f"{HOME_MARKER}={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def stop_marked(home: Path, report: Callable[[str], None]) -> None:
    """Stop what the stack at ``home`` started that no supervisord looks after any more."""
    strays = marked_processes(home)
    if not strays:
        return
    for pid in strays:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STRAY_STOP_SECONDS
    while time.monotonic() < deadline and any(alive(p) for p in strays):
        time.sleep(POLL_SECONDS)
    for pid in strays:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    report(f"stopped {len(strays)} process(es) left by an earlier supervisor")
