"""scripts/compose-check.sh (run by CI as root, with Docker): what can be checked without it."""

from __future__ import annotations

import re

import yaml

from tests.deploy.conftest import COMPOSE_DIR, ROOT, run

SCRIPT = ROOT / "scripts" / "compose-check.sh"
CHECK_DIR = ROOT / "scripts" / "compose-check"
OVERRIDE = CHECK_DIR / "docker-compose.check.yml"
SWAPPED = {"rabbitmq", "redis", "minio", "minio-init"}
"""What no registry serves here; the project's own services are never overridden."""


def test_the_script_is_valid_bash() -> None:
    result = run(["bash", "-n", str(SCRIPT)])
    assert result.returncode == 0, result.stderr


def test_the_override_swaps_only_what_cannot_be_pulled() -> None:
    services = yaml.safe_load(OVERRIDE.read_text())["services"]
    assert set(services) <= SWAPPED
    base = yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())["services"]
    for name, service in services.items():
        assert name in base
        assert set(service) <= {"image", "entrypoint", "environment", "healthcheck"}, name


def test_the_project_dockerfiles_get_no_ca_certificates() -> None:
    """The machine's CAs reach only the check's own base image, never the users' Dockerfiles."""
    for dockerfile in (ROOT / "packaging" / "docker").glob("*.Dockerfile"):
        assert not re.search(r"ca-certificates|\bca/|--mount=type=secret", dockerfile.read_text())
    assert "ca/" in (CHECK_DIR / "python.Dockerfile").read_text()


def test_the_script_uses_debians_docker_and_its_own_daemon() -> None:
    text = SCRIPT.read_text()
    assert "DOCKER=/usr/bin/docker" in text
    assert "export DOCKER_HOST=unix://$WORK/docker.sock" in text
    assert 'kill "$DOCKERD_PID"' in text
    assert "pkill" not in text and "killall" not in text


def test_every_pip_install_of_the_stand_ins_is_pinned() -> None:
    lock = (CHECK_DIR / "localstack-requirements.txt").read_text().splitlines()
    pins = [line for line in lock if line and not line.startswith("#")]
    assert pins and all(re.fullmatch(r"[\w.-]+==[\w.+-]+", line) for line in pins)
    assert any(line.startswith("localstack-core==") for line in pins)
