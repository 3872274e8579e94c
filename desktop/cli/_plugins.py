"""Command groups that other installed packages add to ``subtone`` through the
``subtone.cli`` entry-point group (the server's ``token`` and ``standalone``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

import typer

if TYPE_CHECKING:
    import importlib.metadata

__all__ = ["ENTRY_POINT_GROUP", "add_plugin_groups"]

ENTRY_POINT_GROUP: Final = "subtone.cli"
"""Entry points of this group name a :class:`typer.Typer` added as ``subtone NAME …``."""

log = logging.getLogger(__name__)


def add_plugin_groups(
    target: typer.Typer, entry_points: Iterable[importlib.metadata.EntryPoint] | None = None
) -> list[str]:
    """Add the command groups that installed packages declare under :data:`ENTRY_POINT_GROUP`
    (``entry_points``: those, else the installed ones) to ``target``; returns their names.

    A group whose module cannot be imported (its package's extras are missing) is left out
    with a debug log; a name already taken (a built-in command, or an earlier entry point)
    keeps its first owner.
    """
    if entry_points is None:
        import importlib.metadata  # only when asked: reading every package's metadata

        found: Iterable[importlib.metadata.EntryPoint] = importlib.metadata.entry_points(
            group=ENTRY_POINT_GROUP
        )
    else:
        found = entry_points
    taken = {c.name for c in target.registered_commands if c.name}
    taken |= {g.name for g in target.registered_groups if g.name}
    added: list[str] = []
    for entry in found:
        if entry.name in taken:
            continue
        try:
            group = entry.load()
        except Exception as e:
            log.debug("leaving out `subtone %s`: %s cannot be loaded: %s", entry.name, entry, e)
            continue
        if not isinstance(group, typer.Typer):
            log.debug("leaving out `subtone %s`: %s is not a typer.Typer", entry.name, entry.value)
            continue
        target.add_typer(group, name=entry.name)
        taken.add(entry.name)
        added.append(entry.name)
    return added
