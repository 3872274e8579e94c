"""The Kubernetes manifests: each kustomization renders, validates strictly, is wired right."""

from __future__ import annotations

import copy
import ipaddress
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
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
    ROOT,
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
NAMESPACE = "subtone"
NAMESPACE_FILE = K8S_DIR / "namespace.yaml"
K8S_README = K8S_DIR / "README.md"
S3_KUSTOMIZATIONS = ("overlays/s3", "overlays/keda-s3")
S3_KEYS = ("SUBTONE_S3_ACCESS_KEY", "SUBTONE_S3_SECRET_KEY")
POD_IDENTITY_AGENT = "169.254.170.23"
"""EKS Pod Identity's agent, on every node: it serves the pods' role credentials on port 80."""
PLACEHOLDER_REGISTRY = "subtone.invalid"
REGISTRY = "registry.example.com/subtone"
MOST_WORK_LOST_SECONDS = 600
"""The most work (seconds of one job) a stopped worker may lose: packaging/k8s/README.md says so."""
MOST_IDLE_COOLDOWN_SECONDS = 15 * 60
PODMONITORS = ROOT / "packaging" / "observability" / "k8s" / "podmonitors.yaml"
RESTRICTED_VOLUMES = {"emptyDir", "configMap", "secret", "projected", "downwardAPI", "ephemeral"}


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
    # Longer than the longest job (a gap in KEDA's readings never stops one), yet minutes.
    assert int(config["SUBTONE_JOB_TIME_LIMIT_SECONDS"]) < scaled["cooldownPeriod"]
    assert scaled["cooldownPeriod"] <= MOST_IDLE_COOLDOWN_SECONDS
    # KEDA blind (the management API unreachable): hold some workers, never act on no reading.
    assert scaled["fallback"]["failureThreshold"] >= 1
    assert 1 <= scaled["fallback"]["replicas"] <= scaled["maxReplicaCount"]
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
    queue = config_map(docs)["SUBTONE_QUEUE_NAME"]
    queues = [t for t in scaled["triggers"] if t["type"] == "rabbitmq"]
    # The retry queue too: a job waiting out its back-off needs Triton when it runs again.
    assert sorted(t["metadata"]["queueName"] for t in queues) == [queue, f"{queue}.DQ"]
    for trigger in queues:
        assert trigger["metadata"]["protocol"] == "http"
        _authenticates_from_a_secret(docs, trigger)
    assert 1 <= scaled["fallback"]["replicas"] <= scaled["maxReplicaCount"]


@pytest.mark.parametrize("name", KEDA_KUSTOMIZATIONS)
def test_keda_counts_the_queues_config_env_names(name: str, tmp_path: Path) -> None:
    """No queue name is written twice: the triggers follow SUBTONE_QUEUE_NAME in config.env."""
    tree = tmp_path / "k8s"
    shutil.copytree(K8S_DIR, tree)
    config = tree / "base" / "config.env"
    text = config.read_text()
    assert "SUBTONE_QUEUE_NAME=subtone-jobs\n" in text
    config.write_text(text.replace("SUBTONE_QUEUE_NAME=subtone-jobs", "SUBTONE_QUEUE_NAME=team.b"))
    result = run([tool("kubectl"), "kustomize", str(tree / name)])
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    for scaled in of_kind(docs, "ScaledObject"):
        triggers = scaled["spec"]["triggers"]
        queues = sorted(t["metadata"]["queueName"] for t in triggers if t["type"] == "rabbitmq")
        assert queues == ["team.b", "team.b.DQ"], scaled["metadata"]["name"]


