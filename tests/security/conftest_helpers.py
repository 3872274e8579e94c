"""Every operation of the API, read from its OpenAPI (a new endpoint joins every test)."""

from __future__ import annotations

from server.app import create_app
from server.settings import Settings

METHODS = ("get", "put", "post", "delete", "patch")


def openapi() -> dict:
    return create_app(Settings()).openapi()


def operations(prefix: str = "") -> list[tuple[str, str]]:
    spec = openapi()
    return [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        if path.startswith(prefix)
        for method in item
        if method in METHODS
    ]
