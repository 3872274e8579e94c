"""``python -m server.api``: serve the API with uvicorn on ``SUBTONE_API_HOST:SUBTONE_API_PORT``.

``API_WORKERS`` processes (default: the machine's cores) share the port; with more than one,
prometheus-client's multiprocess mode keeps ``/metrics`` whole: its folder
(``METRICS_DIR``) is emptied here, before the processes start, and named to them in
``PROMETHEUS_MULTIPROC_DIR``. Every process logs JSON lines (:mod:`server.kit.logs`); uvicorn's
own access log is off, the API's (with the trace id, without query strings) replaces it.
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

import uvicorn

from server.kit.logs import configure_logging
from server.settings import MULTIPROC_ENV, Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["app_from_environment", "main"]

PROCESS = "api"
APP_FACTORY = "server.api:app_from_environment"
"""What each API process imports and calls (by name: the processes are spawned)."""


def app_from_environment() -> FastAPI:
    """The app on the settings of the environment (what each API process runs)."""
    from server.app import create_app  # here: the supervising process never loads the app

    settings = Settings()
    configure_logging(PROCESS, settings.LOG_LEVEL)
    return create_app(settings)


def main() -> None:
    settings = Settings()
    configure_logging(PROCESS, settings.LOG_LEVEL)
    workers = settings.API_WORKERS
    if workers > 1:
        folder = settings.metrics_dir
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        os.environ[MULTIPROC_ENV] = str(folder)
    else:
        os.environ.pop(MULTIPROC_ENV, None)
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=settings.API_HOST,
        port=settings.API_PORT,
        workers=workers,
        log_level=settings.LOG_LEVEL.lower(),
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
