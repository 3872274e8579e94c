"""The GPU model configurations are the CPU ones (the contract) but for their instance groups."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT

MODEL_REPOSITORY = ROOT / "model_repository"
GPU_CONFIGS = ROOT / "packaging" / "triton" / "gpu"
MODELS = sorted(p.parent.name for p in MODEL_REPOSITORY.glob("*/config.pbtxt"))
INSTANCE_GROUP = re.compile(r"instance_group\s*\[(.*?)\]", re.DOTALL)


def without_comments(text: str) -> str:
    lines = (line.split("#", 1)[0].rstrip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def test_every_model_has_a_gpu_variant_and_no_other() -> None:
    assert MODELS
    assert sorted(p.parent.name for p in GPU_CONFIGS.glob("*/config.pbtxt")) == MODELS


@pytest.mark.parametrize("model", MODELS)
def test_gpu_variant_differs_only_in_its_instance_groups(model: str) -> None:
    cpu = without_comments((MODEL_REPOSITORY / model / "config.pbtxt").read_text())
    gpu = without_comments((GPU_CONFIGS / model / "config.pbtxt").read_text())
    assert INSTANCE_GROUP.sub("", cpu) == INSTANCE_GROUP.sub("", gpu)
    (cpu_groups,) = INSTANCE_GROUP.findall(cpu)
    (gpu_groups,) = INSTANCE_GROUP.findall(gpu)
    assert "KIND_CPU" in cpu_groups and "KIND_GPU" not in cpu_groups
    assert "KIND_GPU" in gpu_groups and "KIND_CPU" not in gpu_groups


def test_gpu_configs_sit_where_the_triton_image_overlays_them() -> None:
    dockerfile = (ROOT / "packaging" / "docker" / "triton.Dockerfile").read_text()
    assert "COPY model_repository /models-gpu" in dockerfile
    assert f"COPY {Path(GPU_CONFIGS).relative_to(ROOT)} /models-gpu" in dockerfile
