"""``python -m server.api``: serve the API with uvicorn on ``SUBTONE_API_HOST:SUBTONE_API_PORT``."""

from __future__ import annotations

import logging

import uvicorn

from server.app import create_app
from server.settings import Settings

__all__ = ["main"]

QUIET_LOGGERS = ("pika",)
"""Libraries that log every connection step at INFO."""


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.LOG_LEVEL.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    uvicorn.run(
        create_app(settings),
        host=settings.API_HOST,
        port=settings.API_PORT,
        log_level=settings.LOG_LEVEL.lower(),
    )


if __name__ == "__main__":
    main()
