"""``python -m desktop``: the desktop app."""

from desktop.app import main

raise SystemExit(main())
