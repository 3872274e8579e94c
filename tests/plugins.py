"""The ``subtone.cli`` entry points pyproject.toml declares, for tests that run from a checkout
whose installed metadata may predate them (``pip install -e .`` refreshes it)."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GROUP = "subtone.cli"


def declared() -> list[importlib.metadata.EntryPoint]:
    """The group's entry points as pyproject.toml declares them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [
        importlib.metadata.EntryPoint(name, value, GROUP)
        for name, value in project["entry-points"][GROUP].items()
    ]


def metadata_dir(where: Path) -> Path:
    """A folder holding a distribution's metadata that declares them: put it on
    ``PYTHONPATH`` and ``importlib.metadata`` finds them as if installed."""
    info = where / "subtone_cli_entry_points-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: subtone-cli-entry-points\nVersion: 0\n"
    )
    lines = [f"[{GROUP}]", *(f"{e.name} = {e.value}" for e in declared())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return where
