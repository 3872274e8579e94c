"""The images: hadolint, and the rules it cannot see (non-root, health checks, pins, layers)."""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from tests.deploy.conftest import DOCKER_DIR, DOCKERFILES, ROOT, run, tool

ROOT_USERS = {"root", "0", "0:0", "root:root"}
# The images' final stages and what each must run.
TARGETS = {
    ("server.Dockerfile", "api"): ["python", "-m", "server.api"],
    ("server.Dockerfile", "worker"): ["python", "-m", "server.worker"],
    ("triton.Dockerfile", None): ["--model-repository=/models"],
    ("triton-cpu.Dockerfile", None): ["--model-repository=/models"],
}
TRITON_DOCKERFILES = ("triton.Dockerfile", "triton-cpu.Dockerfile")
# The public images the Dockerfiles build on by default (build arguments: CI passes its own).
DEFAULT_BASES = {
    "PYTHON_IMAGE": "python:3.11.13-slim-bookworm",
    "TRITON_IMAGE": "nvcr.io/nvidia/tritonserver:24.12-py3",
}
REQUIREMENTS = DOCKER_DIR / "requirements.txt"
LEFT_OUT_OF_IMAGES = {"nvidia-pytriton"}
IGNORED_IN_CONTEXT = {".git", ".venv", "tests", "bench", "**/__pycache__"}


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def last(self, keyword: str) -> str | None:
        found = [arguments for k, arguments in self.instructions if k == keyword]
        return found[-1] if found else None


def global_args(dockerfile: Path) -> dict[str, str]:
    """The ``ARG NAME=default`` lines before the first FROM (what FROM may use)."""
    found = {}
    for line in dockerfile.read_text().splitlines():
        if line.upper().startswith("FROM "):
            break
        if line.upper().startswith("ARG "):
            name, _, default = line[4:].strip().partition("=")
            found[name] = default
    return found


