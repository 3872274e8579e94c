"""``subtone token …`` and ``subtone standalone …``: commands for whoever runs the stack.

They drive the server's own code (Redis, the standalone supervisor), so they live here and
reach the ``subtone`` command through the ``subtone.cli`` entry-point group (see
``pyproject.toml``): the client CLI finds them when the server is installed, and never
imports them.
"""

from __future__ import annotations

__all__: list[str] = []
