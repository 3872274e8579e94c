"""The API on real Redis and the real local store process, as the API tests build it."""

from tests.server.api.conftest import (  # noqa: F401 - fixtures, registered by import
    api,
    make_api,
    prefix,
    redis_client,
    store_process,
)
