"""Shared helpers of the deployment checks: where things are, and the real tools that check them.

Every check runs the tool a developer would run by hand (docker-compose, kubectl, hadolint,
kubernetes-validate, check-jsonschema, desktop-file-validate, pyinstaller). ``scripts/setup.sh``
installs them all, so a missing tool (or KEDA's schemas missing from ``../shared``) fails the
test that needs it: CI never passes by skipping. Only ``SUBTONE_DEPLOY_TOOLS_OPTIONAL=1`` (a
developer without them, by choice) turns those failures into skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
GPU_FILE = ROOT / "docker-compose.gpu.yml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
DOCKER_DIR = ROOT / "packaging" / "docker"
DOCKERFILES = sorted(DOCKER_DIR.glob("*.Dockerfile"))
K8S_DIR = ROOT / "packaging" / "k8s"
KUSTOMIZATIONS = ("base", "overlays/keda", "overlays/s3", "overlays/keda-s3")
KEDA_KUSTOMIZATIONS = ("overlays/keda", "overlays/keda-s3")
SHARED_KEDA_SCHEMAS = ROOT.parent / "shared" / "schemas" / "keda"
VENDORED_KEDA_SCHEMAS = Path(__file__).with_name("keda_schemas")
KEDA_SCHEMAS = SHARED_KEDA_SCHEMAS if SHARED_KEDA_SCHEMAS.is_dir() else VENDORED_KEDA_SCHEMAS
"""KEDA's CRD schemas: ``../shared`` beside the repository, else the copies in the tests."""

# What compose/.env must fill in: compose refuses to start without them.
COMPOSE_SECRETS = {
    "RABBITMQ_DEFAULT_PASS": "rabbit-test-password",
    "MINIO_ROOT_PASSWORD": "minio-test-password",
    "SUBTONE_S3_SECRET_KEY": "s3-test-secret",
    "SUBTONE_SIGNING_SECRET": "signing-test-secret",
}
# Variables compose reads from the environment (or .env); dropped from the tests' environment so
# that the machine's own never leak into a check.
COMPOSE_VARIABLE_PREFIXES = ("SUBTONE_", "RABBITMQ_", "MINIO_", "COMPOSE_")
COMPOSE_VARIABLES = ("BIND_ADDRESS", "API_PUBLISHED_PORT", "GRAFANA_ADMIN_PASSWORD")


OPTIONAL_TOOLS_ENV = "SUBTONE_DEPLOY_TOOLS_OPTIONAL"


def missing(what: str) -> NoReturn:
    """Fail (or, with SUBTONE_DEPLOY_TOOLS_OPTIONAL=1, skip) because ``what`` is not here."""
    if os.environ.get(OPTIONAL_TOOLS_ENV) == "1":
        pytest.skip(what)
    pytest.fail(f"{what}; set {OPTIONAL_TOOLS_ENV}=1 to skip the checks that need it")


def tool(name: str) -> str:
    """The path of ``name``: the virtual environment's first, then ``PATH``'s."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        missing(f"{name} is not installed (scripts/setup.sh installs it)")
    return found


def run(
    command: Sequence[str],
    *,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(env) if env is not None else None,
        timeout=120,
        check=False,
    )


def compose_env(**extra: str) -> dict[str, str]:
    """The environment for docker-compose: the machine's, less every variable compose reads."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(COMPOSE_VARIABLE_PREFIXES) and k not in COMPOSE_VARIABLES
    }
    env.update(extra)
    return env


def compose_command(*files: Path) -> list[str]:
    command = [tool("docker-compose"), "--env-file", str(ENV_EXAMPLE)]
    for file in files:
        command += ["-f", str(file)]
    return command


@cache
def compose_config(*files: Path) -> dict[str, Any]:
    """The resolved compose model of ``files`` with .env.example and test secrets."""
    result = run([*compose_command(*files), "config"], env=compose_env(**COMPOSE_SECRETS))
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert isinstance(config, dict)
    return config


@cache
def kustomize(name: str) -> str:
    """``kubectl kustomize`` of one kustomization under packaging/k8s, as YAML text."""
    result = run([tool("kubectl"), "kustomize", str(K8S_DIR / name)])
    assert result.returncode == 0, result.stderr
    return result.stdout


def documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(kustomize(name)) if d]


def find(docs: Sequence[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind} {name}")


def of_kind(docs: Sequence[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def config_map(docs: Sequence[dict[str, Any]]) -> dict[str, str]:
    """The data of the (hash-suffixed) ConfigMap subtone-config."""
    (found,) = [
        d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].startswith("subtone-config")
    ]
    data = found["data"]
    assert isinstance(data, dict)
    return data
