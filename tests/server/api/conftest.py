"""The API on real Redis (a key prefix of its own) and the local store (a folder, served by its
own process for the pre-signed URLs), with a fake queue that records what it was sent and a
fake Triton probe. Every process started here is stopped here; every key made is deleted."""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis
import uvicorn
from fastapi import FastAPI
from redis.asyncio import Redis as AsyncRedis

from server.app import create_app
from server.auth.service import TokenService
from server.deps import Dependencies
from server.integrations.broker import QueueUnavailable
from server.integrations.localstore import LocalStore
from server.integrations.storage import MiB, ObjectStore
from server.integrations.triton import TritonUnavailable
from server.jobs.heartbeat import WorkerHeartbeats
from server.jobs.repository import JobRepository
from server.settings import Settings
from server.uploads.repository import UploadRepository
from subtone.protocol import ObjectRef
from tests.servers import answers, stop, wait_for

REPO = Path(__file__).resolve().parents[3]
REDIS_URL = "redis://127.0.0.1:6379/0"
SECRET_ENV = "SUBTONE_TEST_API_LOCALSTORE_SECRET"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
POLL_SECONDS = 0.05
PART_SIZE = 5 * MiB
K_POS = "ab" * 32
SHA = "0" * 64


# --- fakes ---------------------------------------------------------------------------------


@dataclass
class FakeQueue:
    """The queue as the API uses it (the publisher and the probe): records job ids; ``down``
    makes every call fail."""

    sent: list[str] = field(default_factory=list)
    traces: list[str | None] = field(default_factory=list)
    down: bool = False

    async def enqueue(self, job_id: str, *, trace_id: str | None = None) -> None:
        if self.down:
            raise QueueUnavailable("the fake queue is down")
        self.sent.append(job_id)
        self.traces.append(trace_id)

    def ping(self) -> None:
        if self.down:
            raise QueueUnavailable("the fake queue is down")

    def queue_depth(self) -> int:
        self.ping()
        return len(self.sent)


@dataclass
class FakeTriton:
    down: bool = False

    def ready(self) -> None:
        if self.down:
            raise TritonUnavailable("the fake Triton is down")


# --- the local store process ---------------------------------------------------------------


@dataclass(frozen=True)
class StoreProcess:
    url: str
    root: Path
    secret: str

    def store(self) -> LocalStore:
        return LocalStore(self.root, self.secret, public_url=self.url)


@pytest.fixture(scope="session")
def store_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreProcess]:
    folder = tmp_path_factory.mktemp("api-localstore")
    root, port_file, log = folder / "root", folder / "port", folder / "localstore.log"
    secret = secrets.token_hex(32)
    command = [
        sys.executable, "-m", "server.localstore", "--root", str(root), "--port", "0",
        "--port-file", str(port_file), "--secret-env", SECRET_ENV,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=REPO, env=os.environ | {SECRET_ENV: secret}, stdout=out, stderr=out
        )
    try:
        wait_for(port_file.exists, process, log, "the local store")
        url = f"http://127.0.0.1:{port_file.read_text().strip()}"
        wait_for(lambda: answers(f"{url}/healthz"), process, log, "the local store")
        yield StoreProcess(url, root, secret)
    finally:
        stop(process)


# --- the API -------------------------------------------------------------------------------


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A Redis key prefix of this test's own, emptied afterwards."""
    name = f"subtone-test-{uuid.uuid4().hex[:12]}"
    yield name
    for key in redis_client.scan_iter(match=f"{name}:*", count=1000):
        redis_client.delete(key)


class ServerThread:
    """The app served by uvicorn on a free port, in a thread of this process."""

    def __init__(self, app: FastAPI) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, timeout_graceful_shutdown=5
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(POLL_SECONDS)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(STOP_TIMEOUT_SECONDS)
        self._socket.close()


@dataclass
class Api:
    """A running app and what a test needs around it."""

    client: httpx.Client
    app: FastAPI
    settings: Settings
    deps: Dependencies
    queue: FakeQueue
    triton: FakeTriton
    tokens: TokenService
    alice: str
    bob: str

    @property
    def jobs(self) -> JobRepository:
        return JobRepository(self.deps.redis, prefix=self.settings.REDIS_PREFIX, ttl_seconds=3600)

    @property
    def uploads(self) -> UploadRepository:
        return UploadRepository(
            self.deps.redis, prefix=self.settings.REDIS_PREFIX, ttl_seconds=3600
        )


