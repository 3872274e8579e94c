"""docs/deploy.md's operator's checklist: there, and saying what the manifests do."""

from __future__ import annotations

from tests.deploy.conftest import K8S_DIR, ROOT, config_map, documents, find

DEPLOY_DOC = ROOT / "docs" / "deploy.md"


def checklist() -> str:
    text = DEPLOY_DOC.read_text()
    start = text.index("\n## Operator's checklist (Kubernetes)\n")
    return " ".join(text[start : text.index("\n## ", start + 1)].split())


def test_the_checklist_covers_a_first_install_and_an_upgrade() -> None:
    body = checklist()
    assert "### First install" in body and "### Upgrade" in body
    assert "kubectl apply -f packaging/k8s/namespace.yaml" in body
    assert (K8S_DIR / "namespace.yaml").is_file()
    for image in ("api", "worker", "triton"):
        assert f"`subtone.invalid/{image}`" in body
    assert "`SUBTONE_S3_PUBLIC_ENDPOINT`" in body


def test_the_checklist_states_the_job_time_limit_and_grace_period_the_manifests_have() -> None:
    body = checklist()
    docs = documents("base")
    limit = int(config_map(docs)["SUBTONE_JOB_TIME_LIMIT_SECONDS"])
    worker = find(docs, "Deployment", "subtone-worker")["spec"]["template"]["spec"]
    assert f"`SUBTONE_JOB_TIME_LIMIT_SECONDS` is {limit} s" in body
    assert f"The job time limit is now {limit} s" in body
    assert f"`terminationGracePeriodSeconds` ({worker['terminationGracePeriodSeconds']} s)" in body
