"""One TLS context for every HTTP client of the process.

Each ``httpx.Client`` made without one loads the CA bundle again (about 20 ms); the client
core makes three (the API's, storage downloads', the part uploads'), so a short ``subtone``
run spent more time loading certificates than its job took to be created.
"""

from __future__ import annotations

import functools
import ssl

import httpx

__all__ = ["tls_context"]


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's own default context (certifi's bundle, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``),
    made once."""
    return httpx.create_ssl_context()