ApiFactory = Callable[..., Api]


@pytest.fixture
def make_api(
    prefix: str, redis_client: redis.Redis, store_process: StoreProcess, tmp_path: Path
) -> Iterator[ApiFactory]:
    """Start an app with these settings overrides (each started app is stopped afterwards)."""
    running: list[tuple[ServerThread, httpx.Client]] = []

    def make(
        *,
        store: ObjectStore | None = None,
        redis: redis.Redis | None = None,
        aredis: AsyncRedis | None = None,
        **overrides: object,
    ) -> Api:
        values: dict[str, object] = {
            "DATA_DIR": tmp_path,
            "REDIS_URL": REDIS_URL,
            "REDIS_PREFIX": prefix,
            "QUEUE_NAME": f"{prefix}-jobs",
            "PART_SIZE_BYTES": PART_SIZE,
            "MAX_UPLOAD_BYTES": 64 * MiB,
            "RATE_LIMIT_PER_MINUTE": 10_000,
            "AUTH_FAILURES_PER_MINUTE": 10_000,
        } | overrides
        settings = Settings(**values)  # type: ignore[arg-type]
        queue, triton = FakeQueue(), FakeTriton()
        deps = Dependencies(
            redis=redis or redis_client,
            aredis=aredis or AsyncRedis.from_url(REDIS_URL),
            store=store or store_process.store(),
            enqueuer=queue,
            queue=queue,
            triton=triton,
        )
        app = create_app(settings, deps=deps)
        server = ServerThread(app)
        server.start()
        client = httpx.Client(base_url=server.url, timeout=30.0)
        running.append((server, client))
        tokens = TokenService(redis_client, prefix=prefix)
        alice, _ = tokens.create("alice")
        bob, _ = tokens.create("bob")
        # A worker consuming the queue, as far as /readyz can tell (a long-lived heartbeat).
        WorkerHeartbeats(redis_client, prefix=prefix, ttl_seconds=WORKER_BEAT_SECONDS).beat(
            settings.QUEUE_NAME, "test-worker"
        )
        return Api(client, app, settings, deps, queue, triton, tokens, alice, bob)

    yield make
    for server, client in running:
        client.close()
        server.stop()


WORKER_BEAT_SECONDS = 600.0


@pytest.fixture
def api(make_api: ApiFactory) -> Api:
    return make_api()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


# --- flows ---------------------------------------------------------------------------------


def start_upload(api: Api, token: str, data: bytes, name: str = "cover.wav") -> dict[str, object]:
    body = {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    response = api.client.post("/v1/uploads", json=body, headers=auth(token))
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


def put_parts(
    api: Api, token: str, upload_id: str, data: bytes, numbers: list[int]
) -> dict[int, str]:
    """PUT these parts of ``data`` to their pre-signed URLs; returns their ETags."""
    response = api.client.post(
        f"/v1/uploads/{upload_id}/parts", json={"part_numbers": numbers}, headers=auth(token)
    )
    assert response.status_code == 200, response.text
    etags: dict[int, str] = {}
    for part in response.json()["parts"]:
        n = part["part_number"]
        chunk = data[(n - 1) * PART_SIZE : n * PART_SIZE]
        put = httpx.put(part["url"], content=chunk, timeout=30.0)
        assert put.status_code == 200, put.text
        etags[n] = put.headers["ETag"]
    return etags


def complete(api: Api, token: str, upload_id: str, etags: dict[int, str]) -> httpx.Response:
    parts = [{"part_number": n, "etag": etags[n]} for n in sorted(etags)]
    return api.client.post(
        f"/v1/uploads/{upload_id}/complete", json={"parts": parts}, headers=auth(token)
    )


def upload(api: Api, token: str, data: bytes, name: str = "cover.wav") -> ObjectRef:
    """The whole flow: create, PUT every part by URL, complete."""
    created = start_upload(api, token, data, name)
    upload_id = str(created["upload_id"])
    count = int(str(created["part_count"]))
    etags = put_parts(api, token, upload_id, data, list(range(1, count + 1)))
    response = complete(api, token, upload_id, etags)
    assert response.status_code == 200, response.text
    return ObjectRef.model_validate(response.json())


def embed_body(plane: str, payload: str) -> dict[str, object]:
    return {"kind": "stego.embed", "inputs": {"plane": plane, "payload": payload},
            "params": {"k_pos": K_POS}}  # fmt: skip
