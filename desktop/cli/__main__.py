"""``python -m desktop.cli``: the same as the ``subtone`` console script."""

from desktop.cli import main

__all__: list[str] = []

main()
