"""The standalone object store's own HTTP process: serves the local store's signed URLs.

Run it with ``python -m server.localstore --root DIR --port P --secret-env NAME``.
"""

from server.localstore.app import create_app

__all__ = ["create_app"]
