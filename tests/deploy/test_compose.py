"""The compose stack: valid for docker-compose and the Compose Specification, wired as intended."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import (
    COMPOSE_DIR,
    COMPOSE_FILE,
    COMPOSE_SECRETS,
    GPU_FILE,
    compose_command,
    compose_config,
    compose_env,
    run,
    tool,
)

STACKS = {"cpu": (COMPOSE_FILE,), "cpu+gpu": (COMPOSE_FILE, GPU_FILE)}
ONE_SHOT = {"minio-init"}
OBSERVABILITY = {"prometheus", "grafana"}
"""The `observability` profile's services (packaging/observability/README.md)."""
OBSERVABILITY_DIR = COMPOSE_DIR.parent / "packaging" / "observability"
DATA_VOLUMES = {"rabbitmq": "/var/lib/rabbitmq", "redis": "/data", "minio": "/data"}
LOCALHOST = "127.0.0.1"


def services(*files: Path) -> dict[str, Any]:
    found = compose_config(*files)["services"]
    assert isinstance(found, dict)
    return found


@pytest.mark.parametrize("profile", [None, "observability"], ids=["default", "observability"])
@pytest.mark.parametrize("stack", STACKS)
def test_docker_compose_accepts_the_stack(stack: str, profile: str | None) -> None:
    command = [*compose_command(*STACKS[stack]), "config", "-q"]
    if profile:
        command[1:1] = ["--profile", profile]
    result = run(command, env=compose_env(**COMPOSE_SECRETS))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("secret", sorted(COMPOSE_SECRETS))
def test_compose_refuses_to_start_without_each_secret(secret: str) -> None:
    others = {k: v for k, v in COMPOSE_SECRETS.items() if k != secret}
    result = run([*compose_command(COMPOSE_FILE), "config", "-q"], env=compose_env(**others))
    assert result.returncode != 0
    assert f"set {secret} in compose/.env" in result.stderr


