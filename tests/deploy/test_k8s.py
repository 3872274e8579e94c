"""The Kubernetes manifests: each kustomization renders, validates strictly, is wired right."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.settings import Settings
from server.worker import STOP_TIMEOUT_SECONDS
from tests.deploy.conftest import (
    K8S_DIR,
    KEDA_KUSTOMIZATIONS,
    KEDA_SCHEMAS,
    KUSTOMIZATIONS,
    SHARED_KEDA_SCHEMAS,
    VENDORED_KEDA_SCHEMAS,
    config_map,
    documents,
    find,
    kustomize,
    missing,
    of_kind,
    run,
    tool,
)

COMPONENTS = ("api", "worker", "triton")
KEDA_KINDS = {
    "ScaledObject": "scaledobject.json",
    "TriggerAuthentication": "triggerauthentication.json",
}
SECRET_TEMPLATES = (
    K8S_DIR / "base" / "secret.template.yaml",
    K8S_DIR / "components" / "keda" / "rabbitmq-secret.template.yaml",
)
KEDA_SECRET = yaml.safe_load(SECRET_TEMPLATES[1].read_text())
NON_ROOT_UID = 10001
GPU = "nvidia.com/gpu"


def deployment(docs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    return find(docs, "Deployment", f"subtone-{component}")


def container(docs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    (found,) = deployment(docs, component)["spec"]["template"]["spec"]["containers"]
    return found


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_kustomization_renders_valid_kubernetes(name: str) -> None:
    validate = [tool("kubernetes-validate"), "--strict", "--quiet", "--no-warn", "-"]
    result = run(validate, stdin=kustomize(name))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout + result.stderr


@pytest.mark.parametrize("template", SECRET_TEMPLATES, ids=lambda p: p.name)
def test_secret_templates_are_valid_secrets_with_no_secret_in_them(template: Path) -> None:
    result = run([tool("kubernetes-validate"), "--strict", "--quiet", str(template)])
    assert result.returncode == 0, result.stdout + result.stderr
    secret = yaml.safe_load(template.read_text())
    assert secret["kind"] == "Secret"
    for key, value in secret["stringData"].items():
        assert value == "" or value.startswith("http://"), f"{template.name}: {key} has a value"


@pytest.mark.parametrize("name", KEDA_KUSTOMIZATIONS)
@pytest.mark.parametrize("strict", [False, True], ids=["keda-schema", "no-unknown-fields"])
def test_keda_resources_match_keda_schemas(name: str, strict: bool, tmp_path: Path) -> None:
    """KEDA's CRD schemas (shared/schemas/keda); strictly, also no field KEDA would drop."""
    if not KEDA_SCHEMAS.is_dir():
        missing(f"KEDA's schemas are not in {KEDA_SCHEMAS}")
    checker = tool("check-jsonschema")
    resources = [d for d in documents(name) if d["kind"] in KEDA_KINDS]
    assert {d["kind"] for d in resources} == set(KEDA_KINDS)
    for index, resource in enumerate(resources):
        schema = KEDA_SCHEMAS / KEDA_KINDS[resource["kind"]]
        if strict:
            schema = _without_unknown_fields(schema, tmp_path)
        document = tmp_path / f"{index}-{resource['kind']}.yaml"
        document.write_text(yaml.safe_dump(resource))
        result = run([checker, "--schemafile", str(schema), str(document)])
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", KEDA_KUSTOMIZATIONS)
def test_keda_scales_workers_from_zero_on_the_job_and_retry_queues(name: str) -> None:
    docs = documents(name)
    config = config_map(docs)
    queue = config["SUBTONE_QUEUE_NAME"]
    scaled = find(docs, "ScaledObject", "subtone-worker")["spec"]
    assert scaled["scaleTargetRef"]["name"] == "subtone-worker"
    assert scaled["minReplicaCount"] == 0
    assert scaled["cooldownPeriod"] > int(config["SUBTONE_JOB_TIME_LIMIT_SECONDS"])
    triggers = scaled["triggers"]
    assert {t["metadata"]["queueName"] for t in triggers} == {queue, f"{queue}.DQ"}
    for trigger in triggers:
        assert trigger["type"] == "rabbitmq"
        assert trigger["metadata"]["protocol"] == "http"  # unacknowledged messages count
        assert trigger["metadata"]["mode"] == "QueueLength"
        _authenticates_from_a_secret(docs, trigger)