@pytest.mark.parametrize("name", KEDA_KUSTOMIZATIONS)
def test_keda_alone_sets_the_replicas_it_scales(name: str) -> None:
    docs = documents(name)
    for scaled in of_kind(docs, "ScaledObject"):
        target = find(docs, "Deployment", scaled["spec"]["scaleTargetRef"]["name"])
        assert "replicas" not in target["spec"]


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_a_stopped_worker_loses_at_most_the_stated_work(name: str) -> None:
    """Scale-down, rollout, drain: SIGTERM, then the job is handed back (or finished) well
    before Kubernetes' SIGKILL, and no job runs longer than the stated bound."""
    docs = documents(name)
    config = config_map(docs)
    fields = ("JOB_TIME_LIMIT_SECONDS", "CONSUMER_TIMEOUT_SECONDS", "TRITON_TIMEOUT_SECONDS")
    # Validated as the server does: the time limit below RabbitMQ's consumer timeout.
    settings = Settings.model_validate(
        {f: config[f"SUBTONE_{f}"] for f in fields if f"SUBTONE_{f}" in config}
    )
    limit = settings.JOB_TIME_LIMIT_SECONDS
    assert limit <= MOST_WORK_LOST_SECONDS
    spec = deployment(docs, "worker")["spec"]["template"]["spec"]
    grace = spec["terminationGracePeriodSeconds"]
    assert grace > limit
    assert grace > STOP_TIMEOUT_SECONDS
    # The window in flight when SIGTERM comes finishes (or times out) within the stop timeout.
    assert settings.TRITON_TIMEOUT_SECONDS < STOP_TIMEOUT_SECONDS
    readme = " ".join(K8S_README.read_text().split())
    assert f"at most {limit} s of work" in readme
    assert f"`terminationGracePeriodSeconds` ({grace} s)" in readme


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
    # Liveness: the worker's own heartbeat (its liveness file in /tmp, an emptyDir), not the
    # broker, which readiness asks.
    assert worker["livenessProbe"]["exec"]["command"] == ["subtone-healthcheck", "worker"]
    assert worker["readinessProbe"]["exec"]["command"] == ["subtone-healthcheck", "broker"]
    # Its /metrics: the port its settings name, on every interface of the pod.
    env = {e["name"]: e["value"] for e in worker["env"] if "value" in e}
    worker_settings = Settings.model_validate(
        {
            f: env.get(f"SUBTONE_{f}", config.get(f"SUBTONE_{f}"))
            for f in ("WORKER_METRICS_HOST", "WORKER_METRICS_PORT")
            if f"SUBTONE_{f}" in env.keys() | config.keys()
        }
    )
    assert worker_settings.WORKER_METRICS_HOST == "0.0.0.0"
    assert _port(worker, "metrics") == worker_settings.WORKER_METRICS_PORT
    # The liveness file is in TMPDIR, /tmp: a writable emptyDir under the read-only root.
    assert "TMPDIR" not in config and "TMPDIR" not in {e["name"] for e in worker["env"]}
    assert "/tmp" in {m["mountPath"] for m in worker["volumeMounts"]}


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_prometheus_finds_each_pods_metrics_port(name: str) -> None:
    """The prometheus.io/* annotations (prometheus-k8s.yml) and the PodMonitors' named ports
    (packaging/observability/k8s/podmonitors.yaml) name the port each container serves."""
    docs = documents(name)
    wanted = {"api": ("http", 8600), "worker": ("metrics", 8605), "triton": ("metrics", 8002)}
    monitors = {
        m["metadata"]["name"]: m["spec"] for m in yaml.safe_load_all(PODMONITORS.read_text()) if m
    }
    for component, (port_name, number) in wanted.items():
        template = deployment(docs, component)["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(number)
        assert annotations.get("prometheus.io/path", "/metrics") == "/metrics"
        assert _port(container(docs, component), port_name) == number
        monitor = monitors["triton" if component == "triton" else f"subtone-{component}"]
        assert _selects(monitor["selector"], template["metadata"]["labels"])
        assert monitor["podMetricsEndpoints"][0]["port"] == port_name


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_the_api_runs_one_process_per_cpu_of_its_limit(name: str) -> None:
    """uvicorn's default is the node's cores, each then throttled to a share of the limit."""
    docs = documents(name)
    config = config_map(docs)
    limit = container(docs, "api")["resources"]["limits"]["cpu"]
    cpus = int(limit[:-1]) / 1000 if str(limit).endswith("m") else float(limit)
    settings = Settings.model_validate(
        {f: config[f"SUBTONE_{f}"] for f in ("API_WORKERS", "METRICS_DIR")}
    )
    processes = settings.API_WORKERS
    assert processes == max(1, int(cpus))
    # Several processes keep their metrics there: the API's writable /tmp (an emptyDir).
    assert settings.METRICS_DIR is not None
    mounts = {m["mountPath"] for m in container(docs, "api")["volumeMounts"]}
    assert any(settings.METRICS_DIR.is_relative_to(m) for m in mounts)


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
        assert found["securityContext"]["readOnlyRootFilesystem"] is True
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


@dataclass(frozen=True)
class Endpoint:
    """One end of a connection: a pod (namespace, labels, named ports) or, with no namespace, an
    address outside the cluster (any address, or the one given)."""

    namespace: str | None
    labels: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    address: str | None = None


def _pod(docs: list[dict[str, Any]], component: str) -> Endpoint:
    template = deployment(docs, component)["spec"]["template"]
    ports = {p["name"]: p["containerPort"] for p in container(docs, component).get("ports", [])}
    return Endpoint(NAMESPACE, template["metadata"]["labels"], ports)


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert not selector.get("matchExpressions"), "the checker reads matchLabels only"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _peer(peer: dict[str, Any], other: Endpoint) -> bool:
    if "ipBlock" in peer:
        if other.namespace is not None:
            return False
        if other.address is None:
            return bool(peer["ipBlock"]["cidr"] == "0.0.0.0/0")
        block = peer["ipBlock"]
        address = ipaddress.ip_address(other.address)
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(cidr) for cidr in block.get("except", [])
        )
    if other.namespace is None:
        return False
    if "namespaceSelector" in peer:
        names = {"kubernetes.io/metadata.name": other.namespace}
        in_namespace = _selects(peer["namespaceSelector"], names)
    else:
        in_namespace = other.namespace == NAMESPACE
    return in_namespace and _selects(peer.get("podSelector", {}), other.labels)


