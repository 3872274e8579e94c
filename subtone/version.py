"""The version of Subtone this code is (the client's and the server's alike).

A constant rather than package metadata: the desktop bundle carries no ``.dist-info``, and the
About box must still say which version it is. ``tests/subtone/test_version.py`` holds it equal
to ``pyproject.toml``'s.
"""

from __future__ import annotations

from typing import Final

__all__ = ["__version__"]

__version__: Final = "0.1.0"
