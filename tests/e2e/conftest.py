"""The whole stack as real processes: API, local store, worker, Triton, on the machine's
RabbitMQ (a vhost of our own) and Redis (a key prefix of our own), started by the standalone
supervisor exactly as ``subtone standalone up`` starts it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from server.integrations.s3 import S3Store
from server.settings import StorageBackend
from tests import stack as stack_helpers
from tests.servers import moto_server
from tests.stack import Stack, running_stack


@pytest.fixture(scope="session")
def rabbit_vhost() -> Iterator[str]:
    """A RabbitMQ vhost of our own on the machine's broker, deleted afterwards."""
    with stack_helpers.rabbit_vhost() as url:
        yield url


def _start(tmp: Path, broker_url: str, **overrides: object) -> Iterator[Stack]:
    with running_stack(tmp, broker_url, **overrides) as stack:
        yield stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, rabbit_vhost: str) -> Iterator[Stack]:
    """The standalone stack with the local folder store."""
    yield from _start(tmp_path_factory.mktemp("stack"), rabbit_vhost)


@pytest.fixture(scope="session")
def s3_stack(tmp_path_factory: pytest.TempPathFactory, rabbit_vhost: str) -> Iterator[Stack]:
    """The same stack on S3: a moto S3 server process instead of the local store."""
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        s3 = {
            "STORAGE_BACKEND": StorageBackend.S3,
            "S3_ENDPOINT": url,
            "S3_ACCESS_KEY": "testing",
            "S3_SECRET_KEY": SecretStr("testing"),
            "S3_BUCKET": f"subtone-{uuid.uuid4().hex[:10]}",
        }
        S3Store(url, "testing", "testing", str(s3["S3_BUCKET"])).ensure_bucket()
        yield from _start(tmp_path_factory.mktemp("s3-stack"), rabbit_vhost, **s3)


@pytest.fixture(params=["local", "s3"])
def any_stack(request: pytest.FixtureRequest) -> Stack:
    """Each storage backend's stack in turn."""
    name = "stack" if request.param == "local" else "s3_stack"
    found: Stack = request.getfixturevalue(name)
    return found


# The desktop app's window (tests/e2e/app_driver.py drives it) ------------------------------


@pytest.fixture
def dialogs():
    """File dialogs that answer from a script (:class:`ScriptedDialogs`)."""
    from tests.desktop.app_support import ScriptedDialogs

    return ScriptedDialogs()


@pytest.fixture
def open_window(qtbot, dialogs):
    """Opens a MainWindow on a context; every window opened is shut down after the test."""
    from desktop.app.main_window import MainWindow
    from desktop.app.state import ConnectionStatus

    windows: list[MainWindow] = []

    def open_(ctx, *, wait_for_server: bool = True) -> MainWindow:
        window = MainWindow(ctx, dialogs=dialogs)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        if wait_for_server:
            qtbot.waitUntil(
                lambda: window.connection.status is not ConnectionStatus.UNKNOWN, timeout=30_000
            )
        return window

    yield open_
    for window in windows:
        window.shutdown()
        window.close()
