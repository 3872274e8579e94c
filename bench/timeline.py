"""Where the time of one ``subtone`` run goes: its steps on a clock, as the user waits for them.

    SUBTONE_URL=... .venv/bin/python bench/timeline.py encode COVER SECRET -o OUT \\
        --passphrase-file FILE
    .venv/bin/python bench/timeline.py decode STEGO -o OUT --passphrase-file FILE

Runs the CLI in this process (the same arguments as ``subtone``) against a running stack
(``subtone standalone up``) and prints, in milliseconds from the start of the interpreter's
work here, when each step of the client began and ended, by thread: the imports, preparing the
task (sealing, the key derivation), writing the LSB plane, the uploads, the job (created,
followed to its end), the download, the copy of the cover and the patch, and every ``fsync``.
The steps are found by wrapping the orchestration's functions, so it measures the code as it
is, with no probes of its own in the product.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

START = time.perf_counter()
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STEPS: dict[str, tuple[str, ...]] = {
    "desktop.core.orchestration.prepare": ("prepare_encode", "prepare_decode"),
    "desktop.core.orchestration.transfer": (
        "write_lsb_plane",
        "upload_inputs",
        "download_result",
        "start_stego",
    ),
    "desktop.core.orchestration.steps": ("run_job",),
    "subtone.stego.patch": ("apply_patch", "_copy"),
    "desktop.core.orchestration.oneshot": ("encode", "decode"),
}
"""Module → the functions whose start and end are marked (where they are defined; every
module that imported one by name gets the marked one too)."""


def mark(what: str) -> None:
    thread = threading.current_thread().name[:12]
    sys.stderr.write(f"{(time.perf_counter() - START) * 1000:7.0f} ms  {thread:12}  {what}\n")


def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        mark(f"> {name}")
        try:
            return function(*args, **kwargs)
        finally:
            mark(f"< {name}")

    return wrapper


def main() -> None:
    mark("start (interpreter up)")
    from desktop.cli import main as cli

    mark("CLI imported")
    modules = {name: importlib.import_module(name) for name in STEPS}
    mark("orchestration imported")
    for module_name, names in STEPS.items():
        for name in names:
            original = getattr(modules[module_name], name)
            wrapped = timed(name, original)
            for module in list(sys.modules.values()):
                if getattr(module, name, None) is original:
                    setattr(module, name, wrapped)
    fsync = os.fsync
    os.fsync = timed("fsync", fsync)
    sys.argv = ["subtone", *sys.argv[1:]]
    try:
        cli()
    finally:
        mark("end")


if __name__ == "__main__":
    main()