def test_compose_files_follow_the_compose_specification() -> None:
    command = [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec"]
    result = run([*command, str(COMPOSE_FILE), str(GPU_FILE)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("stack", STACKS)
def test_every_long_running_service_has_a_health_check(stack: str) -> None:
    for name, service in services(*STACKS[stack]).items():
        if name in ONE_SHOT:
            assert service["restart"] == "no"
            continue
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] == "CMD", f"{name} has no health check"


def test_services_start_only_once_what_they_need_is_healthy() -> None:
    found = services(COMPOSE_FILE)
    for name, service in found.items():
        for dependency, condition in service.get("depends_on", {}).items():
            wanted = (
                "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            )
            assert condition["condition"] == wanted, f"{name} -> {dependency}"
    assert set(found["worker"]["depends_on"]) == {"rabbitmq", "redis", "minio-init", "triton"}
    assert set(found["api"]["depends_on"]) == {"rabbitmq", "redis", "minio-init"}


def test_only_the_api_and_minio_leave_the_machine_and_by_default_on_localhost() -> None:
    published = {
        name: [_port(p) for p in service["ports"]]
        for name, service in services(COMPOSE_FILE).items()
        if "ports" in service
    }
    assert set(published) == {"api", "minio", "rabbitmq"} | OBSERVABILITY
    for name, ports in published.items():
        for host_ip, _, _ in ports:
            assert host_ip == LOCALHOST, f"{name} publishes a port beyond this machine"
    assert [target for _, _, target in published["api"]] == [8600]
    assert [target for _, _, target in published["minio"]] == [9000, 9001]
    assert [target for _, _, target in published["prometheus"]] == [9090]
    assert [target for _, _, target in published["grafana"]] == [3000]


def test_the_worker_serves_its_metrics_to_the_stacks_network_only() -> None:
    found = services(COMPOSE_FILE)
    worker = found["worker"]
    assert worker["environment"]["SUBTONE_WORKER_METRICS_HOST"] == "0.0.0.0"
    port = int(worker["environment"]["SUBTONE_WORKER_METRICS_PORT"])
    assert [int(p) for p in worker["expose"]] == [port] and "ports" not in worker
    # Everything else the API and the worker share is the same.
    api = found["api"]["environment"]
    shared = set(worker["environment"]) - {
        "SUBTONE_WORKER_METRICS_HOST",
        "SUBTONE_WORKER_METRICS_PORT",
    }
    assert shared and all(worker["environment"][k] == api[k] for k in shared)
    # Prometheus scrapes that port, the API's and Triton's (prometheus.yml).
    scrape = yaml.safe_load((OBSERVABILITY_DIR / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in scrape["scrape_configs"]}
    assert jobs["subtone-worker"]["dns_sd_configs"] == [
        {"names": ["worker"], "type": "A", "port": port}
    ]
    assert jobs["subtone-api"]["static_configs"][0]["targets"] == ["api:8600"]


def test_the_observability_profile_is_optional_unprivileged_and_mounts_the_package() -> None:
    found = services(COMPOSE_FILE)
    for name, service in found.items():
        assert (service.get("profiles") == ["observability"]) is (name in OBSERVABILITY), name
    for name in OBSERVABILITY:
        service = found[name]
        uid = service["user"].split(":")[0]
        assert uid.isdigit() and int(uid) != 0, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        for volume in service["volumes"]:
            target, source = _volume(volume)
            if source.startswith("/"):
                assert Path(source).is_relative_to(OBSERVABILITY_DIR), (name, source)
                assert Path(source).exists(), (name, source)
                assert (
                    volume.endswith(":ro") if isinstance(volume, str) else volume.get("read_only")
                ), (name, target)
    prometheus = found["prometheus"]
    mounts = dict(_volume(v) for v in prometheus["volumes"])
    assert mounts["/prometheus"] in compose_config(COMPOSE_FILE)["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    # Grafana: no anonymous access, and no start without an admin password (the default stack
    # does not need one: the variable is optional for compose itself).
    grafana = found["grafana"]
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == ""
    assert "GF_SECURITY_ADMIN_PASSWORD" in grafana["entrypoint"][-1]
    assert grafana["entrypoint"][-1].rstrip().endswith("exec /run.sh")


def test_grafana_refuses_to_start_without_an_admin_password() -> None:
    entrypoint = services(COMPOSE_FILE)["grafana"]["entrypoint"]
    script = entrypoint[-1].replace("$$", "$").replace("exec /run.sh", "exit 0")
    env = {"PATH": "/usr/bin:/bin"}
    refused = run(["/bin/sh", "-c", script], env=env)
    assert refused.returncode != 0
    assert "set GRAFANA_ADMIN_PASSWORD in compose/.env" in refused.stderr
    started = run(["/bin/sh", "-c", script], env={**env, "GF_SECURITY_ADMIN_PASSWORD": "x"})
    assert started.returncode == 0, started.stderr


def test_data_lives_in_named_volumes() -> None:
    config = compose_config(COMPOSE_FILE)
    for name, path in DATA_VOLUMES.items():
        mounts = dict(_volume(v) for v in config["services"][name]["volumes"])
        assert mounts.get(path) in config["volumes"], f"{name} keeps {path} in its container"


def test_redis_keeps_an_append_only_file() -> None:
    command = services(COMPOSE_FILE)["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"


def test_rabbitmq_keeps_its_node_name_and_has_the_management_plugin() -> None:
    rabbitmq = services(COMPOSE_FILE)["rabbitmq"]
    assert rabbitmq["hostname"] == "rabbitmq"
    assert rabbitmq["image"].endswith("-management")


def test_minio_keeps_incomplete_uploads_as_long_as_the_api_resumes_them() -> None:
    found = services(COMPOSE_FILE)
    ttl = found["api"]["environment"]["SUBTONE_UPLOAD_TTL_SECONDS"]
    assert found["minio"]["environment"]["MINIO_API_STALE_UPLOADS_EXPIRY"] == f"{ttl}s"
    init = found["minio-init"]
    assert init["entrypoint"] == ["/bin/sh", "/init/init.sh"]
    assert (COMPOSE_DIR / "minio" / "init.sh").is_file()


def test_the_gpu_override_gives_triton_a_gpu_and_the_gpu_model_repository() -> None:
    cpu = services(COMPOSE_FILE)["triton"]
    gpu = services(COMPOSE_FILE, GPU_FILE)["triton"]
    assert "deploy" not in cpu
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert device["capabilities"] == ["gpu"]
    assert gpu["command"] == ["--model-repository=/models-gpu"]
    assert _bytes(gpu["shm_size"]) > _bytes(cpu["shm_size"]) >= 256 * 2**20


def test_images_are_pinned() -> None:
    for name, service in services(COMPOSE_FILE, GPU_FILE).items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: {image}"
        assert re.search(r"\d", tag), f"{name}: {image} has no version"


def _bytes(size: str | int) -> int:
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"(\d+)([kmg]?)b?", size.lower())
    assert match, size
    return int(match[1]) * 1024 ** " kmg".index(match[2] or " ")


def _port(port: str | dict[str, Any]) -> tuple[str, int, int]:
    """(host address, published port, container port) of the short or the long syntax."""
    if isinstance(port, dict):
        return port["host_ip"], int(port["published"]), int(port["target"])
    host_ip, published, target = port.split("/")[0].rsplit(":", 2)
    return host_ip, int(published), int(target)


def _volume(volume: str | dict[str, Any]) -> tuple[str, str]:
    """(target, source) of the short or the long syntax."""
    if isinstance(volume, dict):
        return volume["target"], volume["source"]
    source, target, *_ = volume.split(":")
    return target, source