def _rule_port(
    ports: list[dict[str, Any]] | None, number: int, protocol: str, to: Endpoint
) -> bool:
    if not ports:
        return True
    for port in ports:
        if port.get("protocol", "TCP") != protocol:
            continue
        value = port.get("port")
        if value is None or (to.ports.get(value) if isinstance(value, str) else value) == number:
            return True
    return False


def _side(
    policies: list[dict[str, Any]], pod: Endpoint, way: str, other: Endpoint, number: int,
    protocol: str, to: Endpoint,
) -> bool:  # fmt: skip
    """Whether the policies selecting ``pod`` let it ``way`` (Ingress/Egress) talk to ``other``."""
    if pod.namespace != NAMESPACE:
        return True  # not ours to police
    key, peers_key = ("ingress", "from") if way == "Ingress" else ("egress", "to")
    selecting = [
        p["spec"]
        for p in policies
        if way in p["spec"]["policyTypes"] and _selects(p["spec"]["podSelector"], pod.labels)
    ]
    if not selecting:
        return True
    return any(
        (not rule.get(peers_key) or any(_peer(peer, other) for peer in rule[peers_key]))
        and _rule_port(rule.get("ports"), number, protocol, to)
        for spec in selecting
        for rule in spec.get(key, [])
    )


def allowed(
    policies: list[dict[str, Any]], src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP"
) -> bool:
    """NetworkPolicy semantics: the source's egress and the destination's ingress both allow."""
    return _side(policies, src, "Egress", dst, port, protocol, dst) and _side(
        policies, dst, "Ingress", src, port, protocol, dst
    )


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_the_network_allows_the_designs_flows_and_nothing_else(name: str) -> None:
    docs = documents(name)
    policies = of_kind(docs, "NetworkPolicy")
    # Default-deny: a policy selecting every pod, both ways, allowing nothing.
    assert {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]} in [
        p["spec"] for p in policies
    ]
    api, worker, triton = (_pod(docs, c) for c in COMPONENTS)
    rabbitmq = Endpoint(NAMESPACE, {"app.kubernetes.io/name": "rabbitmq"})
    redis = Endpoint(NAMESPACE, {"app.kubernetes.io/name": "redis"})
    minio = Endpoint(NAMESPACE, {"app.kubernetes.io/name": "minio"})
    stranger = Endpoint(NAMESPACE, {"app.kubernetes.io/name": "something-else"})
    internet = Endpoint(None)  # a client, or S3
    ingress_controller = Endpoint("ingress-nginx", {"app": "ingress-nginx"})
    prometheus = Endpoint("monitoring", {"app.kubernetes.io/name": "prometheus"})
    keda = Endpoint("keda", {"app": "keda-operator"})
    other = Endpoint("elsewhere", {"app": "x"})
    dns = Endpoint("kube-system", {"k8s-app": "kube-dns"})
    api_port, grpc, metrics = api.ports["http"], triton.ports["grpc"], triton.ports["metrics"]
    worker_metrics = worker.ports["metrics"]
    flows = [
        (internet, api, api_port), (ingress_controller, api, api_port), (prometheus, api, api_port),
        (api, redis, 6379), (api, rabbitmq, 5672), (api, minio, 9000), (api, internet, 443),
        (worker, redis, 6379), (worker, rabbitmq, 5672), (worker, minio, 9000),
        (worker, internet, 443), (worker, triton, grpc), (prometheus, triton, metrics),
        (prometheus, worker, worker_metrics),
        (internet, minio, 9000), (rabbitmq, rabbitmq, 25672), (redis, redis, 6379),
    ]  # fmt: skip
    for src, dst, port in flows:
        assert allowed(policies, src, dst, port), (src, dst, port)
    for pod in (api, worker, triton, rabbitmq, redis, minio, stranger):
        assert allowed(policies, pod, dns, 53, "UDP") and allowed(policies, pod, dns, 53)
    denied = [
        (api, triton, grpc), (internet, triton, grpc), (other, triton, grpc),
        (worker, triton, triton.ports["http"]), (internet, triton, metrics),
        (triton, internet, 443), (triton, redis, 6379), (triton, rabbitmq, 5672),
        (internet, worker, 8080), (api, worker, 8080), (internet, redis, 6379),
        (internet, rabbitmq, 5672), (other, rabbitmq, 15672), (api, internet, 22),
        (api, dns, 80), (stranger, internet, 443), (internet, stranger, 80),
        (stranger, redis, 6379), (minio, internet, 443),
        (internet, worker, worker_metrics), (api, worker, worker_metrics),
        (other, worker, worker_metrics), (stranger, worker, worker_metrics),
        (ingress_controller, worker, worker_metrics), (prometheus, worker, api_port),
    ]  # fmt: skip
    for src, dst, port in denied:
        assert not allowed(policies, src, dst, port), (src, dst, port)
    # With S3, the API and the workers reach EKS Pod Identity's agent (a role's credentials).
    agent = Endpoint(None, address=POD_IDENTITY_AGENT)
    for pod in (api, worker):
        assert allowed(policies, pod, agent, 80) is (name in S3_KUSTOMIZATIONS)
        assert not allowed(policies, pod, Endpoint(None, address="169.254.169.254"), 80)
    assert not allowed(policies, triton, agent, 80)
    # KEDA reads RabbitMQ's management API where it is installed, and only there.
    assert allowed(policies, keda, rabbitmq, 15672) is (name in KEDA_KUSTOMIZATIONS)
    assert config_map(docs)["SUBTONE_TRITON_URL"] == f"subtone-triton:{grpc}"


