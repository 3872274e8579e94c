"""What the worker loads before its first job: not the compiled kernel, not the robust mode."""

import subprocess
import sys

HEAVY = ("numba", "llvmlite", "scipy", "subtone.stego.kernel", "subtone.robust.core")


def test_the_worker_loads_neither_numba_nor_scipy_at_import():
    # Triton runs the kernel and the robust models; a worker that only runs LSB jobs never
    # needs them (some 120 MB of its resident memory). Robust jobs import them when they run.
    probe = (
        "import sys\n"
        "import server.worker\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules) or 'none')\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "none"
