"""Real servers for the integration tests: a moto S3 server, the local store process, and
tritonserver (see the Triton section at the end).

Each starts on a port the OS picks (port 0, found through its log or port file; tritonserver
gets ports the OS just handed out) and is stopped by the fixture that started it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from server.integrations.localstore import LocalStore
from server.integrations.s3 import S3Store
from server.integrations.triton import TritonEngine
from server.standalone.tritonserver import MODEL_REPOSITORY, TritonProcess
from tests.servers import answers, moto_server, stop, wait_for

REPO = Path(__file__).resolve().parents[3]
SECRET_ENV = "SUBTONE_TEST_LOCALSTORE_SECRET"
LOCAL_MAX_PART_BYTES = 6 * 1024 * 1024
SMALL_MAX_PART_BYTES = 64 * 1024

T = TypeVar("T")


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        yield url


@pytest.fixture
def s3_store(moto_url: str) -> S3Store:
    """A store on a fresh bucket; the public endpoint is the same server under another name."""
    public = moto_url.replace("127.0.0.1", "localhost")
    store = S3Store(
        moto_url, "testing", "testing", f"b-{uuid.uuid4().hex[:12]}", public_endpoint=public
    )
    store.ensure_bucket()
    return store


@dataclass(frozen=True)
class LocalStoreProcess:
    url: str
    root: Path
    secret: str
    max_part_bytes: int

    def store(self, **kwargs: object) -> LocalStore:
        return LocalStore(self.root, self.secret, public_url=self.url, **kwargs)  # type: ignore[arg-type]


def _start_local_store(folder: Path, max_part_bytes: int) -> Iterator[LocalStoreProcess]:
    root, port_file, log = folder / "root", folder / "port", folder / "localstore.log"
    secret = secrets.token_hex(32)
    env = os.environ | {SECRET_ENV: secret}
    command = [
        sys.executable, "-m", "server.localstore", "--root", str(root), "--port", "0",
        "--port-file", str(port_file), "--secret-env", SECRET_ENV,
        "--max-part-bytes", str(max_part_bytes),
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        port = wait_for(
            lambda: port_file.exists() and port_file.read_text(), process, log, "local store"
        )
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers(f"{url}/healthz"), process, log, "local store")
        yield LocalStoreProcess(url, root, secret, max_part_bytes)
    finally:
        stop(process)


@pytest.fixture(scope="module")
def local_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStoreProcess]:
    yield from _start_local_store(tmp_path_factory.mktemp("localstore"), LOCAL_MAX_PART_BYTES)


@pytest.fixture(scope="module")
def small_local_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStoreProcess]:
    yield from _start_local_store(tmp_path_factory.mktemp("localstore-small"), SMALL_MAX_PART_BYTES)


@pytest.fixture
def local_store(tmp_path: Path) -> LocalStore:
    """A local store used directly on a folder (no process)."""
    return LocalStore(tmp_path / "store", "s" * 32, public_url="http://127.0.0.1:1")


# --- Triton: a real tritonserver (from the nvidia-pytriton wheel) serving model_repository ----

TRITON_TIMEOUT_SECONDS = 60.0
BATCH_OF = 4
"""Requests the batching server's stego_embed waits for before it executes (see below)."""
BATCH_WAIT_MICROSECONDS = 30_000_000
REAL_QUEUE_DELAY = "max_queue_delay_microseconds: 2000"


@pytest.fixture(scope="session")
def triton_server() -> Iterator[TritonProcess]:
    """tritonserver with the project's model_repository, exactly as committed."""
    with TritonProcess(MODEL_REPOSITORY) as server:
        yield server


@pytest.fixture
def triton_engine(triton_server: TritonProcess) -> Iterator[TritonEngine]:
    engine = TritonEngine(triton_server.grpc_url, timeout_seconds=TRITON_TIMEOUT_SECONDS)
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture(scope="module")
def triton_batching_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonProcess]:
    """tritonserver with only stego_embed loaded, its batcher set to wait for BATCH_OF requests.

    The model and its inputs are the committed ones; only the dynamic batcher differs
    (``preferred_batch_size: [BATCH_OF]`` and a long queue delay), so that BATCH_OF
    concurrent requests are executed together every time, not by luck of timing.
    stego_extract stays unloaded (explicit model control): the "model not loaded" case.
    """
    repository = tmp_path_factory.mktemp("triton-batching") / "model_repository"
    shutil.copytree(MODEL_REPOSITORY, repository, ignore=shutil.ignore_patterns("__pycache__"))
    config = repository / "stego_embed" / "config.pbtxt"
    text = config.read_text()
    assert REAL_QUEUE_DELAY in text
    config.write_text(
        text.replace(
            REAL_QUEUE_DELAY,
            f"max_queue_delay_microseconds: {BATCH_WAIT_MICROSECONDS}\n"
            f"  preferred_batch_size: [ {BATCH_OF} ]",
        )
    )
    with TritonProcess(repository, load_models=["stego_embed"]) as server:
        yield server