@pytest.mark.parametrize("name", KEDA_KUSTOMIZATIONS)
def test_keda_scales_triton_from_zero_with_the_workers(name: str) -> None:
    docs = documents(name)
    scaled = find(docs, "ScaledObject", "subtone-triton")["spec"]
    assert scaled["scaleTargetRef"]["name"] == "subtone-triton"
    assert scaled["minReplicaCount"] == 0
    by_type = {t["type"]: t for t in scaled["triggers"]}
    worker_labels = deployment(docs, "worker")["spec"]["selector"]["matchLabels"]
    selector = by_type["kubernetes-workload"]["metadata"]["podSelector"]
    assert dict(pair.split("=") for pair in selector.split(",")) == worker_labels
    jobs = by_type["rabbitmq"]
    assert jobs["metadata"]["queueName"] == config_map(docs)["SUBTONE_QUEUE_NAME"]
    _authenticates_from_a_secret(docs, jobs)


@pytest.mark.parametrize("name", KEDA_KUSTOMIZATIONS)
def test_keda_alone_sets_the_replicas_it_scales(name: str) -> None:
    docs = documents(name)
    for scaled in of_kind(docs, "ScaledObject"):
        target = find(docs, "Deployment", scaled["spec"]["scaleTargetRef"]["name"])
        assert "replicas" not in target["spec"]


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_workers_hand_back_their_job_within_the_grace_period(name: str) -> None:
    """Kubernetes waits longer than a stopping worker does before it gives up on its job."""
    docs = documents(name)
    spec = deployment(docs, "worker")["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] > STOP_TIMEOUT_SECONDS
    # The window in flight when SIGTERM comes finishes (or times out) within the stop timeout.
    timeout = config_map(docs).get("SUBTONE_TRITON_TIMEOUT_SECONDS")
    given = {"TRITON_TIMEOUT_SECONDS": timeout} if timeout else {}
    assert Settings.model_validate(given).TRITON_TIMEOUT_SECONDS < STOP_TIMEOUT_SECONDS


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_the_api_is_ready_while_triton_sleeps(name: str) -> None:
    """/readyz leaves Triton out: KEDA scales it to zero and the NetworkPolicy keeps the API
    away from it, so asking it would take every API pod out of its Service."""
    docs = documents(name)
    value = config_map(docs)["SUBTONE_READYZ_CHECKS_TRITON"]
    settings = Settings.model_validate({"READYZ_CHECKS_TRITON": value})
    assert settings.READYZ_CHECKS_TRITON is False
    api = deployment(docs, "api")["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert not any(e["name"] == "SUBTONE_READYZ_CHECKS_TRITON" for e in api.get("env", []))


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_probes_ask_the_real_health_endpoints(name: str) -> None:
    docs = documents(name)
    api = container(docs, "api")
    assert _http_probe(api, "livenessProbe") == ("/healthz", "http")
    assert _http_probe(api, "readinessProbe") == ("/readyz", "http")
    # The port the API listens on (its settings, from the ConfigMap) is the one probed and
    # served, on every interface of the pod (not the default 127.0.0.1 the kubelet can't reach).
    config = config_map(docs)
    settings = Settings.model_validate(
        {f: config[f"SUBTONE_{f}"] for f in ("API_HOST", "API_PORT") if f"SUBTONE_{f}" in config}
    )
    assert _port(api, "http") == settings.API_PORT
    assert settings.API_HOST == "0.0.0.0"
    assert _http_probe(api, "startupProbe") == ("/healthz", "http")
    (service_port,) = find(docs, "Service", "subtone-api")["spec"]["ports"]
    assert service_port["targetPort"] == "http"
    triton = container(docs, "triton")
    assert _http_probe(triton, "livenessProbe") == ("/v2/health/live", "http")
    assert _http_probe(triton, "readinessProbe") == ("/v2/health/ready", "http")
    assert _port(triton, "http") == 8000
    assert _port(triton, "grpc") == 8001
    # The workers' SUBTONE_TRITON_URL names the Service's gRPC port.
    host, _, port = config["SUBTONE_TRITON_URL"].partition(":")
    ports = {p["name"]: p for p in find(docs, "Service", host)["spec"]["ports"]}
    assert ports["grpc"]["port"] == int(port) and ports["grpc"]["targetPort"] == "grpc"
    worker = container(docs, "worker")
    for probe in ("livenessProbe", "readinessProbe"):
        assert worker[probe]["exec"]["command"] == ["subtone-healthcheck", "worker"]


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_containers_run_unprivileged_with_resources_and_triton_gets_a_gpu(name: str) -> None:
    docs = documents(name)
    for component in COMPONENTS:
        pod = deployment(docs, component)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == NON_ROOT_UID
        assert pod["automountServiceAccountToken"] is False
        found = container(docs, component)
        assert found["securityContext"]["allowPrivilegeEscalation"] is False
        assert found["resources"]["requests"] and found["resources"]["limits"]["memory"]
    triton = container(docs, "triton")
    assert triton["resources"]["limits"][GPU] == 1
    assert triton["args"] == ["--model-repository=/models-gpu"]
    (shm,) = [m for m in triton["volumeMounts"] if m["mountPath"] == "/dev/shm"]
    pod = deployment(docs, "triton")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == shm["name"]]
    assert volume["emptyDir"]["medium"] == "Memory"


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_each_component_has_a_disruption_budget_matching_its_pods(name: str) -> None:
    docs = documents(name)
    for component in COMPONENTS:
        budget = find(docs, "PodDisruptionBudget", f"subtone-{component}")
        labels = deployment(docs, component)["spec"]["template"]["metadata"]["labels"]
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_only_the_workers_reach_triton(name: str) -> None:
    docs = documents(name)
    (policy,) = of_kind(docs, "NetworkPolicy")
    triton = deployment(docs, "triton")["spec"]["template"]["metadata"]["labels"]
    worker = deployment(docs, "worker")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"] == triton
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    (peer,) = rule["from"]
    assert peer == {"podSelector": {"matchLabels": worker}}
    assert [p["port"] for p in rule["ports"]] == ["grpc"]
    assert config_map(docs)["SUBTONE_TRITON_URL"] == "subtone-triton:8001"


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_the_api_and_workers_read_the_config_map_and_the_secret(name: str) -> None:
    docs = documents(name)
    config_name = next(
        d["metadata"]["name"]
        for d in of_kind(docs, "ConfigMap")
        if d["metadata"]["name"].startswith("subtone-config")
    )
    for component in ("api", "worker"):
        sources = container(docs, component)["envFrom"]
        assert {"configMapRef": {"name": config_name}} in sources
        assert {"secretRef": {"name": "subtone-secrets"}} in sources


def test_the_s3_overlay_changes_only_storage_settings() -> None:
    base = config_map(documents("base"))
    s3 = config_map(documents("overlays/s3"))
    changed = {k for k in base.keys() | s3.keys() if base.get(k) != s3.get(k)}
    assert changed and all(k.startswith("SUBTONE_S3_") for k in changed)
    assert s3["SUBTONE_S3_ENDPOINT"].endswith(".amazonaws.com")
    assert s3["SUBTONE_S3_SECURE"] == s3["SUBTONE_S3_PUBLIC_SECURE"] == "true"
    base_docs = {(d["kind"], d["metadata"]["name"]) for d in documents("base")}
    s3_docs = {(d["kind"], d["metadata"]["name"]) for d in documents("overlays/s3")}
    assert {k for k in base_docs ^ s3_docs if k[0] != "ConfigMap"} == set()


def _http_probe(found: dict[str, Any], probe: str) -> tuple[str, str]:
    get = found[probe]["httpGet"]
    return get["path"], get["port"]


def _port(found: dict[str, Any], name: str) -> int:
    (port,) = [p["containerPort"] for p in found["ports"] if p["name"] == name]
    return int(port)


def _authenticates_from_a_secret(docs: list[dict[str, Any]], trigger: dict[str, Any]) -> None:
    """Credentials come from a Secret, in the one parameter all KEDA 2.x releases take: `host`
    (a URL with the user and password in it). `username`/`password` need KEDA 2.16+."""
    auth = find(docs, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    refs = auth["spec"]["secretTargetRef"]
    assert [ref["parameter"] for ref in refs] == ["host"]
    assert {ref["name"] for ref in refs} == {KEDA_SECRET["metadata"]["name"]}
    assert {ref["key"] for ref in refs} <= set(KEDA_SECRET["stringData"])
    assert not {"host", "username", "password"} & set(trigger["metadata"])
    assert trigger["metadata"]["vhostName"] == "/"


def _without_unknown_fields(schema: Path, tmp_path: Path) -> Path:
    """A copy of ``schema`` that refuses fields it does not name (what the API server prunes)."""
    strict = copy.deepcopy(json.loads(schema.read_text()))
    _close(strict)
    path = tmp_path / f"strict-{schema.name}"
    path.write_text(json.dumps(strict))
    return path


def _close(node: Any) -> None:
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close(value)
    elif isinstance(node, list):
        for value in node:
            _close(value)


def test_the_vendored_keda_schemas_match_the_shared_ones() -> None:
    if not SHARED_KEDA_SCHEMAS.is_dir():
        pytest.skip("no ../shared beside this checkout: the vendored copies are used")
    for vendored in sorted(VENDORED_KEDA_SCHEMAS.glob("*.json")):
        assert vendored.read_bytes() == (SHARED_KEDA_SCHEMAS / vendored.name).read_bytes()