def stages(dockerfile: Path) -> list[Stage]:
    """The stages of ``dockerfile``: FROM's image (build arguments at their defaults) and name,
    and the instructions under it."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    args = global_args(dockerfile)
    found: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            image, _, name = arguments.partition(" AS ")
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], image.strip())
            found.append(Stage(image, name.strip() or None))
        elif keyword == "ARG" and not found:
            continue
        else:
            found[-1].instructions.append((keyword, arguments.strip()))
    return found


def final_stage(dockerfile: Path, target: str | None) -> tuple[Stage, list[Stage]]:
    """The stage ``target`` (the last one if None) and the stages it is built on."""
    all_stages = stages(dockerfile)
    by_name = {s.name: s for s in all_stages if s.name}
    stage = by_name[target] if target else all_stages[-1]
    chain = [stage]
    while chain[-1].base in by_name:
        chain.append(by_name[chain[-1].base])
    return stage, chain


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(dockerfile: Path) -> None:
    result = run([tool("hadolint"), str(dockerfile)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_dockerfile_is_an_image_we_check() -> None:
    assert {p.name for p in DOCKERFILES} == {name for name, _ in TARGETS}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_base_images_are_build_arguments_defaulting_to_the_public_images(
    dockerfile: Path,
) -> None:
    """Every FROM of an outside image names a build argument (a mirror, CI's local images) whose
    default is the public image; no `# syntax=` line (it pulls the frontend from a registry)."""
    text = dockerfile.read_text()
    assert not text.startswith("# syntax="), dockerfile.name
    args = global_args(dockerfile)
    assert args and set(args) <= set(DEFAULT_BASES)
    for name, default in args.items():
        assert default == DEFAULT_BASES[name]
    names = set()
    for line in text.splitlines():
        if line.startswith("FROM "):
            image, _, name = line[5:].partition(" AS ")
            assert image.strip() in names or re.fullmatch(r"\$\{\w+\}", image.strip()), line
            names.add(name.strip())


@pytest.mark.parametrize(("name", "target"), TARGETS, ids=lambda v: str(v))
def test_images_run_as_an_unprivileged_user_with_a_health_check(
    name: str, target: str | None
) -> None:
    stage, chain = final_stage(DOCKER_DIR / name, target)
    users = [s.last("USER") for s in chain if s.last("USER")]
    assert users, f"{name}:{target} runs as root"
    assert users[0] not in ROOT_USERS
    health = next(s.last("HEALTHCHECK") for s in chain if s.last("HEALTHCHECK"))
    assert health and " CMD " in f" {health} "
    assert json.loads(stage.last("CMD") or "null") == TARGETS[name, target]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_builds_are_multi_stage_on_pinned_slim_bases(dockerfile: Path) -> None:
    all_stages = stages(dockerfile)
    names = {s.name for s in all_stages}
    external = [s.base for s in all_stages if s.base not in names]
    assert len(all_stages) >= 2
    for image in external:
        repository, _, tag = image.rpartition(":")
        assert repository and re.fullmatch(r"[\w.-]*\d[\w.-]*", tag), f"{image} is not pinned"
        assert "alpine" not in tag
        if repository == "python":
            assert re.fullmatch(r"3\.11\.\d+-slim-\w+", tag), f"{image}: not a pinned slim 3.11"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dependencies_are_installed_before_the_code_is_copied(dockerfile: Path) -> None:
    for stage in stages(dockerfile):
        steps = [f"{k} {a}" for k, a in stage.instructions]
        code = [i for i, s in enumerate(steps) if re.match(r"COPY (--\S+ )*server\b", s)]
        installs = [i for i, s in enumerate(steps) if "pip install" in s and "--no-deps" not in s]
        if code and installs:
            assert max(installs) < min(code), f"{dockerfile.name}: {stage.name}"


def test_the_health_check_is_executable_as_the_images_copy_it() -> None:
    assert os.access(DOCKER_DIR / "healthcheck.py", os.X_OK)


def test_the_build_context_leaves_out_what_images_never_copy() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert ignored >= IGNORED_IN_CONTEXT


def test_requirements_pin_every_runtime_dependency_of_the_server() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [
        Requirement(spec)
        for spec in [*project["dependencies"], *project["optional-dependencies"]["server"]]
    ]
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"{line} is not pinned"
            pins[canonicalize_name(name)] = version
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        if name in LEFT_OUT_OF_IMAGES:
            assert name not in pins
            continue
        assert name in pins, f"{name} is missing from {REQUIREMENTS.name}"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]}: {requirement}"


BUILD_REQUIREMENTS = DOCKER_DIR / "build-requirements.txt"
TRITON_PYTHON = "3.12"
"""The Python of the Triton base image (tritonserver 24.12, Ubuntu 24.04), which runs the models."""


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line} is not pinned"
            pins[canonicalize_name(name)] = version
    return pins


def test_the_images_build_the_project_with_pinned_build_requirements() -> None:
    """pyproject's [build-system] requires, pinned, and installed where the project is built."""
    wanted = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    pins = _pins(BUILD_REQUIREMENTS)
    for requirement in map(Requirement, wanted):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is missing from {BUILD_REQUIREMENTS.name}"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]}: {requirement}"
    for dockerfile in DOCKERFILES:
        for stage in stages(dockerfile):
            steps = [f"{k} {a}" for k, a in stage.instructions]
            builds = [
                i for i, s in enumerate(steps) if re.search(r"pip install .*/src|pip wheel", s)
            ]
            for i in builds:
                assert "--no-deps" in steps[i] and "--no-build-isolation" in steps[i], steps[i]
                before = " ".join(steps[:i])
                assert "-r /tmp/build-requirements.txt" in before, f"{dockerfile.name}: {steps[i]}"


def test_triton_gets_the_servers_numpy_as_a_wheel_for_its_python() -> None:
    text = re.sub(r"\\\n", " ", (DOCKER_DIR / "triton.Dockerfile").read_text())
    (install,) = re.findall(r"pip install [^&\n]*numpy[^&\n]*", text)
    assert "--only-binary=:all:" in install
    (spec,) = re.findall(r'"(numpy==[^"]+)"', install)
    pinned = Requirement(spec)
    assert str(pinned.specifier) == f"=={_pins(REQUIREMENTS)['numpy']}"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (numpy,) = [Requirement(r) for r in project["dependencies"] if r.startswith("numpy")]
    version = _pins(REQUIREMENTS)["numpy"]
    assert numpy.specifier.contains(version)
    # The version tested here (the venv's) says which Pythons it supports: Triton's among them.
    installed = metadata.distribution("numpy")
    assert installed.version == version
    assert SpecifierSet(installed.metadata["Requires-Python"]).contains(TRITON_PYTHON)


def test_triton_runs_with_the_model_control_the_standalone_stack_uses() -> None:
    """The worker reloads a model whose stub crashed: Triton must allow it, in the image as in
    standalone mode (where tritonserver.build_command starts it)."""
    from server.standalone import tritonserver

    entrypoints = {
        name: json.loads(final_stage(DOCKER_DIR / name, None)[0].last("ENTRYPOINT") or "[]")
        for name in TRITON_DOCKERFILES
    }
    standalone = tritonserver.build_command(
        tritonserver.TritonInstall(Path("bin"), Path("backend"), Path("stub"), Path("lib"), "3.11"),
        model_repository=Path("/models"),
        backend_directory=Path("/backends"),
        ports=tritonserver.TritonPorts(http=1, grpc=2, metrics=3),
        shm_prefix="x",
        load_models=tritonserver.ALL_MODELS,
    )
    for flag in ("--model-control-mode=explicit", "--load-model=*",
                 "--disable-auto-complete-config"):  # fmt: skip
        assert flag in standalone
        for name, entrypoint in entrypoints.items():
            assert flag in entrypoint, f"{name} does not pass {flag}"
