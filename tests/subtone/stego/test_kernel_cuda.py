"""The CUDA kernel (subtone/stego/_kernel_cuda.py) against the CPU kernel, under numba's CUDA
simulator, and the choice between them (subtone.stego.kernel.choose_kernel).

There is no GPU here: the simulator runs the kernels' Python source on the CPU, thread by
thread, so these tests check what the kernels compute (bit for bit the CPU kernel's answers)
but neither their compilation for a real GPU (NVVM) nor their speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from subtone.stego import triton_model
from subtone.stego.kernel import KernelChoice, choose_kernel, ready_kernel

from . import test_triton_model as t
from .cudasim_cases import SCENARIOS

ROOT = Path(__file__).resolve().parents[3]


def child_env(**extra: str) -> dict[str, str]:
    """This environment, for a child Python that imports this checkout (not the installed one)."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return os.environ | {"PYTHONPATH": path} | extra


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_cuda_kernel_answers_as_the_cpu_kernel_under_the_simulator(scenario: str) -> None:
    """In a child process: numba reads NUMBA_ENABLE_CUDASIM once, at its first import."""
    env = child_env(NUMBA_ENABLE_CUDASIM="1")
    command = [sys.executable, "-W", "error", "-m", "tests.subtone.stego.cudasim_cases", scenario]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-4000:]
    assert json.loads(result.stdout.splitlines()[-1]) == {"scenario": scenario, "ok": True}


def test_the_simulator_stays_in_its_child_process() -> None:
    from numba.core import config

    assert "NUMBA_ENABLE_CUDASIM" not in os.environ
    assert not config.ENABLE_CUDASIM


def test_the_cpu_path_never_loads_numba_cuda() -> None:
    """The CUDA module is imported only for a GPU: the CPU models and engine stay as small."""
    code = (
        "import sys\n"
        "from subtone.stego import kernel, triton_model\n"
        "kernel.warm_up()\n"
        "assert 'numba.cuda' not in sys.modules, 'numba.cuda loaded'\n"
    )
    env = child_env()
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def never() -> bool:
    raise AssertionError("a CPU instance must not ask for CUDA")


def test_a_gpu_instance_with_cuda_runs_the_cuda_kernel_on_its_gpu() -> None:
    choice = choose_kernel("GPU", "1", cuda_available=lambda: True)
    assert choice.gpu == 1 and not choice.fallback
    assert "CUDA kernel, on GPU 1" in choice.reason
    assert choose_kernel("GPU", None, cuda_available=lambda: True).gpu == 0


@pytest.mark.parametrize("kind", ["CPU", None, "MODEL"])
def test_any_other_instance_runs_the_cpu_kernel_without_looking_for_cuda(kind: str | None) -> None:
    choice = choose_kernel(kind, "0", cuda_available=never)
    assert choice.gpu is None and not choice.fallback
    assert "CPU kernel" in choice.reason


def test_a_gpu_instance_without_cuda_runs_the_cpu_kernel_and_says_why() -> None:
    choice = choose_kernel("GPU", "0", cuda_available=lambda: False)
    assert choice.gpu is None and choice.fallback
    assert "numba.cuda finds no usable GPU" in choice.reason


def test_a_cuda_kernel_that_cannot_start_gives_way_to_the_cpu_kernel() -> None:
    """No GPU here (and no machine has a millionth): the warm-up fails, the CPU kernel runs."""
    choice = ready_kernel(KernelChoice(10**6, "GPU 1000000"))
    assert choice.gpu is None and choice.fallback
    assert choice.reason.startswith("GPU 1000000, but it failed (")
    cpu = KernelChoice(None, "a KIND_CPU instance: the CPU kernel")
    assert ready_kernel(cpu) is cpu


def test_a_gpu_instance_that_falls_back_warns_once_and_serves(monkeypatch) -> None:
    warnings: list[str] = []
    logger = SimpleNamespace(log_info=lambda m: pytest.fail(m), log_warn=warnings.append)
    monkeypatch.setattr(t.pb, "Logger", logger)
    model = triton_model.model_class(t.pb, "extract")()  # type: ignore[arg-type]
    model.initialize(
        {
            "model_config": json.dumps(t.config("extract")),
            "model_instance_kind": "GPU",
            "model_instance_device_id": str(10**6),
        }
    )
    assert model.kernel.gpu is None and model.kernel.fallback
    assert len(warnings) == 1 and warnings[0].startswith("stego_extract: ")
    assert "the CPU kernel runs" in warnings[0]
    tasks = [t.task(1, 4096, 3)]
    (response,) = model.execute([t.request(tasks, embed=False)])
    assert response.error is None
