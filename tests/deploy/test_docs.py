"""The README's deployment sections: there, with commands that work on these files as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import K8S_DIR, ROOT, run, tool

README = ROOT / "README.md"
SECTIONS = ("Run on a workstation (compose)", "With a GPU", "On Kubernetes")
OVERLAY_HEREDOC = re.compile(
    r"cat > (my-overlay)/kustomization\.yaml <<EOF\n(.*?)\nEOF\n", re.DOTALL
)
REGISTRY = "registry.example.com/subtone"
TAG = "9.8.7"
IMAGES = ("api", "worker", "triton")
CREATED_BY_THE_COMMANDS = {"compose/.env"}
LAYOUT = ("`compose/`", "`packaging/`", "`docs/`")


def section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


@pytest.mark.parametrize("title", SECTIONS)
def test_the_readme_has_each_deployment_section_with_its_commands(title: str) -> None:
    body = section(title)
    commands = "\n".join(re.findall(r"```sh\n(.*?)```", body, re.DOTALL))
    assert any(c in commands for c in ("docker compose", "docker-compose", "kubectl")), title


def test_every_file_the_readme_names_for_deployment_exists() -> None:
    body = "".join(section(t) for t in SECTIONS)
    named = set(re.findall(r"(?<![\w./-])((?:compose|packaging|docs)/[\w./-]*\w)", body))
    named |= {"docker-compose.gpu.yml"}
    assert named
    missing = sorted(n for n in named - CREATED_BY_THE_COMMANDS if not (ROOT / n).exists())
    assert not missing


def test_the_layout_names_the_deployment_folders() -> None:
    layout = section("Layout")
    for folder in LAYOUT:
        assert f"| {folder}" in layout or f", {folder}" in layout, folder


def test_the_readmes_overlay_sets_the_images_with_kubectl_alone(tmp_path: Path) -> None:
    """The kustomization the README writes, as the shell would write it, read by kubectl."""
    body = section("On Kubernetes")
    assert "kustomize edit" not in body.replace("`kustomize edit set image`", "")
    (match,) = OVERLAY_HEREDOC.finditer(body)
    text = match[2].replace("$REGISTRY", REGISTRY).replace("$TAG", TAG)
    assert "$" not in text
    # The README runs it from the repository root: ../packaging is this checkout's.
    (tmp_path / "packaging").symlink_to(K8S_DIR.parent)
    overlay = tmp_path / match[1]
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(text + "\n")
    result = run([tool("kubectl"), "kustomize", str(overlay)])
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    images = {
        c["image"]
        for d in docs
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {f"{REGISTRY}/{name}:{TAG}" for name in IMAGES}
    assert {d["kind"] for d in docs} >= {"ScaledObject", "TriggerAuthentication"}
