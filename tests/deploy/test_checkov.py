"""checkov over what `kubectl apply` would get: the four kustomizations, rendered, and the
namespace. Every finding is fixed or suppressed in the manifest itself (a
``checkov.io/skipN: CHECK=reason`` annotation), with its reason.

checkov pins ``boto3`` and ``packaging<24``, which the project's own dependencies outgrow, so
``scripts/setup.sh`` gives it a virtual environment of its own, ``.venv/checkov``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.deploy.conftest import K8S_DIR, KUSTOMIZATIONS, ROOT, kustomize, missing, run

CHECKOV_ENV = "SUBTONE_CHECKOV"
"""A checkov executable to use instead of ``.venv/checkov/bin/checkov``."""
CHECKOV_VENV = ROOT / ".venv" / "checkov" / "bin" / "checkov"
MIN_REASON_CHARS = 20
RESOURCES_PER_SET = 15
"""Fewer resources than this in one rendered set: checkov did not read it."""


def checkov() -> str:
    path = Path(os.environ.get(CHECKOV_ENV) or CHECKOV_VENV)
    if not path.exists():
        missing(f"checkov is not installed at {path} (scripts/setup.sh installs it)")
    return str(path)


def scan(folder: Path) -> dict[str, Any]:
    options = ["--framework", "kubernetes", "--output", "json", "--skip-download"]
    result = run(
        [checkov(), "--directory", str(folder), *options],
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "0"},
    )
    assert result.stdout, result.stderr
    report = json.loads(result.stdout)
    assert isinstance(report, dict), "checkov found nothing to check"
    return report


def test_checkov_finds_nothing_unexplained_in_the_rendered_manifests(tmp_path: Path) -> None:
    files = {name: tmp_path / (name.replace("/", "-") + ".yaml") for name in KUSTOMIZATIONS}
    for name, file in files.items():
        file.write_text(kustomize(name))
    (tmp_path / "namespace.yaml").write_text((K8S_DIR / "namespace.yaml").read_text())

    report = scan(tmp_path)

    assert report["check_type"] == "kubernetes"
    summary = report["summary"]
    assert summary["parsing_errors"] == 0, report["results"]["parsing_errors"]
    failed = [
        f"{f['check_id']} {f['check_name']}: {f['resource']} ({f['file_path']})"
        for f in report["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
    # Each set was read, not silently skipped (checkov has no check of a Namespace).
    checked = {c["file_path"].lstrip("/") for c in report["results"]["passed_checks"]}
    assert checked == {f.name for f in files.values()}
    assert summary["resource_count"] >= RESOURCES_PER_SET * len(files)
    # Every suppression says why.
    for skipped in report["results"]["skipped_checks"]:
        reason = skipped["check_result"].get("suppress_comment") or ""
        assert len(reason) >= MIN_REASON_CHARS, (skipped["check_id"], skipped["resource"])
