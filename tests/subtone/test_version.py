"""The version the code reports is the one the package is built with."""

import tomllib
from pathlib import Path

from subtone.version import __version__

ROOT = Path(__file__).resolve().parents[2]


def test_the_version_is_pyprojects():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert __version__ == project["version"]
