"""Every SUBTONE_* variable a deployment file names is a setting the server reads, and back."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import SecretStr

from desktop.core.config import ENV_CONFIG, ENV_TOKEN, ENV_URL
from server.settings import Settings
from tests.deploy.conftest import (
    COMPOSE_DIR,
    COMPOSE_FILE,
    DOCKERFILES,
    ENV_EXAMPLE,
    GPU_FILE,
    K8S_DIR,
    KUSTOMIZATIONS,
    OPTIONAL_TOOLS_ENV,
    ROOT,
    config_map,
    documents,
    kustomize,
)
from tests.deploy.test_desktop_bundle import SMOKE_ENV

PREFIX = "SUBTONE_"
NAME = re.compile(r"\bSUBTONE_[A-Z0-9_]+\b")
# `${SUBTONE_X:-default}` in a compose file.
COMPOSE_DEFAULT = re.compile(r"\$\{(SUBTONE_[A-Z0-9_]+):-([^}]*)\}")
ENV_LINE = re.compile(r"^#? ?(SUBTONE_[A-Z0-9_]+)=", re.MULTILINE)
CONSUMER_TIMEOUT = re.compile(r"^consumer_timeout\s*=\s*(\d+)\s*$", re.MULTILINE)
FIELDS = {PREFIX + name for name in Settings.model_fields}
# What the API and the workers cannot start without in production, wherever they run.
PRODUCTION = {
    "SUBTONE_ENV",
    "SUBTONE_BROKER_URL",
    "SUBTONE_REDIS_URL",
    "SUBTONE_TRITON_URL",
    "SUBTONE_STORAGE_BACKEND",
    "SUBTONE_S3_ENDPOINT",
    "SUBTONE_S3_ACCESS_KEY",
    "SUBTONE_S3_SECRET_KEY",
    "SUBTONE_SIGNING_SECRET",
}
DOCS = (ROOT / "README.md", ROOT / "docs" / "deploy.md", K8S_DIR / "README.md")
COMPOSE_CHECK_ENV = "SUBTONE_KILL_COVER_MB"
"""scripts/compose-check.sh's own knob (the killed-worker jobs' cover size)."""
CLIENT = {ENV_URL, ENV_TOKEN, ENV_CONFIG, SMOKE_ENV, OPTIONAL_TOOLS_ENV, COMPOSE_CHECK_ENV}
"""The desktop app's, the CLI's and the checks' own variables, which the docs may name too."""


def deployment_files() -> list[Path]:
    files = [COMPOSE_FILE, GPU_FILE, ENV_EXAMPLE, *DOCKERFILES]
    files += [p for p in COMPOSE_DIR.rglob("*") if p.is_file()]
    files += [p for p in K8S_DIR.rglob("*") if p.is_file()]
    files += [p for p in DOCS if p.exists()]
    return sorted(set(files))


def test_every_name_in_a_deployment_file_is_a_setting() -> None:
    unknown = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in deployment_files()
        for name in NAME.findall(path.read_text())
        if name not in (FIELDS | CLIENT if path in DOCS else FIELDS)
    }
    assert not unknown


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_variable_a_rendered_manifest_sets_is_a_setting(name: str) -> None:
    assert set(NAME.findall(kustomize(name))) <= FIELDS
    for doc in documents(name):
        if doc["kind"] == "Deployment":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                assert {e["name"] for e in container.get("env", [])} <= FIELDS


def test_the_env_example_lists_every_setting() -> None:
    listed = ENV_LINE.findall(ENV_EXAMPLE.read_text())
    assert len(listed) == len(set(listed)), "a setting is listed twice"
    assert set(listed) == FIELDS


def test_compose_defaults_are_the_settings_defaults() -> None:
    """A `${SUBTONE_X:-value}` in compose is the server's own default, not a second one."""
    defaults = Settings.model_construct()
    for path in (COMPOSE_FILE, GPU_FILE):
        for name, value in COMPOSE_DEFAULT.findall(path.read_text()):
            field = name.removeprefix(PREFIX)
            if field == "ENV" or field.startswith("S3_"):
                continue  # production, and the stack's own MinIO: compose's choices
            parsed = Settings.model_validate({field: value})
            assert getattr(parsed, field) == getattr(defaults, field), f"{path.name}: {name}"


def test_compose_gives_the_api_and_the_workers_what_production_needs() -> None:
    text = COMPOSE_FILE.read_text()
    anchor = text.split("x-subtone-env:", 1)[1].split("\nservices:", 1)[0]
    assert set(re.findall(r"^  (SUBTONE_[A-Z0-9_]+):", anchor, re.MULTILINE)) >= PRODUCTION


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_kubernetes_gives_the_api_and_the_workers_what_production_needs(name: str) -> None:
    secret = (K8S_DIR / "base" / "secret.template.yaml").read_text()
    provided = set(config_map(documents(name))) | set(NAME.findall(secret))
    assert provided >= PRODUCTION
    assert not set(config_map(documents(name))) & _secret_settings(), "a secret in a ConfigMap"


def test_the_consumer_timeout_is_one_value_everywhere_and_outlasts_a_job() -> None:
    conf = (COMPOSE_DIR / "rabbitmq" / "20-subtone.conf").read_text()
    (milliseconds,) = CONSUMER_TIMEOUT.findall(conf)
    compose = re.search(r'SUBTONE_CONSUMER_TIMEOUT_SECONDS: "(\d+)"', COMPOSE_FILE.read_text())
    assert compose
    k8s = config_map(documents("base"))
    assert (
        int(milliseconds)
        == 1000 * int(compose[1])
        == 1000 * int(k8s["SUBTONE_CONSUMER_TIMEOUT_SECONDS"])
    )
    assert int(k8s["SUBTONE_CONSUMER_TIMEOUT_SECONDS"]) > int(k8s["SUBTONE_JOB_TIME_LIMIT_SECONDS"])
    assert int(compose[1]) == Settings().CONSUMER_TIMEOUT_SECONDS


def _secret_settings() -> set[str]:
    return {
        PREFIX + name
        for name, field in Settings.model_fields.items()
        if field.annotation is SecretStr
    } | {"SUBTONE_BROKER_URL", "SUBTONE_REDIS_URL", "SUBTONE_S3_ACCESS_KEY"}


def test_a_job_record_never_outlives_its_result() -> None:
    """Issue 12.7: job records were kept 30 days, their result objects 7."""
    defaults = Settings()
    assert defaults.JOB_TTL_SECONDS == defaults.UPLOAD_TTL_SECONDS
    with pytest.raises(ValueError, match="JOB_TTL_SECONDS"):
        Settings(JOB_TTL_SECONDS=defaults.UPLOAD_TTL_SECONDS + 1)
