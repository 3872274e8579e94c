"""One encode on the standalone stack, followed by its trace id through every process; and
every metric the dashboard and the alert rules use, in a live ``/metrics``."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import httpx
import pytest

from tests.deploy.test_observability import family, metric_names
from tests.e2e.test_cli import Cli, cover, ok
from tests.stack import Stack

pytestmark = pytest.mark.integration

TRACE = re.compile(r"trace id ([0-9a-f]{32})")
TYPE_LINE = re.compile(r"^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) ", re.MULTILINE)
SAMPLE_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", re.MULTILINE)
LOG_SCHEMA = {"time", "level", "process", "pid", "trace_id", "job_id", "tenant_id", "event"}


def _logs(stack: Stack) -> Path:
    return stack.settings.DATA_DIR / "standalone" / "logs"


def _json_lines(path: Path) -> list[dict[str, object]]:
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict):
            lines.append(line)
    return lines


def test_one_encode_has_one_trace_id_in_the_client_the_api_the_worker_triton_and_the_job(
    stack: Stack, tmp_path: Path
) -> None:
    cli = Cli(stack, tmp_path / "home")
    carrier = cover(tmp_path / "cover.wav", 3.0)
    secret = tmp_path / "note.txt"
    secret.write_bytes(os.urandom(2_000))
    out = tmp_path / "stego.wav"

    output = ok(cli("-v", "encode", carrier, secret, "-o", out, "--passphrase-file",
                    cli.passphrase_file))  # fmt: skip
    found = TRACE.search(output)
    assert found, output
    trace_id = found.group(1)

    # On the job, as the API reports it.
    jobs = httpx.get(f"{stack.url}/v1/jobs", headers={"Authorization": f"Bearer {stack.token}"})
    mine = [job for job in jobs.json()["jobs"] if job.get("trace_id") == trace_id]
    assert len(mine) == 1 and mine[0]["state"] == "succeeded", jobs.json()
    job_id = mine[0]["id"]

    # The API's and the worker's JSON lines, in one schema, with the job id on the worker's.
    logs = _logs(stack)
    api = [line for line in _json_lines(logs / "api.log") if line.get("trace_id") == trace_id]
    assert api and all(line.keys() >= LOG_SCHEMA for line in api)
    assert {line["process"] for line in api} == {"api"}
    assert any(line.get("job_id") == job_id for line in api)
    worker = [line for line in _json_lines(logs / "worker.log") if line["trace_id"] == trace_id]
    assert worker and {line["job_id"] for line in worker} == {job_id}
    assert any("succeeded" in str(line["event"]) for line in worker)

    # Every line our server processes wrote is a JSON object in the one schema (Triton and
    # supervisord are not ours: they keep their own formats).
    for process in ("api", "worker", "localstore"):
        raw = [r for r in (logs / f"{process}.log").read_text(errors="replace").splitlines() if r]
        parsed = _json_lines(logs / f"{process}.log")
        assert raw and len(parsed) == len(raw), (process, [r for r in raw if r[:1] != "{"][:3])
        assert all(line.keys() >= LOG_SCHEMA for line in parsed), process

    # Triton's log: the model notes the trace the first time it serves it.
    home = stack.settings.DATA_DIR / "standalone"
    triton = [p for p in home.rglob("*.log") if "triton" in p.name]
    assert any(f"trace_id={trace_id} job_id={job_id}" in p.read_text(errors="replace")
               for p in triton), [str(p) for p in triton]  # fmt: skip

    # An error answer carries the trace id the client sent (what the CLI prints).
    missing = httpx.get(
        f"{stack.url}/v1/jobs/job_0000000000nothere",
        headers={"Authorization": f"Bearer {stack.token}",
                 "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
    )  # fmt: skip
    assert missing.status_code == 404 and missing.headers["X-Request-Id"] == trace_id


def test_every_metric_of_the_dashboard_and_the_rules_is_exported(stack: Stack) -> None:
    ports = stack.supervisor.ports
    exported: set[str] = set()
    for url in (
        f"{stack.url}/metrics",
        f"http://127.0.0.1:{ports.worker_metrics}/metrics",
        f"http://127.0.0.1:{ports.triton_metrics}/metrics",
    ):
        response = httpx.get(url, timeout=10)
        assert response.status_code == 200, url
        exported |= set(TYPE_LINE.findall(response.text))
        exported |= set(SAMPLE_LINE.findall(response.text))
    # A sample name the stack exports, or a histogram's series (x_bucket of a family x).
    missing = {name for name in metric_names() if name not in exported
               and family(name) not in exported}  # fmt: skip
    assert missing == set(), sorted(exported)
