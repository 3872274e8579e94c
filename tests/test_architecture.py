"""Where code may reach (docs/architecture.md). ``lint-imports`` holds the packages
(``pyproject.toml``); model_repository/ is not a package, so its rule is checked here."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODELS = sorted((ROOT / "model_repository").glob("*/1/model.py"))
ALLOWED = {"subtone", "numpy", "numba", "triton_python_backend_utils"}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_there_are_models_to_check() -> None:
    assert {p.parts[-3] for p in MODELS} >= {"stego_embed", "stego_extract"}


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.parts[-3])
def test_a_model_imports_only_the_shared_package_numpy_and_triton(model: Path) -> None:
    outside = imported_roots(model) - ALLOWED - set(sys.stdlib_module_names)
    assert outside == set(), f"{model.relative_to(ROOT)} imports {sorted(outside)}"


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "model.py"
    bad.write_text("import json\nfrom server.settings import Settings\nimport desktop.core\n")
    assert imported_roots(bad) - ALLOWED - set(sys.stdlib_module_names) == {"server", "desktop"}


def test_the_shared_package_imports_without_the_server_or_gui_stacks() -> None:
    """``subtone`` imports in a fresh interpreter that cannot find FastAPI, Dramatiq, Redis,
    minio, tritonclient or Qt."""
    import subprocess

    blocked = ["fastapi", "dramatiq", "redis", "minio", "tritonclient", "PySide6", "httpx"]
    code = (
        "import sys, importlib.abc\n"
        f"class Block(importlib.abc.MetaPathFinder):\n"
        f"    def find_spec(self, name, path, target=None):\n"
        f"        if name.split('.')[0] in {blocked!r}: raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import subtone.protocol, subtone.errors, subtone.files, subtone.clientconfig\n"
        "import subtone.stego.codec, subtone.stego.plane, subtone.stego.patch\n"
        "import subtone.stego.triton_model\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