def test_no_kustomization_owns_the_namespace() -> None:
    """`kubectl delete -k` must not delete the namespace (RabbitMQ, Redis, MinIO, Secrets)."""
    for name in KUSTOMIZATIONS:
        docs = documents(name)
        assert not of_kind(docs, "Namespace"), name
        assert {d["metadata"].get("namespace") for d in docs} == {NAMESPACE}, name
    result = run([tool("kubernetes-validate"), "--strict", "--quiet", str(NAMESPACE_FILE)])
    assert result.returncode == 0, result.stdout + result.stderr
    namespace = yaml.safe_load(NAMESPACE_FILE.read_text())
    assert namespace["metadata"]["name"] == NAMESPACE
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    readme = K8S_README.read_text()
    assert "kubectl apply -f packaging/k8s/namespace.yaml" in readme


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_pod_meets_the_restricted_pod_security_standard(name: str) -> None:
    for component in COMPONENTS:
        pod = deployment(documents(name), component)["spec"]["template"]["spec"]
        assert not {"hostNetwork", "hostPID", "hostIPC"} & pod.keys()
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for volume in pod.get("volumes", []):
            assert set(volume) - {"name"} <= RESTRICTED_VOLUMES, volume
        for found in pod["containers"] + pod.get("initContainers", []):
            context = found["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["readOnlyRootFilesystem"] is True
            assert context.get("runAsUser", NON_ROOT_UID) != 0
            assert all("hostPort" not in p for p in found.get("ports", []))
            assert found["resources"]["limits"]["memory"]


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_triton_stops_before_it_starts_again(name: str) -> None:
    """One GPU: a rolling update's second Triton would wait for it for ever."""
    assert deployment(documents(name), "triton")["spec"]["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_images_must_be_pointed_at_a_registry(name: str) -> None:
    """Never docker.io/subtone/* (anyone's): a name that cannot resolve until an overlay sets it,
    a version tag, and the pull policy that fits a tag or a digest."""
    for component in COMPONENTS:
        pod = deployment(documents(name), component)["spec"]["template"]["spec"]
        for found in pod["containers"] + pod.get("initContainers", []):
            image = found["image"]
            assert image.startswith(f"{PLACEHOLDER_REGISTRY}/"), image
            _, _, tag = image.partition(":")
            assert tag and tag != "latest", image
            assert found["imagePullPolicy"] == "IfNotPresent"


def test_an_overlay_pins_the_images_by_digest(tmp_path: Path) -> None:
    digest = "sha256:" + "ab" * 32
    (tmp_path / "packaging").symlink_to(K8S_DIR.parent)
    overlay = tmp_path / "mine"
    overlay.mkdir()
    images = [
        {"name": f"{PLACEHOLDER_REGISTRY}/{c}", "newName": f"{REGISTRY}/{c}", "digest": digest}
        for c in COMPONENTS
    ]
    kustomization = {"resources": ["../packaging/k8s/overlays/keda"], "images": images}
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    result = run([tool("kubectl"), "kustomize", str(overlay)])
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    for component in COMPONENTS:
        pod = deployment(docs, component)["spec"]["template"]["spec"]
        for found in pod["containers"] + pod.get("initContainers", []):
            assert found["image"] == f"{REGISTRY}/{component}@{digest}"
    assert PLACEHOLDER_REGISTRY not in result.stdout


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_the_api_scales_spreads_and_drains(name: str) -> None:
    docs = documents(name)
    spec = deployment(docs, "api")["spec"]
    assert "replicas" not in spec  # the HorizontalPodAutoscaler owns it
    hpa = find(docs, "HorizontalPodAutoscaler", "subtone-api")["spec"]
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "subtone-api"}
    assert hpa["scaleTargetRef"] == target
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
    assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    for constraint in pod["topologySpreadConstraints"]:
        assert _selects(constraint["labelSelector"], labels)
    sleep = container(docs, "api")["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep" and 0 < int(sleep[1]) < pod["terminationGracePeriodSeconds"]


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_the_api_does_not_start_with_the_example_storage_endpoint(name: str) -> None:
    """The init container's own check, run here with the rendered ConfigMap."""
    docs = documents(name)
    pod = deployment(docs, "api")["spec"]["template"]["spec"]
    (check,) = pod["initContainers"]
    assert check["command"][:2] == ["python", "-c"]
    config = config_map(docs)

    def start(endpoint: str) -> subprocess.CompletedProcess[str]:
        env = {**config, "SUBTONE_S3_PUBLIC_ENDPOINT": endpoint}
        return run([sys.executable, "-c", check["command"][2]], env=env)

    result = start(config["SUBTONE_S3_PUBLIC_ENDPOINT"])
    if name.endswith("s3"):  # the S3 component names the bucket's endpoint
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode == 1
        assert "SUBTONE_S3_PUBLIC_ENDPOINT" in result.stderr and "config.env" in result.stderr
    for bad in ("", "storage.example.com", "https://files.example.com:9000/"):
        assert start(bad).returncode == 1, bad
    for good in ("files.team.org", "files.team.org:9000", "https://s3.eu-west-1.amazonaws.com"):
        assert start(good).returncode == 0, good


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_each_pod_gets_only_the_secret_keys_it_uses(name: str) -> None:
    docs = documents(name)
    template = yaml.safe_load(SECRET_TEMPLATES[0].read_text())
    config_name = next(
        d["metadata"]["name"]
        for d in of_kind(docs, "ConfigMap")
        if d["metadata"]["name"].startswith("subtone-config")
    )
    for component in COMPONENTS:
        pod = deployment(docs, component)["spec"]["template"]["spec"]
        for found in pod["containers"] + pod.get("initContainers", []):
            assert all("secretRef" not in source for source in found.get("envFrom", []))
    for component in ("api", "worker"):
        found = container(docs, component)
        assert {"configMapRef": {"name": config_name}} in found["envFrom"]
        refs = {
            e["name"]: e["valueFrom"]["secretKeyRef"]
            for e in found["env"]
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        expected = {k: {"name": "subtone-secrets", "key": k} for k in template["stringData"]}
        if name in S3_KUSTOMIZATIONS:
            # Left out of the Secret, the server takes the pods' role (IRSA, Pod Identity).
            for key in S3_KEYS:
                expected[key]["optional"] = True
        assert refs == expected
    assert "env" not in container(docs, "triton")


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
