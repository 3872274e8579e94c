"""What the lifespan builds from settings: the store the backend names, the broker's URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from pydantic import SecretStr

from server.integrations.broker import build_broker
from server.integrations.factory import build_store
from server.integrations.localstore import LocalStore
from server.integrations.s3 import S3Store
from server.settings import Settings, StorageBackend

KEY = "t/tn_test/uploads/up_test/cover.wav"


def _parameters(broker: RabbitmqBroker) -> Any:
    """pika's connection parameters (one URL: one set)."""
    return broker.parameters


def test_the_local_backend_is_a_folder_store_signing_for_its_public_url(tmp_path: Path) -> None:
    settings = Settings(
        STORAGE_BACKEND=StorageBackend.LOCAL,
        DATA_DIR=tmp_path,
        LOCALSTORE_PUBLIC_URL="http://files.example:9100",
    )
    store = build_store(settings)
    assert isinstance(store, LocalStore)
    assert store.root == (tmp_path / "objects").resolve()
    assert store.presign_download(KEY, 60, None).startswith("http://files.example:9100/")


@pytest.mark.parametrize(
    ("public", "public_secure", "url_start"),
    [
        (None, None, "http://minio:9000/subtone/"),
        ("localhost:9000", None, "http://localhost:9000/subtone/"),
        ("files.example", True, "https://files.example/subtone/"),
        ("http://localhost:9000", True, "http://localhost:9000/subtone/"),
    ],
)
def test_the_s3_backend_signs_for_the_public_endpoint(
    public: str | None, public_secure: bool | None, url_start: str
) -> None:
    settings = Settings(
        STORAGE_BACKEND=StorageBackend.S3,
        S3_ENDPOINT="minio:9000",
        S3_PUBLIC_ENDPOINT=public,
        S3_PUBLIC_SECURE=public_secure,
        S3_ACCESS_KEY="subtone",
        S3_SECRET_KEY=SecretStr("secret"),
    )
    store = build_store(settings)
    assert isinstance(store, S3Store)
    assert store.presign_download(KEY, 60, None).startswith(url_start)


def test_the_broker_drops_a_blocked_connection_instead_of_waiting() -> None:
    broker = build_broker(Settings(BROKER_URL="amqp://u:p@rabbit:5672/%2F", QUEUE_NAME="q1"))
    assert _parameters(broker).blocked_connection_timeout == 20
    assert broker.confirm_delivery
    assert "q1" in broker.get_declared_queues()


def test_a_timeout_in_the_broker_url_is_kept() -> None:
    url = "amqp://u:p@rabbit:5672/%2F?blocked_connection_timeout=5&heartbeat=30"
    broker = build_broker(Settings(BROKER_URL=url))
    assert _parameters(broker).blocked_connection_timeout == 5
    assert _parameters(broker).heartbeat == 30
