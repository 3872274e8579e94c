"""packaging/observability: the Prometheus configuration and alert rules pass ``promtool``
(``check config``, ``check rules``, ``test rules``), the dashboard is valid JSON whose
queries name only metrics the stack exports (checked against a live ``/metrics`` in
``tests/e2e/test_observability.py``)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import ROOT

OBSERVABILITY = ROOT / "packaging" / "observability"
PROMETHEUS = OBSERVABILITY / "prometheus"
DASHBOARD = OBSERVABILITY / "grafana" / "dashboards" / "subtone.json"
RULES = PROMETHEUS / "alerts.yml"
METRIC = re.compile(r"\b((?:subtone|nv)_[a-z0-9_]+)\b")
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def _promtool(*args: str, cwd: Path = PROMETHEUS) -> str:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: scripts/setup.sh installs Debian's prometheus package"
    done = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def family(name: str) -> str:
    """A sample's metric family (``x_bucket``, ``x_total`` → ``x``)."""
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]


def rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def metric_names() -> set[str]:
    """Every metric (sample) name the dashboard and the rules use."""
    return {m for e in dashboard_exprs() + rule_exprs() for m in METRIC.findall(e)}


def metric_families() -> set[str]:
    """Every metric family the dashboard and the rules use."""
    return {family(m) for m in metric_names()}


def test_the_rules_pass_promtool_check_and_their_unit_tests() -> None:
    assert "SUCCESS" in _promtool("check", "rules", RULES.name)
    assert "SUCCESS" in _promtool("test", "rules", "alerts.test.yml")


@pytest.mark.parametrize("config", ["prometheus.yml"])
def test_the_compose_scrape_configuration_passes_promtool(config: str, tmp_path: Path) -> None:
    """(Debian's promtool is built without Kubernetes discovery: prometheus-k8s.yml is checked
    as YAML below.)"""
    text = (PROMETHEUS / config).read_text().replace("/etc/prometheus/alerts.yml", str(RULES))
    (tmp_path / config).write_text(text)
    assert "SUCCESS" in _promtool("check", "config", str(tmp_path / config), cwd=tmp_path)


def test_the_scrape_jobs_are_the_ones_the_rules_name() -> None:
    compose = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert {job["job_name"] for job in compose["scrape_configs"]} == {
        "subtone-api",
        "subtone-worker",
        "triton",
    }
    k8s = yaml.safe_load((PROMETHEUS / "prometheus-k8s.yml").read_text())
    replacements = {r.get("replacement") for r in k8s["scrape_configs"][0]["relabel_configs"]}
    assert {"subtone-$1", "triton"} <= replacements
    monitors = list(yaml.safe_load_all((OBSERVABILITY / "k8s" / "podmonitors.yaml").read_text()))
    jobs = {m["spec"]["podMetricsEndpoints"][0]["relabelings"][0]["replacement"] for m in monitors}
    assert jobs == {"subtone-api", "subtone-worker", "triton"}
    assert 'up{job="triton"}' in RULES.read_text()


def test_the_dashboard_is_valid_json_with_unique_panels_and_queries() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels) >= 10
    assert all(p["targets"] and all(t["expr"].strip() for t in p["targets"]) for p in panels)
    wanted = {"subtone_worker_jobs", "subtone_queue_depth", "subtone_worker_job_run_seconds",
              "subtone_http_request_duration_seconds", "subtone_triton_request_duration_seconds",
              "subtone_triton_batch_windows"}  # fmt: skip
    assert wanted <= metric_families()
