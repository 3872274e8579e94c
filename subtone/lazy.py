"""A package whose names load on first use (:pep:`562`), so that importing it for one cheap
name does not import every heavy module behind the others."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str, homes: Mapping[str, str]) -> Callable[[str], object]:
    """The module ``__getattr__`` of ``package``: a name in ``homes`` is imported from the
    module it maps to the first time it is asked for, then kept on the package."""

    def __getattr__(name: str) -> object:  # noqa: N807 - the module hook's name
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
